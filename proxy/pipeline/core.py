"""The state of one connection pair, reading control of both sides, and how the pair ends.

Every part of `Connection` (writer, request path, cut-through, response path) works on the
state created here; `close` is the one way out, whoever asks for it (a fault, a protocol error,
either peer going away, shutdown). Reading of each side is held for named reasons (the client:
in-flight limit, back-pressure, shutdown, a request splice; the upstream: a slow client, a
response splice) and resumes only when none is left, so one reason's end never lets a
transport read while another still needs it quiet (a splicer reading that socket itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections import deque
from typing import Any

import structlog

from kafka_chaos_proxy.faults.decision import CloseMode, Decision
from kafka_chaos_proxy.proxy import metrics, side_channel
from kafka_chaos_proxy.proxy.exchange import ConnectionObserver
from kafka_chaos_proxy.proxy.fetch_sessions import FetchSession
from kafka_chaos_proxy.proxy.pipeline import limits
from kafka_chaos_proxy.proxy.pipeline.counters import counters
from kafka_chaos_proxy.proxy.pipeline.exchanges import ExchangeBuilder
from kafka_chaos_proxy.proxy.pipeline.framing import FETCH, METADATA, FrameError, FrameReader
from kafka_chaos_proxy.proxy.pipeline.host import ProxyHost
from kafka_chaos_proxy.proxy.pipeline.request_context import InFlight, RequestContext
from kafka_chaos_proxy.proxy.pipeline.sasl import SaslWatch
from kafka_chaos_proxy.proxy.pipeline.slots import Slot, SlotQueue
from kafka_chaos_proxy.proxy.pipeline.splice import Splicer
from kafka_chaos_proxy.proxy.roles import COORDINATION_API_KEYS

log = structlog.get_logger("kcp.connection")

_LINGER_RESET = struct.pack("ii", 1, 0)


class ConnectionCore(ExchangeBuilder):
    def __init__(self, server: ProxyHost[Any], node_id: int) -> None:
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
        self.inflight: deque[InFlight] = deque()
        self.open_exchanges: dict[int, RequestContext] = {}
        self.backlog: deque[bytes] = deque()
        self.stream_left = 0  # bytes of a cut-through response still to stream to the client
        self._batching = False  # inside upstream_data: flush once at the end
        self.trickle: memoryview | None = None  # rest of the response being throttled out
        self.trickle_slot: Slot | None = None
        self._up_batch: list[bytes] | None = None  # inside _process: upstream writes collected
        self.req_stream_left = 0  # bytes of a cut-through request still to stream upstream
        self.splicer: Splicer | None = None  # kept for the connection's large requests
        self.response_splicer: Splicer | None = None  # ... and for its large responses
        self._predecided: tuple[int, Decision] | None = None
        self._draining = False
        self.closed = False
        self.close_reason: str | None = None
        self.paused: set[str] = set()  # why client reading is held
        self.upstream_paused: set[str] = set()  # why upstream reading is held
        self.bytes_in = 0
        self.bytes_out = 0
        self.requests = 0
        self.raw_sasl = False
        # TLS on either side: the splice fast path reads and writes the sockets themselves,
        # which would move ciphertext, so it is off whenever one side is TLS.
        self.client_tls = False
        self.tls_ready = False  # the client's TLS handshake has completed
        self.upstream_tls = False
        # Who the client authenticated as: its SASL principal once the broker accepted it,
        # else its TLS client certificate's subject (`proxy.pipeline.sasl`, `tls_accept`).
        self.principal: str | None = None
        self.cert_principal: str | None = None
        self.sasl: SaslWatch | None = None  # made on the first SASL request
        self.throttle_bps: int | None = None
        self.next_write_at = 0.0
        self._flush_handle: asyncio.TimerHandle | None = None
        self._flush_at = 0.0
        self._pump_handle: asyncio.TimerHandle | None = None
        self._timers: list[asyncio.TimerHandle] = []
        self.opened_at = time.time()
        self.opened_mono = self.loop.time()
        self._held = 0  # bytes of an incomplete client frame counted in `limits.BUFFERED`
        self._swept_bytes = 0  # bytes_in + bytes_out at the last sweep
        self.active_at = self.opened_mono  # when the sweep last saw bytes move
        self._frame_mark = -1  # `requests` when the sweep first saw the current frame
        self._frame_since = 0.0  # ... and when; 0.0: no frame in progress
        self._c = counters()
        self._connect_task: asyncio.Task[None] | None = None
        # The requests looked into before they are decided: the coordination APIs (for the
        # observers) and, with `ProxyConfig.fetch_events`, Fetch (sampled, request_path); then
        # Metadata answers name topic ids too (response_path; -1 when off). Off, a Fetch costs
        # what it did before: the one set lookup every request pays. The session is made at
        # the connection's first Fetch.
        sampling = server.fetch_sink is not None
        self.inspected_apis = COORDINATION_API_KEYS | {FETCH} if sampling \
            else COORDINATION_API_KEYS
        self.topic_ids_api = METADATA if sampling else -1
        self.fetch_session: FetchSession | None = None
        # Requests forwarded without a context (`proxy.pipeline.passing`): never an API
        # looked into, a SASL step, an ApiVersions (answered by the proxy when too new) or an
        # API whose answer is rewritten. The table follows the decider's quiet keys (compared
        # by identity per chunk) and the client id: the last one the scan saw, as sent (None:
        # none yet) and as text ("" for a null one, as rules read it).
        self._pass_quiet: frozenset[int] | None = None
        self._pass_table: dict[int, int] = {}
        self._pass_client_id: bytes | None = None
        self._pass_client: str | None = None

    # ----------------------------------------------------------------- client reading

    def pause_client_reading(self, reason: str) -> None:
        self._pause_reading(self.client, self.paused, self.splicer, reason)

    def resume_client_reading(self, reason: str) -> None:
        self._resume_reading(self.client, self.paused, reason)

    def pause_upstream_reading(self, reason: str) -> None:
        self._pause_reading(self.upstream, self.upstream_paused, self.response_splicer, reason)

    def resume_upstream_reading(self, reason: str) -> None:
        self._resume_reading(self.upstream, self.upstream_paused, reason)

    def _pause_reading(self, transport: asyncio.Transport | None, paused: set[str],
                       splicer: Splicer | None, reason: str) -> None:
        """Hold `transport`'s reading for `reason` too. Pausing a paused transport is a no-op,
        so it is asked every time: a transport that came after an earlier reason (an upstream
        connected while the client was slow) is held as the set says."""
        if transport is not None and not self.closed:
            with contextlib.suppress(Exception):
                transport.pause_reading()
        paused.add(reason)
        if reason != "splice" and splicer is not None and splicer.awaiting_head:
            splicer.cancel_head()  # the splicer's own reader must stop reading too
            paused.discard("splice")

    def _resume_reading(self, transport: asyncio.Transport | None, paused: set[str],
                        reason: str) -> None:
        if reason in paused:
            paused.discard(reason)
            if not paused and transport is not None and not self.closed:
                with contextlib.suppress(Exception):
                    transport.resume_reading()

    # ----------------------------------------------------------------- limits

    def _account_held(self) -> None:
        """Settle the bytes the client reader holds with the buffer budget (called when they
        changed); close the connection when its frame crosses a limit (invariant 5)."""
        if self.closed:
            return
        held = self.creader.pending
        grew = held > self._held
        budget = limits.BUFFERED
        budget.total += held - self._held
        self._held = held
        if not grew:
            return
        cfg = self.config
        if held > cfg.max_buffered_bytes_per_connection:
            detail = (f"{held} bytes of one frame held > max_buffered_bytes_per_connection "
                      f"{cfg.max_buffered_bytes_per_connection}")
        elif budget.total > cfg.max_buffered_bytes_total:
            detail = (f"{budget.total} bytes held by all connections > "
                      f"max_buffered_bytes_total {cfg.max_buffered_bytes_total}")
        else:
            return
        self.frame_error(FrameError("buffer_limit", detail))

    def _release_held(self) -> None:
        limits.BUFFERED.total -= self._held
        self._held = 0

    def refuse(self, reason: str, detail: str) -> None:
        """Close a connection just accepted, over a connection limit: before anything was
        opened or counted for it (no upstream connection, not in `connections_active`)."""
        self.closed = True
        self.close_reason = f"refused:{reason}"
        metrics.connection_refusals_total.labels(reason).inc()
        log.warning("connection_refused", peer=f"{self.client_host}:{self.client_port}",
                    node=self.node_id, reason=reason, detail=detail)
        if self.client is not None:
            self.client.close()

    def sweep(self, now: float) -> None:
        """The server's periodic look at this connection (`limits.SWEEP_INTERVAL_S`): close it
        on a timeout. Sampling the counters the hot path keeps anyway costs the hot path
        nothing; the price is up to one interval of slack on each timeout."""
        if self.closed:
            return
        moved = self.bytes_in + self.bytes_out
        if moved != self._swept_bytes:
            self._swept_bytes = moved
            self.active_at = now
        cfg = self.config
        if (cfg.handshake_timeout_s is not None and self.requests == 0
                and now - self.opened_mono > cfg.handshake_timeout_s):
            self._timed_out(limits.HANDSHAKE_TIMEOUT, now - self.opened_mono)
        elif self._frame_overdue(now, cfg.request_timeout_s):
            self._timed_out(limits.REQUEST_TIMEOUT, now - self._frame_since)
        elif (cfg.idle_timeout_s is not None and now - self.active_at > cfg.idle_timeout_s
                and self.idle):
            self._timed_out(limits.IDLE_TIMEOUT, now - self.active_at)

    def _frame_overdue(self, now: float, limit: float | None) -> bool:
        """A client frame in progress (assembled or streamed) for longer than `limit`, while
        nothing of ours held it back (reading paused by the in-flight limit, back-pressure or
        shutdown; a splice waiting for the broker). A completed request changes `requests`,
        so a new frame restarts the clock."""
        if limit is None:
            return False
        splicer = self.splicer
        paused = self.paused
        if (not (self.creader.pending or self.req_stream_left)
                or len(paused) > ("splice" in paused)
                or (splicer is not None and splicer.in_pipe)):
            self._frame_since = 0.0
            return False
        if self._frame_since == 0.0 or self._frame_mark != self.requests:
            self._frame_mark = self.requests
            self._frame_since = now
            return False
        return now - self._frame_since > limit

    def _timed_out(self, reason: str, seconds: float) -> None:
        log.warning("connection_timeout", conn=self.id,
                    peer=f"{self.client_host}:{self.client_port}", reason=reason,
                    seconds=round(seconds, 1))
        self.close(reason, detail=f"{seconds:.1f} s")

    # ----------------------------------------------------------------- closing

    def frame_error(self, exc: FrameError) -> None:
        metrics.frame_errors_total.labels(exc.reason).inc()
        log.warning("frame_error", conn=self.id, peer=f"{self.client_host}:{self.client_port}",
                    reason=exc.reason, detail=exc.detail)
        self.close(f"frame_error:{exc.reason}", detail=exc.detail)

    def close_later(self, decision: Decision) -> None:
        if decision.close_after_s is not None:
            self._timers.append(self.loop.call_later(
                max(decision.close_after_s, 0.0), self.close, "fault_close_after_drop",
                decision.close_mode))

    def close(self, reason: str, mode: CloseMode = CloseMode.GRACEFUL, detail: str = "") -> None:
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        self._release_held()
        for h in (self._flush_handle, self._pump_handle, *self._timers):
            if h is not None:
                h.cancel()
        self._close_splicers()
        self._timers.clear()
        if self._connect_task is not None and not self._connect_task.done():
            self._connect_task.cancel()
        outcome = "upstream_closed" if reason.startswith("upstream") else "closed"
        for ctx in list(self.open_exchanges.values()):
            self.end_exchange(ctx, outcome)
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
        self._tell_closed()
        broker = (f"{self.upstream_addr[0]}:{self.upstream_addr[1]}"
                  if self.upstream_addr else None)
        # Debug: a client opens and closes many connections, and these lines drowned the ones
        # about faults and rebalances that a user reads the console for.
        log.debug("connection_closed", conn=self.id,
                 peer=f"{self.client_host}:{self.client_port}", node=self.node_id,
                 broker=broker, bytes_in=self.bytes_in, bytes_out=self.bytes_out,
                 requests=self.requests, reason=reason, mode=mode.value,
                 **({"detail": detail} if detail else {}))

    def _close_splicers(self) -> None:
        for splicer in (self.splicer, self.response_splicer):
            if splicer is not None:
                splicer.close()  # their duplicated descriptors and pipes, at once
        self.splicer = self.response_splicer = None

    def _tell_closed(self) -> None:
        """Observers that want to know (`ConnectionObserver`) hear that this connection closed,
        after its last exchanges were ended above."""
        for observer in self.server.observers:
            if isinstance(observer, ConnectionObserver):
                try:
                    observer.connection_closed(self.id)
                except Exception:
                    log.exception("observer_failed", observer=type(observer).__name__)

    @property
    def side_channel_access(self) -> side_channel.Access:
        """TLS and login of the proxy's own connections to this broker (the side channel
        of broker-consistent faults, `proxy.side_channel`)."""
        return side_channel.Access(self.server.upstream_tls, self.config.upstream_sasl)

    # ----------------------------------------------------------------- for the server

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
            "client_tls": self.client_tls,
            "upstream_tls": self.upstream_tls,
            "principal": self.principal,
        }
