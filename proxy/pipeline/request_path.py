"""The request path: client frames to decisions, slots and upstream writes, in arrival order.

Hot path (an API nobody observes, no fault): read the header, allocate a slot, forward the very
same bytes (invariant 1), batched into one upstream write per received chunk. Hotter still, a
run of requests no rule can match and nothing looks at is scanned in the received chunk itself
and forwarded with one write of that chunk, without a context or a decision
(`_forward_passing`, `proxy.pipeline.passing`); their answers come back the same way
(`ResponsePath._answer_passing`). A fault is handed
to its executor (`proxy.pipeline.executors`). Requests are forwarded in arrival order: a held
request (request-side delay) holds the requests behind it too, as a slow link would.
"""

from __future__ import annotations

import struct
import time
from collections import deque
from collections.abc import Callable

import structlog

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.codec import api_label
from kafka_chaos_proxy.faults.decision import PASS, ActionKind, Decision
from kafka_chaos_proxy.proxy.fetch_sessions import FetchSample, FetchSession
from kafka_chaos_proxy.proxy.pipeline.executors import executor_for
from kafka_chaos_proxy.proxy.pipeline.framing import (
    FETCH,
    PRODUCE,
    FrameError,
    produce_acks,
    with_size,
)
from kafka_chaos_proxy.proxy.pipeline.host import FrameTap, TriggerHooks
from kafka_chaos_proxy.proxy.pipeline.passing import (
    FLEXIBLE,
    PRODUCE_ACKS,
    SHAPES,
    passing_acks,
    passing_table,
)
from kafka_chaos_proxy.proxy.pipeline.request_context import PassThrough, RequestContext
from kafka_chaos_proxy.proxy.pipeline.sasl import SASL_API_KEYS, SASL_HANDSHAKE, SaslWatch
from kafka_chaos_proxy.proxy.pipeline.writer import Writer
from kafka_chaos_proxy.proxy.versions import API_VERSIONS, UNSUPPORTED_VERSION

log = structlog.get_logger("kcp.connection")

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
# size, api key, api version, correlation id, client id length: a request's first 14 bytes.
_PASSING_HEAD = struct.Struct(">ihhih")
_RESPONSE = codec.Direction.RESPONSE


class RequestPath(Writer):
    """Part of `Connection`: handling client frames, forwarding them upstream."""

    # `run --capture`: set on the connection by the server that accepted it, only then.
    capture: FrameTap | None = None

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

    def _forward_passing(self, data: bytes) -> int:
        """Forward the longest run of complete frames at the start of `data` that nothing
        looks at (`proxy.pipeline.passing`) with one upstream write, each given its slot;
        return how many bytes that took (0: none). The caller hands the rest to the full
        path, which is also where a frame the scan is unsure of goes: it reports what is
        wrong with it, the scan never does.

        Only called when nothing is queued before these frames (no backlog, no request
        waiting to go upstream, no incomplete frame held): their order is then the order
        they are written in.
        """
        if not self._passing_table(self._pass_client) and self._pass_client_id is not None:
            return 0  # nothing this client sends may pass (until the rules change)
        n = len(data)
        pos = 0
        limit = self.config.max_inflight
        max_size = self.creader.max_frame_bytes
        slots = self.slots
        inflight = self.inflight
        counts = self._c
        now = self.loop.time()
        while n - pos >= 14:
            size, api_key, api_version, correlation_id, id_len = _PASSING_HEAD.unpack_from(
                data, pos)
            end = pos + 4 + size
            key_version = api_key << 16 | api_version
            kind = SHAPES.get(key_version)
            if kind is None or size < 10 or size > max_size or end > n or len(slots) >= limit:
                break
            body = self._passing_body(data, pos, end, id_len, kind & FLEXIBLE)
            if body < 0:
                break
            if key_version not in self._pass_table:  # (the table of this frame's client id)
                break
            if kind & PRODUCE_ACKS:
                acks = passing_acks(data, body, end, api_version, kind & FLEXIBLE)
                if acks is None:
                    break
            request = PassThrough(api_key, api_version, correlation_id, now)
            if not kind & PRODUCE_ACKS or acks != 0:  # acks=0: no response, no slot
                request.slot = slots.allocate(correlation_id, api_key, api_version, request)
                inflight.append(request)
            self.requests += 1
            counts.request(api_key)
            pos = end
        if pos:
            assert self.upstream is not None
            self.upstream.write(data if pos == n else memoryview(data)[:pos])
            if len(slots) >= limit:
                self.pause_client_reading("inflight")
        return pos

    def _may_pass(self) -> bool:
        """Whether frames arriving now may be forwarded without a context: nothing waits
        before them (held back by the in-flight limit, delayed, not yet connected upstream,
        decided early for cut-through), nothing taps them, and they are Kafka requests (not
        raw SASL tokens)."""
        return (not self.backlog and not self.to_forward and self.upstream is not None
                and self.capture is None and not self.raw_sasl and self._predecided is None
                and not self.closed)

    def _pass_leading(self, frames: list[bytes]) -> list[bytes]:
        """Forward the leading frames of `frames` (whole frames, as the frame reader joined
        them) that may pass, one write each; return the rest, for the full path."""
        for i, frame in enumerate(frames):
            if self._forward_passing(frame) != len(frame):
                return frames[i:] if i else frames
        return []

    def _passing_table(self, client_id: str | None) -> dict[int, int]:
        """The pass-through table for requests from `client_id` under the current rules
        (`proxy.pipeline.passing`); kept on the connection, which compares the decider's
        answer by identity, so an unchanged rule set costs one call and no rebuild."""
        self._pass_client = client_id
        quiet = self.server.quiet_api_keys(client_id)
        if quiet is not self._pass_quiet:
            excluded = frozenset(self.inspected_apis | SASL_API_KEYS | {API_VERSIONS}
                                 | set(self.server.response_transforms))
            self._pass_quiet = quiet
            self._pass_table = passing_table(quiet, excluded)
        return self._pass_table

    def _passing_body(self, data: bytes, pos: int, end: int, id_len: int,
                      flexible: int) -> int:
        """Where the body of the frame at `pos` starts, past its client id (checked to be
        UTF-8 as the full path does, once per distinct id) and its empty tagged fields; -1
        when the full path should look at it."""
        body = pos + 14 + max(id_len, 0)
        if body > end:
            return -1
        known = self._pass_client_id
        if known is None or len(known) != max(id_len, 0) or not data.startswith(known, pos + 14):
            raw = data[pos + 14:body]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                return -1
            self._pass_client_id = raw
            self._passing_table(text)
        if flexible:
            if body >= end or data[body] != 0:  # tagged fields in the header: rare
                return -1
            body += 1
        return body

    def _drain_backlog(self) -> None:
        if self._draining:
            return
        self._draining = True
        try:
            frames, self.backlog = self.backlog, deque()
            self._process(frames)
        finally:
            self._draining = False

    def _want_exchange(self, ctx: RequestContext, size: int) -> None:
        """Observers get this exchange; its body is decoded now unless it is too large."""
        ctx.exchange_wanted = True
        ctx.started_at = time.time()
        if size <= self.config.max_observed_bytes:
            ctx.body()
        else:
            self.too_large_to_observe(ctx, size)

    def _observe_request(self, ctx: RequestContext, size: int) -> TriggerHooks | None:
        """A coordination request the observers get: decoded, and reported to the trigger
        feed before it is decided; returns the feed, to report it again once dispatched."""
        self._want_exchange(ctx, size)
        triggers = self.server.triggers
        if triggers is not None:
            triggers.request_arrived(ctx)
        return triggers

    def _on_request(self, frame: bytes) -> None:
        if self.raw_sasl and self._raw_sasl_token(frame):
            return
        if len(frame) < 12:
            raise FrameError("short_header", f"{len(frame) - 4} bytes")
        hdr = codec.parse_request_header(memoryview(frame)[4:])
        if self.capture is not None:
            self.capture.request(self.id, hdr.api_key, hdr.api_version, frame)
        now = self.loop.time()
        self.requests += 1
        self._c.request(hdr.api_key)
        ctx = RequestContext(self, frame, hdr, now)
        if hdr.api_key in SASL_API_KEYS:
            self._sasl_request(ctx)
        expects_response = True
        if hdr.api_key == PRODUCE and ctx.body_offset is not None:
            flexible = codec.is_flexible(PRODUCE, hdr.api_version)
            expects_response = produce_acks(frame, ctx.body_offset, hdr.api_version,
                                            flexible) != 0
        triggers = None
        if hdr.api_key in self.inspected_apis:
            triggers = self._inspect_request(ctx, len(frame))
        if hdr.api_key == API_VERSIONS and hdr.header_size is None and expects_response:
            self._unsupported_api_versions(ctx)
            return
        ctx.decision = decision = self._decision_for(ctx)
        if expects_response:
            ctx.slot = self.slots.allocate(hdr.correlation_id, hdr.api_key, hdr.api_version, ctx)
        if ctx.exchange_wanted:
            self.open_exchanges[id(ctx)] = ctx
        if decision.action is ActionKind.FORWARD:
            self.forward(ctx)
        else:
            executor_for(decision.action).on_request(self, ctx, decision, expects_response)
        if triggers is not None:
            triggers.request_dispatched(ctx)

    def _raw_sasl_token(self, frame: bytes) -> bool:
        """After a SaslHandshake v0: forward a raw token as it is (True), or leave that mode
        at the first frame that is a Kafka request again (False)."""
        if self._looks_like_request(frame):
            self.raw_sasl = False
            return False
        if self.sasl is not None:
            self.sasl.token(frame[4:])
        self._send_upstream_raw(frame)
        return True

    def _sasl_request(self, ctx: RequestContext) -> None:
        """Note the mechanism a SaslHandshake names and the name a client's first token
        carries (`proxy.pipeline.sasl`); the request itself is forwarded unchanged."""
        watch = self.sasl
        if watch is None:
            watch = self.sasl = SaslWatch()
        body = ctx.body()
        if body is None:
            return
        if ctx.api_key == SASL_HANDSHAKE:
            watch.handshake(body.get("mechanism"))
        else:
            watch.token(body.get("auth_bytes"))

    def _inspect_request(self, ctx: RequestContext, size: int) -> TriggerHooks | None:
        """A request of `inspected_apis`: a Fetch is sampled, a coordination request goes to
        the observers (if any); returns the trigger feed as `_observe_request` does."""
        if ctx.api_key == FETCH:
            self._sample_fetch(ctx, size)
            return None
        if not self.server.observers:
            return None
        return self._observe_request(ctx, size)

    def _sample_fetch(self, ctx: RequestContext, size: int) -> None:
        """`fetch_events`: fold this Fetch request into the connection's fetch session and
        tell the event log when the set changed or a second passed (`proxy.fetch_sessions`).
        A frame over `max_observed_bytes`, or one the codec cannot read, is not sampled. Never
        raises: a sample is not worth a connection."""
        try:
            body = ctx.body() if size <= self.config.max_observed_bytes else None
            if body is None:
                return
            session = self.fetch_session
            if session is None:
                session = self.fetch_session = FetchSession()
            changed = session.apply(ctx.api_version, body)
            now = time.time()
            sink = self.server.fetch_sink
            if sink is None or not session.due(now, changed):
                return
            fetches = session.take(now)
            sink(FetchSample(
                at=now, connection_id=self.id, client_id=ctx.client_id,
                client_host=self.client_host, broker_node=self.node_id,
                api_version=ctx.api_version, correlation_id=ctx.correlation_id,
                partitions=session.partitions(self.server.topic_names),
                dropped=session.dropped, fetches=fetches, session_id=session.session_id,
                session_epoch=session.session_epoch))
        except Exception:
            log.exception("fetch_sample_failed", conn=self.id)

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

    def _decision_for(self, ctx: RequestContext) -> Decision:
        """The decision cut-through made from the header alone, else the decider's."""
        pre = self._predecided
        if pre is not None and pre[0] == ctx.correlation_id:
            self._predecided = None
            return pre[1]
        return self._decide(ctx)

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

    # ----------------------------------------------------------------- for executors

    def applied(self, decision: Decision) -> None:
        """Confirm an injection; the engine counts `kcp_faults_injected_total` from this."""
        if decision.on_applied is not None:
            try:
                decision.on_applied()
            except Exception:
                log.exception("on_applied_failed", conn=self.id, rule=decision.rule_id)

    def now(self) -> float:
        return self.loop.time()

    def schedule(self, at: float, callback: Callable[[], None]) -> None:
        """Run `callback` at loop time `at`, unless the connection has closed by then."""
        def fire() -> None:
            self._timers.remove(handle)  # a long-lived connection keeps no spent timers
            if not self.closed:
                callback()
        handle = self.loop.call_at(at, fire)
        self._timers.append(handle)

    def park(self, ctx: RequestContext, decision: Decision, resume: Callable[[], None],
             expire: Callable[[], None]) -> None:
        """Hold `ctx` (its request or response: the executor decides which) until the hold's
        `until`, a release or its timeout; then `resume` or, on timeout, `expire` (neither
        runs once the connection has closed)."""
        def unless_closed(callback: Callable[[], None]) -> Callable[[], None]:
            def run() -> None:
                if not self.closed:
                    callback()
            return run

        triggers = self.server.triggers
        if triggers is None:  # a server without a trigger feed cannot hold: time out now
            log.warning("hold_unavailable", conn=self.id, rule=decision.rule_id)
            expire()
            return
        triggers.holds.park(rule_id=decision.rule_id, connection=self.id,
                            api=api_label(ctx.api_key), correlation_id=ctx.correlation_id,
                            plan=decision.plan, resume=unless_closed(resume),
                            expire=unless_closed(expire))

    def throttle(self, bytes_per_s: int | None) -> None:
        self.throttle_bps = bytes_per_s

    # ----------------------------------------------------------------- forwarding

    def forward(self, ctx: RequestContext) -> None:
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
