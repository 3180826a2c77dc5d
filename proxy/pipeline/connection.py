"""One client connection and its one upstream connection: the data-plane pipeline.

Two asyncio Protocols (client side, upstream side) share one `Connection` that owns all the
state: frame readers, the ordered response slots, the requests waiting to be forwarded and the
requests forwarded and awaiting a response. Everything is driven by transport callbacks, no
streams and no per-frame tasks, because that is what keeps a Python proxy near the speed of a
direct connection.

Hot path (an API nobody observes, no fault): read the header facts at fixed offsets, allocate a
slot, forward the very same bytes; on the way back check the correlation id and write the very
same bytes (invariant 1). Only APIs that carry broker addresses or versions (see
`proxy.rewrite`) and the coordination APIs (for observers) are ever decoded.

Order (invariant 2): requests are forwarded in arrival order (a request-side delay holds the
requests behind it too, as a slow link would; reordering would break idempotent producers),
responses are matched FIFO and released through `SlotQueue`.

Large pass-through frames (>= `CUT_THROUGH_BYTES`: big Produce requests, big Fetch responses)
are streamed cut-through instead of stored and forwarded, when nothing needs their body and
their turn has come; everything else is framed whole. Broker addresses (invariant 3) never
ride on those: Produce/Fetch versions whose responses carry NodeEndpoints are clamped away in
ApiVersions (`proxy.versions`), so the only address-carrying responses are the small ones
`proxy.rewrite` decodes.

Faults (`faults.decision.Decision`) are executed here: ERROR and ERROR_AFTER_FORWARD fill the
slot with a synthesized response; DROP_* leave it unfilled (the connection stalls behind it,
optionally closed `close_after_s` later); DELAY holds the request (and those behind it) or the
filled slot; CLOSE closes before forwarding or when the response arrives (FIN, or RST through
SO_LINGER 0 + abort); THROTTLE paces writes to the client per response.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import structlog

import codec
from faults.decision import PASS, ActionKind, CloseMode, CloseWhen, Decision, Side
from proxy import metrics
from proxy.exchange import COORDINATION_API_KEYS, Exchange
from proxy.pipeline.counters import api_label, counters
from proxy.pipeline.framing import (
    PRODUCE,
    SASL_HANDSHAKE,
    FrameError,
    FrameReader,
    produce_acks,
    with_size,
)
from proxy.pipeline.request_context import RequestContext
from proxy.pipeline.slots import Slot, SlotQueue
from proxy.pipeline.splice import MIN_BYTES as SPLICE_MIN_BYTES
from proxy.pipeline.splice import RequestSplicer, SpliceUnsupported, splice_supported
from proxy.versions import API_VERSIONS, UNSUPPORTED_VERSION

if TYPE_CHECKING:
    from proxy.server import ProxyServer

log = structlog.get_logger("kcp.connection")

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_LINGER_RESET = struct.pack("ii", 1, 0)
# Pass-through responses at least this big are streamed to the client as they arrive.
CUT_THROUGH_BYTES = 256 * 1024
_REQUEST = codec.Direction.REQUEST
_RESPONSE = codec.Direction.RESPONSE


class ClientSide(asyncio.Protocol):
    """Transport callbacks of the client socket, delegated to the `Connection`."""

    __slots__ = ("conn",)

    def __init__(self, server: ProxyServer, node_id: int) -> None:
        self.conn = Connection(server, node_id)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.conn.client_made(transport)  # type: ignore[arg-type]

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


class Connection:
    def __init__(self, server: ProxyServer, node_id: int) -> None:
        self.server = server
        self.config = server.config
        self.loop = asyncio.get_running_loop()
        self.id = server.next_connection_id()
        self.node_id = node_id
        self.client_host = ""
        self.client_port = 0
        self.upstream_addr: tuple[str, int] | None = None
        self.client: asyncio.Transport | None = None
        self.upstream: asyncio.Transport | None = None
        self.creader = FrameReader(self.config.max_frame_bytes)
        # Broker responses are trusted more, but not unboundedly: twice the client limit.
        self.ureader = FrameReader(max(self.config.max_frame_bytes * 2, 1 << 27))
        self.slots = SlotQueue()
        self.to_forward: deque[RequestContext] = deque()
        self.inflight: deque[RequestContext] = deque()
        self.open_exchanges: dict[int, RequestContext] = {}
        self.backlog: deque[bytes] = deque()
        self.stream_left = 0  # bytes of a cut-through response still to stream to the client
        self._batching = False  # inside upstream_data: flush once at the end
        self.trickle: memoryview | None = None  # rest of the response being throttled out
        self.trickle_slot: Slot | None = None
        self._up_batch: list[bytes] | None = None  # inside _process: upstream writes collected
        self.req_stream_left = 0  # bytes of a cut-through request still to stream upstream
        self.splicer: RequestSplicer | None = None  # kept for the connection's large requests
        self._predecided: tuple[int, Decision] | None = None
        self._draining = False
        self.closed = False
        self.close_reason: str | None = None
        self.paused: set[str] = set()
        self.bytes_in = 0
        self.bytes_out = 0
        self.requests = 0
        self.raw_sasl = False
        self.throttle_bps: int | None = None
        self.next_write_at = 0.0
        self._flush_handle: asyncio.TimerHandle | None = None
        self._flush_at = 0.0
        self._pump_handle: asyncio.TimerHandle | None = None
        self._timers: list[asyncio.TimerHandle] = []
        self.opened_at = time.time()
        self._c = counters()
        self._connect_task: asyncio.Task[None] | None = None

    # ----------------------------------------------------------------- client side

    def client_made(self, transport: asyncio.Transport) -> None:
        self.client = transport
        peer = transport.get_extra_info("peername") or ("?", 0)
        self.client_host, self.client_port = str(peer[0]), int(peer[1])
        with contextlib.suppress(Exception):
            transport.set_write_buffer_limits(high=self.config.high_water)
        self.server.register(self)
        metrics.connections_total.labels(str(self.node_id)).inc()
        metrics.connections_active.labels(str(self.node_id)).inc()
        self._connect_task = self.loop.create_task(self._connect_upstream())

    async def _connect_upstream(self) -> None:
        candidates = self.server.upstream_candidates(self.node_id)
        last: BaseException | None = None
        for host, port in candidates:
            if self.closed:
                return
            try:
                transport, _ = await asyncio.wait_for(
                    self.loop.create_connection(lambda: UpstreamSide(self), host, port),
                    self.config.upstream_connect_timeout_s,
                )
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
            log.info("connection_open", conn=self.id, peer=f"{self.client_host}:{self.client_port}",
                     node=self.node_id, broker=f"{host}:{port}")
            self._pump()
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
        try:
            frames = self.creader.feed(data)
        except FrameError as exc:
            self.frame_error(exc)
            return
        if self.backlog:
            self.backlog.extend(frames)
            return
        self._process(frames)
        if not self.closed and not self.backlog:
            self._maybe_request_cut_through()

    def _maybe_request_cut_through(self) -> None:
        """Start streaming a large request (a big Produce) upstream before it fully arrived.

        The decision is taken on the header alone, so only requests no observer decodes and no
        rewrite touches qualify, with nothing queued ahead of them (order). The fault engine
        matches body fields only on coordination APIs, which never take this path; the view's
        `body()` is None here. A non-FORWARD decision is kept and applied when the whole frame
        is in (the engine is asked once per request either way).
        """
        head = self.creader.partial()
        if head is None or self._predecided is not None:
            return
        total, held = head
        if (total < CUT_THROUGH_BYTES or len(held) < 256 or self.upstream is None
                or self.to_forward or self.raw_sasl
                or len(self.slots) >= self.config.max_inflight):
            return
        try:
            hdr = codec.parse_request_header(memoryview(held)[4:])
            if (hdr.header_size is None or hdr.api_key in COORDINATION_API_KEYS
                    or hdr.api_key in self.server.response_transforms):
                return
            expects_response = True
            if hdr.api_key == PRODUCE:
                expects_response = produce_acks(held, 4 + hdr.header_size, hdr.api_version,
                                                codec.is_flexible(PRODUCE, hdr.api_version)) != 0
        except (codec.CodecError, FrameError, struct.error):
            return  # the whole frame will tell
        ctx = RequestContext(self, held, hdr, self.loop.time(), partial=True)
        decision = self._decide(ctx)
        if decision.action is not ActionKind.FORWARD:
            self._predecided = (hdr.correlation_id, decision)
            return
        self.requests += 1
        self._c.request(hdr.api_key, hdr.api_version)
        ctx.frame = b""
        if expects_response:
            ctx.slot = self.slots.allocate(hdr.correlation_id, hdr.api_key, hdr.api_version, ctx)
            self.inflight.append(ctx)
        ctx.forwarded_at = ctx.started_mono
        self.req_stream_left = total
        self._stream_up(self.creader.take_partial())
        if self.req_stream_left >= SPLICE_MIN_BYTES:
            self._start_splice()

    def _start_splice(self) -> None:
        """Let the kernel move the rest of a cut-through request (`proxy.pipeline.splice`): the proxy
        would only copy it in and out again. Client reading stays paused until it is done;
        where splice(2) is unavailable the transport path carries on unchanged."""
        splicer = self.splicer
        if splicer is None:
            client, upstream = self.client, self.upstream
            if not splice_supported() or client is None or upstream is None:
                return
            csock = client.get_extra_info("socket")
            usock = upstream.get_extra_info("socket")
            if csock is None or usock is None:
                return
            try:
                splicer = RequestSplicer(
                    self.loop, csock.fileno(), usock.fileno(), upstream.get_write_buffer_size,
                    self._spliced, self._splice_done, self._splice_failed)
            except SpliceUnsupported:
                return
            self.splicer = splicer
        self.pause_client_reading("splice")
        try:
            splicer.begin(self.req_stream_left)
        except SpliceUnsupported:
            self.splicer = None
            self.resume_client_reading("splice")

    def _spliced(self, n: int) -> None:
        self.req_stream_left -= n
        self.bytes_in += n
        self._c.c2b.inc(n)

    def _splice_done(self) -> None:
        # Not resumed yet: a producer's next request is most likely large too; its head is
        # read by hand so that its body can be spliced from the start (`_splice_head`).
        # Only while nothing else holds reading (in-flight limit, back-pressure, shutdown).
        if self.splicer is not None and self.paused == {"splice"} and not self.closed:
            self.splicer.await_head(self._splice_head)
        else:
            self.resume_client_reading("splice")

    def _splice_head(self, data: bytes) -> None:
        if data:
            self.client_data(data)  # may start the next splice
        if not self.closed and (self.splicer is None or not self.splicer.owns_client):
            self.resume_client_reading("splice")

    def _splice_failed(self, reason: str, detail: str) -> None:
        self.splicer = None
        if reason == "truncated_frame":
            self.frame_error(FrameError(reason, detail))
        else:
            self.close(reason, detail=detail)

    def _stream_up(self, data: bytes) -> None:
        self.req_stream_left -= len(data)
        if self.upstream is not None:
            self.upstream.write(data)

    def _process(self, frames: list[bytes] | deque[bytes]) -> None:
        """Handle client frames until the in-flight limit; the rest wait in `backlog` (one
        received chunk may hold many frames) and reading pauses until slots are released."""
        outer = self._up_batch is not None
        if not outer:
            self._up_batch = []
        try:
            self._process_frames(frames)
        finally:
            if not outer:
                batch, self._up_batch = self._up_batch, None
                if batch and self.upstream is not None and not self.closed:
                    if len(batch) == 1:
                        self.upstream.write(batch[0])
                    else:
                        self.upstream.writelines(batch)

    def _process_frames(self, frames: list[bytes] | deque[bytes]) -> None:
        limit = self.config.max_inflight
        it = iter(frames)
        for frame in it:
            if self.closed:
                return
            if len(self.slots) >= limit:
                self.backlog.append(frame)
                self.backlog.extend(it)
                self.pause_client_reading("inflight")
                return
            try:
                self._on_request(frame)
            except FrameError as exc:
                self.frame_error(exc)
                return
            except (codec.CodecError, struct.error) as exc:
                self.frame_error(FrameError("bad_header", str(exc)))
                return
            except Exception as exc:  # a bug of ours must cost one connection, not the proxy
                log.exception("request_handling_failed", conn=self.id)
                self.close("internal_error", detail=repr(exc))
                return
        if len(self.slots) >= limit:
            self.pause_client_reading("inflight")

    def _drain_backlog(self) -> None:
        if self._draining:
            return
        self._draining = True
        try:
            frames, self.backlog = self.backlog, deque()
            self._process(frames)
        finally:
            self._draining = False

    def client_eof(self) -> None:
        if self.creader.pending:
            self.frame_error(FrameError("truncated_frame", f"{self.creader.pending} bytes at EOF"))

    def client_lost(self, exc: Exception | None) -> None:
        if self.creader.pending and not self.closed:
            self.frame_error(FrameError("truncated_frame", f"{self.creader.pending} bytes at EOF"))
        self.close("client_closed")

    def client_pause_writing(self) -> None:
        if self.upstream is not None:
            with contextlib.suppress(Exception):
                self.upstream.pause_reading()

    def client_resume_writing(self) -> None:
        if self.upstream is not None and not self.closed:
            with contextlib.suppress(Exception):
                self.upstream.resume_reading()

    def pause_client_reading(self, reason: str) -> None:
        if not self.paused and self.client is not None and not self.closed:
            with contextlib.suppress(Exception):
                self.client.pause_reading()
        self.paused.add(reason)
        if reason != "splice" and self.splicer is not None and self.splicer.awaiting_head:
            self.splicer.cancel_head()  # the splicer's own reader must stop reading too
            self.paused.discard("splice")

    def resume_client_reading(self, reason: str) -> None:
        if reason in self.paused:
            self.paused.discard(reason)
            if not self.paused and self.client is not None and not self.closed:
                with contextlib.suppress(Exception):
                    self.client.resume_reading()

    # ----------------------------------------------------------------- requests

    def _on_request(self, frame: bytes) -> None:
        if self.raw_sasl:
            if not self._looks_like_request(frame):
                self._send_upstream_raw(frame)
                return
            self.raw_sasl = False
        if len(frame) < 12:
            raise FrameError("short_header", f"{len(frame) - 4} bytes")
        hdr = codec.parse_request_header(memoryview(frame)[4:])
        now = self.loop.time()
        self.requests += 1
        self._c.request(hdr.api_key, hdr.api_version)
        ctx = RequestContext(self, frame, hdr, now)
        expects_response = True
        if hdr.api_key == PRODUCE and ctx.body_offset is not None:
            flexible = codec.is_flexible(PRODUCE, hdr.api_version)
            expects_response = produce_acks(frame, ctx.body_offset, hdr.api_version,
                                            flexible) != 0
        if hdr.api_key in COORDINATION_API_KEYS and self.server.observers:
            ctx.exchange_wanted = True
            ctx.started_at = time.time()
            ctx.body()
        if hdr.api_key == API_VERSIONS and hdr.header_size is None and expects_response:
            self._unsupported_api_versions(ctx)
            return
        pre = self._predecided
        if pre is not None and pre[0] == hdr.correlation_id:
            self._predecided = None
            decision = pre[1]
        else:
            decision = self._decide(ctx)
        ctx.decision = decision
        if expects_response:
            ctx.slot = self.slots.allocate(hdr.correlation_id, hdr.api_key, hdr.api_version, ctx)
        if ctx.exchange_wanted:
            self.open_exchanges[id(ctx)] = ctx
        if decision.action is ActionKind.FORWARD:
            self._forward(ctx)
            return
        self._apply_request_fault(ctx, decision, expects_response)

    def _unsupported_api_versions(self, ctx: RequestContext) -> None:
        """An ApiVersions version the codec does not know (a client newer than the proxy):
        answer as a broker does, UNSUPPORTED_VERSION in the v0 layout with the range the proxy
        can clamp, so the client retries with a version both understand (invariant 4)."""
        lo, hi = codec.supported_versions(API_VERSIONS)
        body = {"error_code": UNSUPPORTED_VERSION,
                "api_keys": [{"api_key": API_VERSIONS, "min_version": lo, "max_version": hi}]}
        payload = _I32.pack(ctx.correlation_id) + codec.encode_body(
            API_VERSIONS, 0, _RESPONSE, body)
        slot = self.slots.allocate(ctx.correlation_id, API_VERSIONS, ctx.api_version, ctx)
        slot.data = with_size(payload)
        self._flush()

    def _decide(self, ctx: RequestContext) -> Decision:
        decider = self.server.decider
        if decider is None:
            return PASS
        try:
            return decider.on_request(ctx)
        except Exception:
            log.exception("decider_failed", conn=self.id, api=api_label(ctx.api_key))
            return PASS

    @staticmethod
    def _looks_like_request(frame: bytes) -> bool:
        """After SaslHandshake v0 the client sends raw SASL tokens until authenticated; the
        first frame that parses as a known api/version with a sane client id ends that mode."""
        if len(frame) < 14:
            return False
        api_key, api_version = struct.unpack_from(">hh", frame, 4)
        if not codec.is_supported(api_key, api_version):
            return False
        (cid_len,) = _I16.unpack_from(frame, 12)
        return cid_len == -1 or 0 <= cid_len <= len(frame) - 14

    def _apply_request_fault(self, ctx: RequestContext, d: Decision,
                             expects_response: bool) -> None:
        action = d.action
        if action is ActionKind.ERROR:
            self._applied(d)
            if ctx.slot is not None:
                data = self._synthesize_error(ctx, d.error_code)
                if data is None:
                    self.close("error_synthesis_failed")
                    return
                ctx.slot.data = data
                self._flush()
            else:
                self._end_exchange(ctx, "error_injected")
            return
        if action is ActionKind.DROP_REQUEST:
            self._applied(d)
            self._end_exchange(ctx, "dropped")
            self._close_later(d)
            return
        if action is ActionKind.CLOSE and d.close_when is CloseWhen.BEFORE:
            self._applied(d)
            self.close("fault_close", mode=d.close_mode)
            return
        if action is ActionKind.DELAY and d.side is Side.REQUEST:
            self._applied(d)
            ctx.ready_at = self.loop.time() + max(d.delay_s, 0.0)
        elif action is ActionKind.THROTTLE:
            self._applied(d)
            self.throttle_bps = d.throttle_bytes_per_s or None
        elif not expects_response and action is ActionKind.CLOSE:
            # acks=0 Produce: no response will come to close after; close once forwarded.
            self._forward(ctx)
            self._applied(d)
            self.close("fault_close", mode=d.close_mode)
            return
        self._forward(ctx)

    def _applied(self, d: Decision) -> None:
        """Confirm an injection; the engine counts `kcp_faults_injected_total` from this."""
        if d.on_applied is not None:
            try:
                d.on_applied()
            except Exception:
                log.exception("on_applied_failed", conn=self.id, rule=d.rule_id)

    def _close_later(self, d: Decision) -> None:
        if d.close_after_s is not None:
            self._timers.append(self.loop.call_later(
                max(d.close_after_s, 0.0), self.close, "fault_close_after_drop", d.close_mode))

    def _forward(self, ctx: RequestContext) -> None:
        if not self.to_forward and self.upstream is not None and ctx.ready_at == 0.0:
            self._send(ctx)  # the common case: nothing queued, send now
            return
        self.to_forward.append(ctx)
        self._pump()

    def _pump(self) -> None:
        """Send queued requests in order; a held head (request delay) holds the rest."""
        if self.upstream is None or self.closed:
            return
        now = self.loop.time()
        q = self.to_forward
        while q:
            head = q[0]
            if head.ready_at > now:
                if self._pump_handle is None:
                    self._pump_handle = self.loop.call_at(head.ready_at, self._pump_timer)
                return
            q.popleft()
            self._send(head)
            if self.closed:
                return

    def _pump_timer(self) -> None:
        self._pump_handle = None
        self._pump()

    def _send(self, ctx: RequestContext) -> None:
        assert self.upstream is not None
        ctx.forwarded_at = self.loop.time()
        if ctx.slot is not None:
            self.inflight.append(ctx)
        self._up_write(ctx.frame)

    def _send_upstream_raw(self, frame: bytes) -> None:
        self._up_write(frame)

    def _up_write(self, data: bytes) -> None:
        """Write upstream, or collect into the batch `_process` sends with one writev."""
        batch = self._up_batch
        if batch is not None:
            batch.append(data)
        elif self.upstream is not None:
            self.upstream.write(data)

    # ----------------------------------------------------------------- responses

    def upstream_data(self, data: bytes) -> None:
        if self.stream_left:
            n = self.stream_left
            if len(data) <= n:
                self._stream(data)
                return
            self._stream(data[:n])
            data = data[n:]
        try:
            frames = self.ureader.feed(data)
        except FrameError as exc:
            self.close("upstream_protocol_error", detail=str(exc))
            return
        self._batching = True
        try:
            for frame in frames:
                if self.closed:
                    return
                try:
                    self._on_response(frame)
                except Exception as exc:
                    log.exception("response_handling_failed", conn=self.id)
                    self.close("internal_error", detail=repr(exc))
                    return
        finally:
            self._batching = False
        if not self.closed:
            if frames:
                self._flush()
            self._maybe_cut_through()

    def _maybe_cut_through(self) -> None:
        """Start streaming a large response to the client before it has fully arrived.

        Store-and-forward of a multi-megabyte Fetch response doubles its transfer time, and a
        consumer with one fetch in flight per broker feels that directly. Only a plain
        pass-through response qualifies: nothing to rewrite, observe or fault, no throttle,
        and its slot is next in line (so order cannot break). Other slots are held back while
        the stream runs (`_flush` checks `stream_left`).
        """
        head = self.ureader.partial()
        if head is None:
            return
        total, held = head
        if (total < CUT_THROUGH_BYTES or not self.inflight or self.throttle_bps or self.raw_sasl
                or self.trickle is not None):
            return
        ctx = self.inflight[0]
        slot = ctx.slot
        if (ctx.decision.action is not ActionKind.FORWARD or ctx.exchange_wanted
                or slot is None or ctx.api_key in self.server.response_transforms
                or not self._is_head(slot)
                or _I32.unpack_from(held, 4)[0] != ctx.correlation_id):
            return
        self.inflight.popleft()
        self.slots.popleft()
        if ctx.forwarded_at is not None:
            self._c.latency(ctx.api_key, self.loop.time() - ctx.forwarded_at)
        self._c.response(ctx.api_key, ctx.api_version)
        data = self.ureader.take_partial()
        self.stream_left = total
        self._stream(data)

    def _is_head(self, slot: Slot) -> bool:
        for first in self.slots:
            return first is slot
        return False

    def _stream(self, data: bytes) -> None:
        self.stream_left -= len(data)
        self._write_client(data)
        if not self.stream_left:
            self._flush()

    def upstream_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            self.close("upstream_closed", detail=repr(exc) if exc else "")

    def _on_response(self, frame: bytes) -> None:
        if not self.inflight:
            if self.raw_sasl:
                self._write_client(frame)
                return
            self.close("unexpected_response", detail="response with no request in flight")
            return
        ctx = self.inflight.popleft()
        if len(frame) < 8:
            self.close("upstream_protocol_error", detail="short response")
            return
        (corr,) = _I32.unpack_from(frame, 4)
        if corr != ctx.correlation_id:
            self.close("correlation_mismatch",
                       detail=f"expected {ctx.correlation_id}, broker sent {corr}")
            return
        now = self.loop.time()
        if ctx.forwarded_at is not None:
            self._c.latency(ctx.api_key, now - ctx.forwarded_at)
        api_key = ctx.api_key
        data = frame
        transform = self.server.response_transforms.get(api_key)
        if transform is not None:
            try:
                new = transform(ctx.api_version, frame)
            except Exception as exc:
                log.exception("response_rewrite_failed", conn=self.id, api=api_label(api_key),
                              version=ctx.api_version)
                # Passing it on could leak a real broker address (invariant 3): close instead.
                self.close("rewrite_failed", detail=str(exc))
                return
            if new is not None:
                data = new
        if api_key == SASL_HANDSHAKE and ctx.api_version == 0 and len(frame) >= 10:
            # v0: raw SASL tokens follow a successful handshake, without Kafka headers.
            self.raw_sasl = _I16.unpack_from(frame, 8)[0] == 0
        if ctx.exchange_wanted:
            self._observe_broker_response(ctx, data)
        d = ctx.decision
        action = d.action
        ready_at = 0.0
        if action is not ActionKind.FORWARD:
            if action is ActionKind.ERROR_AFTER_FORWARD:
                self._applied(d)
                synth = self._synthesize_error(ctx, d.error_code)
                if synth is None:
                    self.close("error_synthesis_failed")
                    return
                data = synth
            elif action is ActionKind.DROP_RESPONSE:
                self._applied(d)
                self._end_exchange(ctx, "dropped")
                self._close_later(d)
                return
            elif action is ActionKind.CLOSE:  # close_when AFTER (BEFORE never forwards)
                self._applied(d)
                self._end_exchange(ctx, "closed")
                self.close("fault_close", mode=d.close_mode)
                return
            elif action is ActionKind.DELAY and d.side is Side.RESPONSE:
                self._applied(d)
                ready_at = now + max(d.delay_s, 0.0)
        slot = ctx.slot
        assert slot is not None
        slot.data = data
        slot.ready_at = ready_at
        if not self._batching:
            self._flush()

    def _observe_broker_response(self, ctx: RequestContext, data: bytes) -> None:
        try:
            _, hsize = codec.parse_response_header(memoryview(data)[4:], ctx.api_key,
                                                   ctx.api_version)
            body = codec.decode_body(ctx.api_key, ctx.api_version, _RESPONSE,
                                     memoryview(data)[4 + hsize:])
        except Exception as exc:
            log.warning("response_decode_failed", conn=self.id, api=api_label(ctx.api_key),
                        version=ctx.api_version, error=str(exc))
            return
        # Broker error codes are counted by the control plane's observer, from this body.
        ctx.response_body = body

    def _synthesize_error(self, ctx: RequestContext, error_code: int | None) -> bytes | None:
        from codec.error_response import error_response

        code = -1 if error_code is None else error_code
        try:
            body = error_response(ctx.api_key, ctx.api_version, ctx.body() or {}, code)
            payload = (codec.encode_response_header(ctx.api_key, ctx.api_version,
                                                    ctx.correlation_id)
                       + codec.encode_body(ctx.api_key, ctx.api_version, _RESPONSE, body))
        except Exception:
            log.exception("error_synthesis_failed", conn=self.id, api=api_label(ctx.api_key),
                          version=ctx.api_version, error_code=code)
            return None
        metrics.injected_errors_total.labels(api_label(ctx.api_key), _error_name(code)).inc()
        if ctx.exchange_wanted:
            ctx.response_body = body
            ctx.decision = ctx.decision  # outcome set when written
        return with_size(payload)

    # ----------------------------------------------------------------- writer

    def _flush(self) -> None:
        if self.closed or self.client is None or self.stream_left:
            return
        now = self.loop.time()
        slots = self.slots
        client = self.client
        out: list[bytes] = []
        observed: list[RequestContext] = []
        nbytes = 0
        if self.throttle_bps or self.trickle is not None:
            self._flush_throttled(now)
            head = None
        while not self.throttle_bps:
            head = slots.peek_ready(now)
            if head is None:
                break
            slots.popleft()
            data = head.data
            assert data is not None
            out.append(data)
            nbytes += len(data)
            self._c.response(head.api_key, head.api_version)
            if head.owner.exchange_wanted:
                observed.append(head.owner)
        if out:
            # One writev for every response released together (a chunk from the broker
            # often carries many): syscalls, not Python, are the per-response cost.
            if len(out) == 1:
                client.write(out[0])
            else:
                client.writelines(out)
            self.bytes_out += nbytes
            self._c.b2c.inc(nbytes)
            for ctx in observed:
                outcome = ("error_injected" if ctx.decision.action in (
                    ActionKind.ERROR, ActionKind.ERROR_AFTER_FORWARD) else "ok")
                self._end_exchange(ctx, outcome)
        due = slots.head_due_at()
        if due is not None and due > now:
            self._schedule_flush(due)
        if "inflight" in self.paused and len(slots) < self.config.max_inflight:
            if self.backlog:
                self._drain_backlog()
            if not self.backlog and len(self.slots) < self.config.max_inflight:
                self.resume_client_reading("inflight")

    def _flush_throttled(self, now: float) -> None:
        """THROTTLE: trickle responses to the client at `throttle_bps`, in slices of about
        50 ms worth, so even one large response respects the cap (order is kept: a slot is
        finished before the next one starts)."""
        rate = self.throttle_bps or 1 << 30
        assert self.client is not None
        while True:
            if self.trickle is None:
                head = self.slots.peek_ready(now)
                if head is None:
                    return
                self.slots.popleft()
                assert head.data is not None
                self.trickle = memoryview(head.data)
                self.trickle_slot = head
                self._c.response(head.api_key, head.api_version)
            if self.next_write_at > now:
                self._schedule_flush(self.next_write_at)
                return
            piece = bytes(self.trickle[:max(1024, int(rate * 0.05))])
            self.trickle = self.trickle[len(piece):]
            self.client.write(piece)
            self.bytes_out += len(piece)
            self._c.b2c.inc(len(piece))
            self.next_write_at = max(now, self.next_write_at) + len(piece) / rate
            if not self.trickle:
                done, self.trickle, self.trickle_slot = self.trickle_slot, None, None
                if done is not None and done.owner.exchange_wanted:
                    ctx: RequestContext = done.owner
                    outcome = ("error_injected" if ctx.decision.action in (
                        ActionKind.ERROR, ActionKind.ERROR_AFTER_FORWARD) else "ok")
                    self._end_exchange(ctx, outcome)

    def _schedule_flush(self, at: float) -> None:
        if self._flush_handle is not None:
            if self._flush_at <= at:
                return
            self._flush_handle.cancel()
        self._flush_at = at
        self._flush_handle = self.loop.call_at(at, self._flush_timer)

    def _flush_timer(self) -> None:
        self._flush_handle = None
        self._flush()

    def _write_client(self, data: bytes) -> None:
        if self.client is not None and not self.closed:
            self.client.write(data)
            self.bytes_out += len(data)
            self._c.b2c.inc(len(data))

    # ----------------------------------------------------------------- observers

    def _end_exchange(self, ctx: RequestContext, outcome: str) -> None:
        if not ctx.exchange_wanted or self.open_exchanges.pop(id(ctx), None) is None:
            return
        now = self.loop.time()
        ex = Exchange(
            connection_id=self.id,
            client_host=self.client_host,
            broker_node=self.node_id,
            client_id=ctx.client_id,
            api_key=ctx.api_key,
            api_version=ctx.api_version,
            correlation_id=ctx.correlation_id,
            request_body=ctx.body(),
            response_body=ctx.response_body if outcome in ("ok", "error_injected") else None,
            started_at=ctx.started_at,
            latency_s=now - ctx.started_mono,
            upstream_latency_s=(None if ctx.forwarded_at is None
                                else now - ctx.forwarded_at),
            outcome=outcome,
            decision=ctx.decision,
        )
        for observer in self.server.observers:
            try:
                observer.observe(ex)
            except Exception:
                log.exception("observer_failed", observer=type(observer).__name__)

    # ----------------------------------------------------------------- closing

    def frame_error(self, exc: FrameError) -> None:
        metrics.frame_errors_total.labels(exc.reason).inc()
        log.warning("frame_error", conn=self.id, peer=f"{self.client_host}:{self.client_port}",
                    reason=exc.reason, detail=exc.detail)
        self.close(f"frame_error:{exc.reason}", detail=exc.detail)

    def close(self, reason: str, mode: CloseMode = CloseMode.GRACEFUL, detail: str = "") -> None:
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        for h in (self._flush_handle, self._pump_handle, *self._timers):
            if h is not None:
                h.cancel()
        if self.splicer is not None:
            self.splicer.close()
            self.splicer = None
        self._timers.clear()
        if self._connect_task is not None and not self._connect_task.done():
            self._connect_task.cancel()
        outcome = "upstream_closed" if reason.startswith("upstream") else "closed"
        for ctx in list(self.open_exchanges.values()):
            self._end_exchange(ctx, outcome)
        client = self.client
        if client is not None:
            if mode is CloseMode.RESET:
                sock = client.get_extra_info("socket")
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
                client.abort()
            else:
                client.close()
        if self.upstream is not None:
            self.upstream.close()
        label = reason.split(":", 1)[0] if reason.startswith("frame_error") else reason
        metrics.connection_closes_total.labels(label).inc()
        if self.client is not None:
            metrics.connections_active.labels(str(self.node_id)).dec()
        self.server.unregister(self)
        broker = (f"{self.upstream_addr[0]}:{self.upstream_addr[1]}"
                  if self.upstream_addr else None)
        log.info("connection_closed", conn=self.id,
                 peer=f"{self.client_host}:{self.client_port}", node=self.node_id,
                 broker=broker, bytes_in=self.bytes_in, bytes_out=self.bytes_out,
                 requests=self.requests, reason=reason, mode=mode.value,
                 **({"detail": detail} if detail else {}))

    @property
    def idle(self) -> bool:
        """Nothing the client is still owed that could still arrive: responses awaited from
        the broker, held (delayed) responses, streams in progress. A slot that a fault left
        unfilled on purpose never will be, and nothing behind it can go out."""
        if (self.to_forward or self.inflight or self.stream_left or self.req_stream_left
                or (self.splicer is not None and self.splicer.active)
                or self.trickle is not None):
            return False
        head = self.slots.peek_ready(float("inf"))
        return head is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "client": f"{self.client_host}:{self.client_port}",
            "node_id": self.node_id,
            "broker": (f"{self.upstream_addr[0]}:{self.upstream_addr[1]}"
                       if self.upstream_addr else None),
            "opened_at": self.opened_at,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "requests": self.requests,
            "pending_responses": len(self.slots),
            "throttle_bytes_per_s": self.throttle_bps,
            "paused": sorted(self.paused),
        }


def _error_name(code: int) -> str:
    try:
        return str(codec.error_name(code))
    except Exception:
        return str(code)
