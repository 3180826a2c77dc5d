"""Learn the cluster's brokers at start-up, before any client asks.

Best effort: one ApiVersions + Metadata exchange with a bootstrap server. Knowing the brokers
up front gives every broker its listener from the start, in node-id order, so the ports a
restarted proxy hands out match the ones clients cached. If the cluster is not reachable yet,
nothing is lost: brokers are learned from client traffic as usual.

Against a secured cluster the connection is TLS with the proxy's upstream context (SNI: the
bootstrap host) and logs in with the proxy's own credentials (`proxy.sasl_login`) when it has
them; a broker that requires SASL answers ApiVersions but closes the connection at Metadata
without them, and then brokers are learned from client traffic (`DiscoveryError` says so).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import struct
from typing import Any

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.codec import ApiKey
from kafka_chaos_proxy.proxy.sasl_login import login
from kafka_chaos_proxy.proxy.tls.settings import UpstreamSasl

_I32 = struct.Struct(">i")
API_VERSIONS, METADATA = ApiKey.API_VERSIONS, ApiKey.METADATA
# ApiVersions and a topic-less Metadata are a few KiB even for large clusters; a size prefix
# beyond this is not believed (a broken or hostile upstream must not make us allocate it).
MAX_RESPONSE_BYTES = 4 * 1024 * 1024


class DiscoveryError(ValueError):
    """The upstream's answer cannot be a discovery response."""


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, api_key: int,
                    api_version: int, corr: int, body: dict[str, Any]) -> dict[str, Any]:
    payload = codec.encode_request_header(api_key, api_version, corr, "kafka-chaos-proxy")
    payload += codec.encode_body(api_key, api_version, codec.Direction.REQUEST, body)
    writer.write(_I32.pack(len(payload)) + payload)
    await writer.drain()
    (size,) = _I32.unpack(await reader.readexactly(4))
    if not 0 <= size <= MAX_RESPONSE_BYTES:
        raise DiscoveryError(f"response size {size} outside 0..{MAX_RESPONSE_BYTES}")
    frame = await reader.readexactly(size)
    got, hsize = codec.parse_response_header(frame, api_key, api_version)
    if got != corr:
        raise DiscoveryError(f"correlation id {got} != {corr}")
    return codec.decode_body(api_key, api_version, codec.Direction.RESPONSE, frame[hsize:])


async def fetch_brokers(host: str, port: int, timeout_s: float = 5.0, *,
                        tls: ssl.SSLContext | None = None, sasl: UpstreamSasl | None = None,
                        ) -> list[tuple[int, str, int, str | None]]:
    """(node_id, host, port, rack) of every broker, as the cluster advertises them."""
    async def run() -> list[tuple[int, str, int, str | None]]:
        if tls is None:
            reader, writer = await asyncio.open_connection(host, port)
        else:
            reader, writer = await asyncio.open_connection(host, port, ssl=tls,
                                                           server_hostname=host)
        corr = iter(range(1, 1 << 20))

        async def call(api_key: int, version: int, body: dict[str, Any]) -> dict[str, Any]:
            return await _exchange(reader, writer, api_key, version, next(corr), body)

        try:
            versions = await call(API_VERSIONS, 0, {})
            ranges = {e["api_key"]: (e["min_version"], e["max_version"])
                      for e in versions["api_keys"]}
            if sasl is not None:
                await login(call, sasl, ranges)
            lo, hi = ranges[METADATA]
            clo, chi = codec.supported_versions(METADATA)
            version = min(hi, chi)
            if version < max(lo, clo):
                return []
            body: dict[str, Any] = {"topics": [], "allow_auto_topic_creation": False}
            try:
                meta = await call(METADATA, version, body)
            except asyncio.IncompleteReadError:
                if sasl is None:
                    raise DiscoveryError(
                        "the broker closed the connection at Metadata: does it require SASL? "
                        "Then brokers are learned from client traffic, or give the proxy its "
                        "own login (--upstream-sasl-mechanism, --upstream-sasl-username, "
                        "--upstream-sasl-password-file)") from None
                raise
            return [(b["node_id"], b["host"], b["port"], b.get("rack")) for b in meta["brokers"]]
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    return await asyncio.wait_for(run(), timeout_s)
