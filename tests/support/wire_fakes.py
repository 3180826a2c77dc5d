"""Loopback stand-ins for unit-testing the pipeline: a scripted upstream and a raw client.

Not a Kafka: the upstream answers each request with the codec's default response body for that
api/version (or echoes the body for APIs the codec does not know) and records what it received,
so tests can assert what the broker saw and what the client got, byte for byte.
"""

from __future__ import annotations

import asyncio
import ssl
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.faults.decision import PASS, Decision, RequestView
from kafka_chaos_proxy.proxy.config import ProxyConfig
from kafka_chaos_proxy.proxy.pipeline.framing import FrameReader, with_size
from kafka_chaos_proxy.proxy.server import ProxyServer

RESP = codec.Direction.RESPONSE
REQ = codec.Direction.REQUEST

Responder = Callable[[int, int, int, bytes], "bytes | None"]


def request_frame(api_key: int, api_version: int, corr: int, body: dict[str, Any] | None = None,
                  client_id: str = "test") -> bytes:
    payload = codec.encode_request_header(api_key, api_version, corr, client_id)
    payload += codec.encode_body(api_key, api_version, REQ, body or {})
    return with_size(payload)


def raw_request_frame(api_key: int, api_version: int, corr: int, body: bytes = b"") -> bytes:
    """A v1-header request for any api key, known to the codec or not."""
    return with_size(struct.pack(">hhih", api_key, api_version, corr, 4) + b"test" + body)


def response_frame(api_key: int, api_version: int, corr: int,
                   body: dict[str, Any] | None = None) -> bytes:
    payload = codec.encode_response_header(api_key, api_version, corr)
    payload += codec.encode_body(api_key, api_version, RESP, body or {})
    return with_size(payload)


def decode_response(frame: bytes, api_key: int, api_version: int) -> tuple[int, dict[str, Any]]:
    corr, hsize = codec.parse_response_header(frame[4:], api_key, api_version)
    return corr, codec.decode_body(api_key, api_version, RESP, frame[4 + hsize:])


@dataclass
class Received:
    api_key: int
    api_version: int
    correlation_id: int
    frame: bytes


class FakeBroker(asyncio.Protocol):
    """One upstream connection of the fake broker."""

    def __init__(self, owner: FakeCluster) -> None:
        self.owner = owner
        self.reader = FrameReader(1 << 30)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.owner.connections.append(self)

    def data_received(self, data: bytes) -> None:
        for frame in self.reader.feed(data):
            self.owner.handle(self, frame)

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner.lost += 1


@dataclass
class FakeCluster:
    """A loopback upstream; `responders` override answers by api key."""

    host: str = "127.0.0.1"
    port: int = 0
    received: list[Received] = field(default_factory=list)
    sent: list[bytes] = field(default_factory=list)
    connections: list[FakeBroker] = field(default_factory=list)
    responders: dict[int, Responder] = field(default_factory=dict)
    raw_mode: bool = False  # answer raw (SASL v0) tokens with b"ok:" + token
    lost: int = 0
    server: asyncio.Server | None = None
    tls: ssl.SSLContext | None = None  # serve TLS with this context

    async def start(self) -> FakeCluster:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: FakeBroker(self), self.host, 0,
                                               ssl=self.tls)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for c in self.connections:
            if c.transport is not None:
                c.transport.close()

    def handle(self, conn: FakeBroker, frame: bytes) -> None:
        assert conn.transport is not None
        if self.raw_mode:
            api_key, api_version = struct.unpack_from(">hh", frame, 4)
            if not codec.is_supported(api_key, api_version):
                self.received.append(Received(-1, -1, -1, frame))
                token = with_size(b"ok:" + frame[4:])
                self.sent.append(token)
                conn.transport.write(token)
                return
        api_key, api_version, corr = struct.unpack_from(">hhi", frame, 4)
        self.received.append(Received(api_key, api_version, corr, frame))
        responder = self.responders.get(api_key)
        out: bytes | None
        if responder is not None:
            out = responder(api_key, api_version, corr, frame)
        elif codec.is_supported(api_key, api_version):
            out = response_frame(api_key, api_version, corr)
        else:
            out = with_size(struct.pack(">i", corr) + b"raw-answer")
        if api_key == 17 and api_version == 0:
            self.raw_mode = True
        if out is not None:
            self.sent.append(out)
            conn.transport.write(out)


class Client:
    """A raw Kafka client socket for tests (streams are fine on this side)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, host: str, port: int, tls: ssl.SSLContext | None = None,
                      server_hostname: str | None = None) -> Client:
        if tls is None:
            r, w = await asyncio.open_connection(host, port)
        else:
            r, w = await asyncio.open_connection(host, port, ssl=tls,
                                                 server_hostname=server_hostname or host)
        return cls(r, w)

    async def send(self, frame: bytes) -> None:
        self.writer.write(frame)
        await self.writer.drain()

    async def recv(self, timeout: float = 5.0) -> bytes:
        head = await asyncio.wait_for(self.reader.readexactly(4), timeout)
        (size,) = struct.unpack(">i", head)
        return head + await asyncio.wait_for(self.reader.readexactly(size), timeout)

    async def nothing_within(self, seconds: float) -> bool:
        """True if no byte arrives within `seconds` (used only to show a stall)."""
        try:
            data = await asyncio.wait_for(self.reader.read(1), seconds)
        except TimeoutError:
            return True
        return data == b"" and False

    async def at_eof(self, timeout: float = 5.0) -> bool:
        data = await asyncio.wait_for(self.reader.read(), timeout)
        return data == b""

    def close(self) -> None:
        self.writer.close()


class FixedDecider:
    """Returns `decision` for requests of `api_key` (all if None), PASS otherwise."""

    def __init__(self, decision: Decision, api_key: int | None = None, times: int = 1) -> None:
        self.decision = decision
        self.api_key = api_key
        self.remaining = times
        self.applied = 0
        self.views: list[RequestView] = []

    def _on_applied(self) -> None:
        self.applied += 1

    def on_request(self, request: RequestView) -> Decision:
        self.views.append(request)
        if self.remaining > 0 and (self.api_key is None or request.api_key == self.api_key):
            self.remaining -= 1
            d = self.decision
            return Decision(d.action, d.rule_id, d.error_code, d.side, d.delay_s, d.close_when,
                            d.close_mode, d.close_after_s, d.throttle_bytes_per_s,
                            on_applied=self._on_applied)
        return PASS


class Collect:
    def __init__(self) -> None:
        self.exchanges: list[Any] = []

    def observe(self, exchange: Any) -> None:
        self.exchanges.append(exchange)


async def start_proxy(upstream: FakeCluster, decider: Any = None, observers: Any = (),
                      triggers: Any = None, fetch_event_sink: Any = None,
                      **config: Any) -> ProxyServer:
    server = ProxyServer(ProxyConfig([(upstream.host, upstream.port)], port=0, **config),
                         decider, observers, triggers, fetch_event_sink)
    await server.start(discover=False)  # the fake is no cluster; tests count what it receives
    return server
