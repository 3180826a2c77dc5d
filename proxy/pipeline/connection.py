"""One client connection and its one upstream connection: the data-plane pipeline.

Two asyncio Protocols (client side, upstream side) share one `Connection` that owns all the
state: frame readers, the ordered response slots, the requests waiting to be forwarded and the
requests forwarded and awaiting a response. Everything is driven by transport callbacks, no
streams and no per-frame tasks, because that is what keeps a Python proxy near the speed of a
direct connection.

Hot path (an API nobody observes, no fault): read the header facts at fixed offsets, allocate a
slot, forward the very same bytes; on the way back check the correlation id and write the very
same bytes (invariant 1). Requests of an API no rule can match (for that client id) are not
even given a context: a run of them is forwarded as the received chunk, in one write, and a run
of their answers likewise (`proxy.pipeline.passing`). Only APIs that carry broker addresses
or versions (see `proxy.rewrite`) and the coordination APIs (for observers) are ever decoded;
and, only with `ProxyConfig.fetch_events` (off by default), Fetch requests and whole Metadata
answers, for the Fetch sample events (`RequestPath._sample_fetch`, `proxy.fetch_sessions`).

Order (invariant 2): requests are forwarded in arrival order (a request-side delay holds the
requests behind it too, as a slow link would; reordering would break idempotent producers),
responses are matched FIFO and released through `SlotQueue`.

Large pass-through frames (>= `CUT_THROUGH_BYTES`: big Produce requests, big Fetch responses)
are streamed cut-through instead of stored and forwarded (`proxy.pipeline.cut_through`); on
Linux their rest goes socket to socket with splice(2), either way. The client transport's
back-pressure holds upstream reading as one reason among others (`pause_upstream_reading`),
so its end never wakes a transport whose socket a response splicer is reading.

TLS, each side on its own (`proxy.tls`): a TLS listener's connection is admitted, then its
handshake runs (`proxy.pipeline.tls_accept`) before anything else; the upstream connection
is TLS when the host has an upstream context, SNI and the name checked being the broker's
host. A failed handshake on either side closes that connection with a `tls_error` line and
`kcp_tls_errors_total{side,reason}`. Everything above works the same over TLS except the
splice fast path, which is off on a TLS connection.

Faults (`faults.decision.Decision`) are executed by one executor per action kind
(`proxy.pipeline.executors`): ERROR and ERROR_AFTER_FORWARD fill the slot with a synthesized
response; DROP_* leave it unfilled (the connection stalls behind it, optionally closed
`close_after_s` later); DELAY holds the request (and those behind it) or the filled slot; CLOSE
closes before forwarding or when the response arrives (FIN, or RST through SO_LINGER 0 +
abort); THROTTLE paces writes to the client per response.

`Connection` is assembled from one class per concern, each in its own module and each
subclassing the one before it: `ExchangeBuilder` (exchanges for observers), `ConnectionCore`
(state, reading control, close), `Writer` (ordered writes, throttling), `RequestPath`,
`CutThrough`, `ResponsePath`, and `Connection` here (the client transport's callbacks,
connecting upstream). It is one object, so the hot path pays no indirection for the split; the
two calls that go to a later part are declared under TYPE_CHECKING where they are made
(`Writer._drain_backlog`, `CutThrough.client_data`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Any

import structlog

from kafka_chaos_proxy.proxy import metrics
from kafka_chaos_proxy.proxy.pipeline import tls_accept
from kafka_chaos_proxy.proxy.pipeline.framing import FrameError
from kafka_chaos_proxy.proxy.pipeline.host import ProxyHost
from kafka_chaos_proxy.proxy.pipeline.response_path import ResponsePath
from kafka_chaos_proxy.proxy.tls import errors as tls_errors

log = structlog.get_logger("kcp.connection")


class ClientSide(asyncio.Protocol):
    """Transport callbacks of the client socket, delegated to the `Connection`."""

    __slots__ = ("conn",)

    def __init__(self, server: ProxyHost[Connection], node_id: int) -> None:
        self.conn = Connection(server, node_id)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        conn = self.conn
        if conn.client_tls:  # the second call: the TLS layer's transport, handshake done
            conn.client_tls_ready(transport)  # type: ignore[arg-type]
            return
        context = conn.server.client_tls
        if context is None:
            conn.client_made(transport)  # type: ignore[arg-type]
        else:
            conn.client_made_tls(transport, context, self)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        self.conn.client_data(data)

    def eof_received(self) -> bool:
        self.conn.client_eof()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.client_lost(exc)

    def pause_writing(self) -> None:
        self.conn.client_pause_writing()

    def resume_writing(self) -> None:
        self.conn.client_resume_writing()


class UpstreamSide(asyncio.Protocol):
    __slots__ = ("conn",)

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def data_received(self, data: bytes) -> None:
        self.conn.upstream_data(data)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.upstream_lost(exc)

    def pause_writing(self) -> None:
        self.conn.pause_client_reading("backpressure")

    def resume_writing(self) -> None:
        self.conn.resume_client_reading("backpressure")


class Connection(ResponsePath):
    """One client connection and its upstream connection (state: `ConnectionCore`)."""

    def client_made(self, transport: asyncio.Transport) -> None:
        if self._admit(transport):
            self._connect_task = self.loop.create_task(self._connect_upstream())

    def _admit(self, transport: asyncio.Transport) -> bool:
        """Take the accepted connection in, unless a connection limit refuses it."""
        self.client = transport
        peer = transport.get_extra_info("peername") or ("?", 0)
        self.client_host, self.client_port = str(peer[0]), int(peer[1])
        with contextlib.suppress(Exception):
            transport.set_write_buffer_limits(high=self.config.high_water)
        refusal = self.server.register(self)
        if refusal is not None:
            self.refuse(*refusal)
            return False
        metrics.connections_total.labels(str(self.node_id)).inc()
        metrics.connections_active.labels(str(self.node_id)).inc()
        return True

    def client_made_tls(self, transport: asyncio.Transport, context: ssl.SSLContext,
                        protocol: asyncio.Protocol) -> None:
        """A TLS listener's connection: admitted first (limits cost no handshake), then the
        TLS layer goes in (`tls_accept`); `client_tls_ready` follows a good handshake."""
        self.client_tls = True
        if not self._admit(transport):
            return
        waiter = tls_accept.start_server_tls(self.loop, transport, protocol, context,
                                             self.config.handshake_timeout_s)
        self._connect_task = self.loop.create_task(self._await_handshake(waiter))

    async def _await_handshake(self, waiter: asyncio.Future[None]) -> None:
        try:
            await waiter
        except Exception as exc:  # whatever the peer did, it costs this connection only
            if not self.closed:
                self._tls_failed(tls_errors.CLIENT, exc)
            return
        if not self.closed and self.client is not None and not self.tls_ready:
            self._tls_failed(tls_errors.CLIENT, ConnectionResetError(
                "the client closed the connection during the TLS handshake"))

    def client_tls_ready(self, transport: asyncio.Transport) -> None:
        """The handshake succeeded: the TLS transport replaces the raw one."""
        self.tls_ready = True
        if self.closed:
            transport.close()
            return
        self.client = transport
        with contextlib.suppress(Exception):
            transport.set_write_buffer_limits(high=self.config.high_water)
        self.cert_principal = tls_accept.peer_subject(transport)
        self.principal = self.cert_principal
        self._connect_task = self.loop.create_task(self._connect_upstream())

    def _tls_failed(self, side: str, exc: BaseException, **fields: Any) -> None:
        reason = tls_errors.classify(exc)
        tls_errors.record(side, reason, conn=self.id,
                          peer=f"{self.client_host}:{self.client_port}", node=self.node_id,
                          detail=tls_errors.detail_of(exc), **fields)
        self.close("tls_error", detail=f"{side} {reason}")

    def _tls_on_plaintext(self) -> None:
        """The first bytes on a plaintext listener were a TLS ClientHello."""
        tls_errors.record(tls_errors.CLIENT, tls_errors.TLS_ON_PLAINTEXT, conn=self.id,
                          peer=f"{self.client_host}:{self.client_port}", node=self.node_id,
                          detail="a TLS ClientHello on a plaintext listener")
        self.close("tls_error", detail=f"{tls_errors.CLIENT} {tls_errors.TLS_ON_PLAINTEXT}")

    async def _open_upstream(self, host: str, port: int) -> asyncio.Transport:
        context = self.server.upstream_tls
        if context is None:
            transport, _ = await asyncio.wait_for(
                self.loop.create_connection(lambda: UpstreamSide(self), host, port),
                self.config.upstream_connect_timeout_s)
            return transport
        transport, _ = await asyncio.wait_for(
            self.loop.create_connection(
                lambda: UpstreamSide(self), host, port, ssl=context, server_hostname=host,
                ssl_handshake_timeout=self.config.upstream_connect_timeout_s),
            self.config.upstream_connect_timeout_s)
        self.upstream_tls = True
        return transport

    async def _connect_upstream(self) -> None:
        candidates = self.server.upstream_candidates(self.node_id)
        last: BaseException | None = None
        for host, port in candidates:
            if self.closed:
                return
            try:
                transport = await self._open_upstream(host, port)
            except ssl.SSLError as exc:  # before OSError, its base: a TLS failure is counted
                reason = tls_errors.classify(exc)
                tls_errors.record(tls_errors.UPSTREAM, reason, conn=self.id,
                                  broker=f"{host}:{port}", node=self.node_id,
                                  detail=tls_errors.detail_of(exc))
                last = exc
                continue
            except (TimeoutError, OSError) as exc:
                last = exc
                continue
            if self.closed:
                transport.close()
                return
            self.upstream = transport
            self.upstream_addr = (host, port)
            with contextlib.suppress(Exception):
                transport.set_write_buffer_limits(high=self.config.high_water)
            # Debug, like `connection_closed`: the console is for faults and rebalances.
            log.debug("connection_open", conn=self.id,
                      peer=f"{self.client_host}:{self.client_port}", node=self.node_id,
                      broker=f"{host}:{port}")
            self._pump()
            return
        if isinstance(last, ssl.SSLError):
            self.close("tls_error", detail=f"{tls_errors.UPSTREAM} {tls_errors.classify(last)}")
            return
        self.close("upstream_connect_failed", detail=repr(last) if last else "no broker address")

    def client_data(self, data: bytes) -> None:
        self.bytes_in += len(data)
        self._c.c2b.inc(len(data))
        if self.req_stream_left:
            n = self.req_stream_left
            if len(data) <= n:
                self._stream_up(data)
                return
            self._stream_up(data[:n])
            data = data[n:]
        if not self.creader.pending and self._may_pass():
            taken = self._forward_passing(data)
            if taken:
                if taken == len(data):
                    return
                data = data[taken:]
        try:
            frames = self.creader.feed(data)
        except FrameError as exc:
            if not self.requests and not self.client_tls and tls_accept.looks_like_tls(data):
                self._tls_on_plaintext()
            else:
                self.frame_error(exc)
            return
        if self.backlog:
            self.backlog.extend(frames)
        else:
            if frames and self._may_pass():  # a frame that came in pieces may pass too
                frames = self._pass_leading(frames)
            self._process(frames)
            if not self.closed and not self.backlog:
                self._maybe_request_cut_through()
        if self.creader.pending != self._held:
            self._account_held()  # an incomplete frame grew, completed or went cut-through

    def client_eof(self) -> None:
        if self.creader.pending:
            self.frame_error(FrameError("truncated_frame", f"{self.creader.pending} bytes at EOF"))

    def client_lost(self, exc: Exception | None) -> None:
        if isinstance(exc, ssl.SSLError) and not self.closed:
            self._tls_failed(tls_errors.CLIENT, exc)
            return
        if self.creader.pending and not self.closed:
            self.frame_error(FrameError("truncated_frame", f"{self.creader.pending} bytes at EOF"))
        self.close("client_closed")

    def upstream_lost(self, exc: Exception | None) -> None:
        # A broker that refuses our client certificate says so after a TLS 1.3 handshake
        # has completed on our side: the alert arrives with the first read.
        if isinstance(exc, ssl.SSLError) and not self.closed:
            self._tls_failed(tls_errors.UPSTREAM, exc,
                             broker=f"{self.upstream_addr[0]}:{self.upstream_addr[1]}"
                             if self.upstream_addr else None)
            return
        super().upstream_lost(exc)

    def client_pause_writing(self) -> None:
        self.pause_upstream_reading("backpressure")

    def client_resume_writing(self) -> None:
        # Not resumed while a response splice reads the upstream socket itself.
        self.resume_upstream_reading("backpressure")
