"""Broker-address rewriting (invariant 3), pure: frames in, frames out, no sockets.

Wherever a client learns a broker address (Metadata, FindCoordinator v0-3 and the batched
v4+ form, DescribeCluster, the NodeEndpoints of ShareFetch/ShareAcknowledge) the address is
replaced by the proxy listener for that node id. A `Router` callback supplies it; the server's
router binds the node's listener synchronously before returning, so a broker first seen in a
response is reachable through the proxy before that response reaches the client.

Produce/Fetch NodeEndpoints and DescribeQuorum controller endpoints are not rewritten: those
versions are clamped away (see `proxy.versions`).

Metadata is the one hot-ish response (clients refresh it constantly, and with many topics it is
big): brokers come first in it, so only that prefix is decoded and re-encoded and the rest of
the frame (topics, partitions) is spliced through byte for byte.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.codec import ApiKey

Router = Callable[[int, str, int, "str | None"], tuple[str, int]]
# transform(api_version, frame) -> new frame, or None when unchanged
Transform = Callable[[int, bytes], "bytes | None"]
# rewriter(api_version, frame, router) -> new frame, or None when unchanged
Rewriter = Callable[[int, bytes, Router], "bytes | None"]

_I32 = struct.Struct(">i")
_RESP = codec.Direction.RESPONSE
METADATA, FIND_COORDINATOR, DESCRIBE_CLUSTER = (
    ApiKey.METADATA, ApiKey.FIND_COORDINATOR, ApiKey.DESCRIBE_CLUSTER)
SHARE_FETCH, SHARE_ACKNOWLEDGE = ApiKey.SHARE_FETCH, ApiKey.SHARE_ACKNOWLEDGE


def _split(api_key: int, api_version: int, frame: bytes) -> tuple[int, memoryview]:
    _, hsize = codec.parse_response_header(memoryview(frame)[4:], api_key, api_version)
    start = 4 + hsize
    return start, memoryview(frame)[start:]


def _join(frame: bytes, start: int, *parts: bytes | memoryview) -> bytes:
    size = start - 4 + sum(len(p) for p in parts)
    return b"".join((_I32.pack(size), frame[4:start], *parts))


def rewrite_metadata(api_version: int, frame: bytes, route: Router) -> bytes:
    start, body = _split(METADATA, api_version, frame)
    prefix, off = codec.decode_body_prefix(METADATA, api_version, _RESP, body, upto="brokers")
    # In node-id order, so that listener ports (base + discovery index) come out the same
    # whatever order the broker lists them in: a restarted proxy hands out the same ports.
    for b in sorted(prefix["brokers"], key=lambda b: b["node_id"]):
        b["host"], b["port"] = route(b["node_id"], b["host"], b["port"], b.get("rack"))
    # The public inverse of decode_body_prefix: same layout (flexible or not) by construction.
    head = codec.encode_body_prefix(METADATA, api_version, _RESP, prefix, upto="brokers")
    return _join(frame, start, head, body[off:])


def _rewrite_whole(api_key: int, api_version: int, frame: bytes,
                   edit: Callable[[dict[str, Any]], bool]) -> bytes | None:
    start, body = _split(api_key, api_version, frame)
    value = codec.decode_body(api_key, api_version, _RESP, body)
    if not edit(value):
        return None
    return _join(frame, start, codec.encode_body(api_key, api_version, _RESP, value))


def rewrite_find_coordinator(api_version: int, frame: bytes, route: Router) -> bytes | None:
    def edit(v: dict[str, Any]) -> bool:
        changed = False
        entries = v.get("coordinators") if api_version >= 4 else [v]
        for e in entries or []:
            if e.get("error_code", 0) == 0 and e.get("node_id", -1) >= 0 and e.get("host"):
                e["host"], e["port"] = route(e["node_id"], e["host"], e["port"], None)
                changed = True
        return changed

    return _rewrite_whole(FIND_COORDINATOR, api_version, frame, edit)


def rewrite_describe_cluster(api_version: int, frame: bytes, route: Router) -> bytes | None:
    def edit(v: dict[str, Any]) -> bool:
        for b in v.get("brokers") or []:
            b["host"], b["port"] = route(b["broker_id"], b["host"], b["port"], b.get("rack"))
        return bool(v.get("brokers"))

    return _rewrite_whole(DESCRIBE_CLUSTER, api_version, frame, edit)


def _rewrite_node_endpoints(api_key: int) -> Callable[[int, bytes, Router], bytes | None]:
    def rewrite(api_version: int, frame: bytes, route: Router) -> bytes | None:
        def edit(v: dict[str, Any]) -> bool:
            for n in v.get("node_endpoints") or []:
                n["host"], n["port"] = route(n["node_id"], n["host"], n["port"], n.get("rack"))
            return bool(v.get("node_endpoints"))

        return _rewrite_whole(api_key, api_version, frame, edit)

    return rewrite


ADDRESS_REWRITERS: dict[int, Rewriter] = {
    METADATA: rewrite_metadata,
    FIND_COORDINATOR: rewrite_find_coordinator,
    DESCRIBE_CLUSTER: rewrite_describe_cluster,
    SHARE_FETCH: _rewrite_node_endpoints(SHARE_FETCH),
    SHARE_ACKNOWLEDGE: _rewrite_node_endpoints(SHARE_ACKNOWLEDGE),
}
