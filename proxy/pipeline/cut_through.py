"""Cut-through: large pass-through frames streamed as they arrive instead of stored whole.

Frames of at least `CUT_THROUGH_BYTES` (big Produce requests, big Fetch responses) are streamed
when nothing needs their body and their turn has come; everything else is framed whole. A
large request's body may even bypass user space (`proxy.pipeline.splice`). Broker addresses
(invariant 3) never ride on those: Produce/Fetch versions whose responses carry NodeEndpoints
are clamped away in ApiVersions (`proxy.versions`), so the only address-carrying responses are
the small ones `proxy.rewrite` decodes.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.faults.decision import ActionKind
from kafka_chaos_proxy.proxy.pipeline.framing import PRODUCE, FrameError, produce_acks
from kafka_chaos_proxy.proxy.pipeline.request_context import RequestContext
from kafka_chaos_proxy.proxy.pipeline.request_path import RequestPath
from kafka_chaos_proxy.proxy.pipeline.slots import Slot
from kafka_chaos_proxy.proxy.pipeline.splice import MIN_BYTES as SPLICE_MIN_BYTES
from kafka_chaos_proxy.proxy.pipeline.splice import (
    RequestSplicer,
    SpliceUnsupported,
    splice_supported,
)
from kafka_chaos_proxy.proxy.roles import COORDINATION_API_KEYS

_I32 = struct.Struct(">i")
# Pass-through frames at least this big are streamed as they arrive.
CUT_THROUGH_BYTES = 256 * 1024


class CutThrough(RequestPath):
    """Part of `Connection`: streaming large requests upstream and large responses back."""

    if TYPE_CHECKING:
        def client_data(self, data: bytes) -> None:
            """Bytes from the client socket (`Connection`)."""

    # ----------------------------------------------------------------- requests

    def _maybe_request_cut_through(self) -> None:
        """Start streaming a large request (a big Produce) upstream before it fully arrived.

        The decision is taken on the header alone, so only requests no observer decodes and no
        rewrite touches qualify, with nothing queued ahead of them (order). The fault engine
        matches body fields only on coordination APIs, which never take this path; the view's
        `body()` is None here. A non-FORWARD decision is kept and applied when the whole frame
        is in (the engine is asked once per request either way).
        """
        head = self.creader.partial(CUT_THROUGH_BYTES)
        if head is None or self._predecided is not None:
            return
        total, held = head
        if (len(held) < 256 or self.upstream is None
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
        self._c.request(hdr.api_key)
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
        """Let the kernel move the rest of a cut-through request (`proxy.pipeline.splice`): the
        proxy would only copy it in and out again. Client reading stays paused until it is done;
        where splice(2) is unavailable the transport path carries on unchanged. Never on a TLS
        side: the socket carries ciphertext there, and only the TLS transport may read or
        write it (the request streams through the transports instead, in order, with the
        same back-pressure)."""
        if self.client_tls or self.upstream_tls:
            return
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

    # ----------------------------------------------------------------- responses

    def _maybe_cut_through(self) -> None:
        """Start streaming a large response to the client before it has fully arrived.

        Store-and-forward of a multi-megabyte Fetch response doubles its transfer time, and a
        consumer with one fetch in flight per broker feels that directly. Only a plain
        pass-through response qualifies: nothing to rewrite, observe or fault, no throttle,
        and its slot is next in line (so order cannot break). Other slots are held back while
        the stream runs (`_flush` checks `stream_left`).
        """
        head = self.ureader.partial(CUT_THROUGH_BYTES)
        if head is None:
            return
        total, held = head
        if (not self.inflight or self.throttle_bps or self.raw_sasl
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
        self._c.response(ctx.api_key)
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
