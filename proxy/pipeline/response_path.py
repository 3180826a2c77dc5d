"""The response path: broker frames matched to their requests, rewritten, filled into slots.

Responses are matched FIFO against the requests in flight and checked by correlation id; on
the hot path the very same bytes fill the slot (invariant 1). Only APIs that carry broker
addresses or versions (see `proxy.rewrite`) and the coordination APIs (for observers) are ever
decoded. A faulted request's response goes to its executor (`proxy.pipeline.executors`).

`upstream_data` takes the upstream transport's bytes, and also the head of the next response
that a response splicer read by hand after a splice (`proxy.pipeline.cut_through`): either way
a large pass-through response may start streaming cut-through here, its rest then spliced.
"""

from __future__ import annotations

import struct

import structlog

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.codec import api_label
from kafka_chaos_proxy.faults.decision import ActionKind
from kafka_chaos_proxy.proxy.pipeline.cut_through import CutThrough
from kafka_chaos_proxy.proxy.pipeline.executors import executor_for
from kafka_chaos_proxy.proxy.pipeline.framing import METADATA, FrameError
from kafka_chaos_proxy.proxy.pipeline.host import ResponseTransform
from kafka_chaos_proxy.proxy.pipeline.request_context import PassThrough, RequestContext
from kafka_chaos_proxy.proxy.pipeline.sasl import SASL_API_KEYS, SASL_AUTHENTICATE, SASL_HANDSHAKE

log = structlog.get_logger("kcp.connection")

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_SIZE_CORR = struct.Struct(">ii")
_RESPONSE = codec.Direction.RESPONSE


class ResponsePath(CutThrough):
    """Part of `Connection`: the upstream transport's callbacks and response handling."""

    def upstream_data(self, data: bytes) -> None:
        if self.stream_left:
            n = self.stream_left
            if len(data) <= n:
                self._stream(data)
                return
            self._stream(data[:n])
            data = data[n:]
        if (self.inflight and not self.ureader.pending and self.client is not None
                and not self.stream_left and not self.throttle_bps and self.trickle is None
                and not self.raw_sasl and not self.closed):
            taken = self._answer_passing(data)
            if taken:
                if taken == len(data):
                    return
                data = data[taken:]
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

    def upstream_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            self.close("upstream_closed", detail=repr(exc) if exc else "")

    def _on_response(self, frame: bytes) -> None:
        if not self.inflight:
            self._unmatched_response(frame)
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
        if isinstance(ctx, PassThrough):  # nothing looks at it, nothing rewrites it
            self._pass_response(ctx, frame)
        else:
            self._context_response(ctx, frame)

    def _context_response(self, ctx: RequestContext, frame: bytes) -> None:
        """The answer to a request that went the full path: captured, rewritten, observed,
        handed to its fault's executor, or filled into its slot."""
        if self.capture is not None:
            self.capture.response(self.id, ctx.api_key, ctx.api_version, frame)
        now = self.loop.time()
        if ctx.forwarded_at is not None:
            self._c.latency(ctx.api_key, now - ctx.forwarded_at)
        api_key = ctx.api_key
        data = frame
        transform = self.server.response_transforms.get(api_key)
        if transform is not None:
            rewritten = self._rewrite(ctx, transform, frame)
            if rewritten is None:
                return
            data = rewritten
        if api_key in SASL_API_KEYS:
            self._sasl_answered(ctx, frame)
        if ctx.exchange_wanted:
            self._observe_broker_response(ctx, data)
        d = ctx.decision
        if d.action is not ActionKind.FORWARD:
            executor_for(d.action).on_response(self, ctx, d, data, now)
            return
        # `fill_slot`, inlined: this is the pass-through path.
        slot = ctx.slot
        assert slot is not None
        slot.data = data
        slot.ready_at = 0.0
        if not self._batching:
            self._flush()

    def _answer_passing(self, data: bytes) -> int:
        """Write the longest run of complete frames at the start of `data` that answer
        requests forwarded without a context, in order, to the client with one write: the
        very bytes that came (invariant 1), released in request order (invariant 2) since
        each answers the request at the head of the in-flight queue whose slot heads the
        slot queue (nothing answered earlier waits). Returns the bytes taken (0: none); the
        rest takes the full path (which closes on a correlation id that does not match)."""
        inflight = self.inflight
        slots = self.slots
        n = len(data)
        pos = 0
        taken: list[PassThrough] = []
        while n - pos >= 8 and len(taken) < len(inflight):
            ctx = inflight[len(taken)]
            # Its slot must be next in the slot queue too: a request answered by the proxy
            # itself (an injected error) has a slot between two in flight, and goes first.
            if not isinstance(ctx, PassThrough) or slots.nth(len(taken)) is not ctx.slot:
                break
            size, corr = _SIZE_CORR.unpack_from(data, pos)
            end = pos + 4 + size
            if (size < 4 or end > n or corr != ctx.correlation_id
                    or size > self.ureader.max_frame_bytes):
                break
            taken.append(ctx)
            pos = end
        if not taken:
            return 0
        now = self.loop.time()
        counts = self._c
        for ctx in taken:
            inflight.popleft()
            slots.popleft()
            counts.response(ctx.api_key)
            if ctx.forwarded_at is not None:
                counts.latency(ctx.api_key, now - ctx.forwarded_at)
        assert self.client is not None
        self.client.write(data if pos == n else memoryview(data)[:pos])
        self.bytes_out += pos
        counts.b2c.inc(pos)
        self._flush()  # what was answered behind them (an injected error), and reading again
        return pos

    def _pass_response(self, ctx: PassThrough, frame: bytes) -> None:
        """The answer to a request forwarded without a context fills its slot as it came."""
        slot = ctx.slot
        assert slot is not None and ctx.forwarded_at is not None
        self._c.latency(ctx.api_key, self.loop.time() - ctx.forwarded_at)
        slot.data = frame
        slot.ready_at = 0.0
        if not self._batching:
            self._flush()

    def _learn_topic_ids(self, ctx: RequestContext, frame: bytes) -> None:
        """`fetch_events`: the topic ids and names of a Metadata answer (v10+ carry ids), so
        Fetch v13+ samples name their topics. The answer is decoded whole, only up to
        `max_observed_bytes` (a larger one teaches nothing); never raises."""
        if len(frame) > self.config.max_observed_bytes:
            return
        try:
            _, hsize = codec.parse_response_header(memoryview(frame)[4:], METADATA,
                                                   ctx.api_version)
            body = codec.decode_body(METADATA, ctx.api_version, _RESPONSE,
                                     memoryview(frame)[4 + hsize:])
            self.server.topic_names.learn_metadata(body)
        except Exception as exc:
            log.warning("metadata_decode_failed", conn=self.id, version=ctx.api_version,
                        error=str(exc))

    def _unmatched_response(self, frame: bytes) -> None:
        """A frame from the broker with no request in flight: raw SASL, or a broken broker."""
        if self.raw_sasl:
            if self.sasl is not None:  # the broker took the step (a refusal closes instead)
                self.principal = self.sasl.answered(0) or self.cert_principal
            self._write_client(frame)
            return
        self.close("unexpected_response", detail="response with no request in flight")

    def _sasl_answered(self, ctx: RequestContext, frame: bytes) -> None:
        """The broker's answer to a SASL step: the principal from then on is the one the
        client's token named once the broker accepted it (`proxy.pipeline.sasl`)."""
        if ctx.api_key == SASL_HANDSHAKE and ctx.api_version == 0 and len(frame) >= 10:
            # v0: raw SASL tokens follow a successful handshake, without Kafka headers.
            self.raw_sasl = _I16.unpack_from(frame, 8)[0] == 0
        if self.sasl is None:
            return
        try:
            _, hsize = codec.parse_response_header(memoryview(frame)[4:], ctx.api_key,
                                                   ctx.api_version)
            (code,) = _I16.unpack_from(frame, 4 + hsize)
        except (codec.CodecError, struct.error, ValueError):
            return  # the client will make of it what it can; the principal stays
        if ctx.api_key == SASL_AUTHENTICATE:
            self.principal = self.sasl.answered(code) or self.cert_principal
        elif code:
            self.sasl.answered(code)

    def _rewrite(self, ctx: RequestContext, transform: ResponseTransform,
                 frame: bytes) -> bytes | None:
        """The frame with broker addresses rewritten (or as it came when nothing changed);
        None when rewriting failed and the connection was closed. A Metadata answer also
        names topic ids first, with fetch_events on (Metadata is always rewritten)."""
        if ctx.api_key == self.topic_ids_api:
            self._learn_topic_ids(ctx, frame)
        try:
            new = transform(ctx.api_version, frame)
        except Exception as exc:
            log.exception("response_rewrite_failed", conn=self.id, api=api_label(ctx.api_key),
                          version=ctx.api_version)
            # Passing it on could leak a real broker address (invariant 3): close instead.
            self.close("rewrite_failed", detail=str(exc))
            return None
        return frame if new is None else new
