"""Cut-through: large pass-through frames streamed as they arrive instead of stored whole.

Frames of at least `CUT_THROUGH_BYTES` (big Produce requests, big Fetch responses) are streamed
when nothing needs their body and their turn has come; everything else is framed whole. The
rest of such a frame, once its header decided it, may even bypass user space
(`proxy.pipeline.splice`): a request's body goes client socket -> pipe -> upstream socket, a
response's upstream socket -> pipe -> client socket, with the source transport's reading held
("splice") meanwhile. Afterwards the next frame's head is read by hand, so that a following
large frame is spliced from its start too. Where splice(2) cannot serve (not Linux, refused
before a byte moved, TLS on either side) the frame streams through the transports, in the same
order with the same back-pressure. Broker addresses (invariant 3) never ride on those:
Produce/Fetch versions whose responses carry NodeEndpoints are clamped away in ApiVersions
(`proxy.versions`), so the only address-carrying responses are the small ones `proxy.rewrite`
decodes.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.faults.decision import ActionKind
from kafka_chaos_proxy.proxy.pipeline.framing import PRODUCE, FrameError, produce_acks
from kafka_chaos_proxy.proxy.pipeline.request_context import RequestContext
from kafka_chaos_proxy.proxy.pipeline.request_path import RequestPath
from kafka_chaos_proxy.proxy.pipeline.slots import Slot
from kafka_chaos_proxy.proxy.pipeline.splice import MIN_BYTES as SPLICE_MIN_BYTES
from kafka_chaos_proxy.proxy.pipeline.splice import (
    REFUSED,
    TO_CLIENT,
    TO_UPSTREAM,
    Route,
    Splicer,
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

        def upstream_data(self, data: bytes) -> None:
            """Bytes from the upstream socket (`ResponsePath`)."""

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
        where splice(2) is unavailable the transport path carries on unchanged."""
        splicer = self.splicer or self._new_splicer(
            TO_UPSTREAM, self.client, self.upstream, self._spliced, _uncounted,
            self._splice_done, self._splice_failed)
        if splicer is None:
            return
        self.splicer = splicer
        self.pause_client_reading("splice")
        splicer.begin(self.req_stream_left)

    def _new_splicer(self, route: Route, source: asyncio.Transport | None,
                     dest: asyncio.Transport | None, on_taken: Callable[[int], None],
                     on_delivered: Callable[[int], None], on_done: Callable[[], None],
                     on_error: Callable[[str, str], None]) -> Splicer | None:
        """A splicer between the two transports' sockets, or None where the transports must
        carry the bytes: never on a TLS side (the socket carries ciphertext there, and only
        the TLS transport may read or write it), nor where splice(2) is missing or was refused
        once, nor on a transport without a socket; nor once the connection closed (a write
        just before may have ended it), since nothing would close the splicer then."""
        if (self.closed or self.client_tls or self.upstream_tls or not splice_supported()
                or source is None or dest is None):
            return None
        ssock = source.get_extra_info("socket")
        dsock = dest.get_extra_info("socket")
        if ssock is None or dsock is None:
            return None
        try:
            return Splicer(self.loop, route, ssock.fileno(), dsock.fileno(),
                           dest.get_write_buffer_size, on_taken, on_delivered, on_done, on_error)
        except SpliceUnsupported:
            return None

    def _spliced(self, n: int) -> None:
        self.req_stream_left -= n
        self.bytes_in += n
        self._c.c2b.inc(n)

    def _splice_done(self) -> None:
        # Not resumed yet: a producer's next request is most likely large too; its head is
        # read by hand so that its body can be spliced from the start.
        self._next_head(self.splicer, self.paused, self.resume_client_reading,
                        self.client_data)

    def _next_head(self, splicer: Splicer | None, paused: set[str],
                   resume: Callable[[str], None], feed: Callable[[bytes], None]) -> None:
        """After a splice, either way: read the next frame's head by hand (`feed` it on), so
        that a large frame after it is spliced from its start; only while nothing else holds
        the source's reading (in-flight limit, back-pressure, shutdown). Else, and once the
        head did not start another splice, the source's transport reads again."""
        if splicer is None or self.closed or paused != {"splice"}:
            resume("splice")
            return

        def on_head(data: bytes) -> None:
            if data:
                feed(data)  # may start the next splice
            if not self.closed and not splicer.owns_source:
                resume("splice")

        splicer.await_head(on_head)

    def _splice_failed(self, reason: str, detail: str) -> None:
        self.splicer = None
        if reason == REFUSED:  # nothing moved: the client transport reads the rest
            self.resume_client_reading("splice")
        elif reason == "truncated_frame":
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
        the stream runs (`_flush` checks `stream_left`). What is held of it goes out through
        the client transport; a large rest is spliced (`_start_response_splice`).
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
        if self.stream_left >= SPLICE_MIN_BYTES:
            self._start_response_splice()

    def _is_head(self, slot: Slot) -> bool:
        for first in self.slots:
            return first is slot
        return False

    def _stream(self, data: bytes) -> None:
        self.stream_left -= len(data)
        self._write_client(data)
        if not self.stream_left:
            self._flush()

    def _start_response_splice(self) -> None:
        """The mirror of `_start_splice`: the kernel moves the rest of a cut-through response
        (`stream_left` bytes, not one more: the next frame stays in the socket) from the
        upstream socket to the client socket, after what the client transport has buffered.
        Upstream reading is held meanwhile, and while the client socket is full nothing more
        is taken from the broker than one pipe's worth. The slots behind it wait, as they do
        for a streamed response (`_flush` checks `stream_left`, which counts down as bytes
        reach the client socket)."""
        splicer = self.response_splicer or self._new_splicer(
            TO_CLIENT, self.upstream, self.client, _uncounted, self._response_spliced,
            self._response_splice_done, self._response_splice_failed)
        if splicer is None:
            return
        self.response_splicer = splicer
        self.pause_upstream_reading("splice")
        splicer.begin(self.stream_left)

    def _response_spliced(self, n: int) -> None:
        # Counted as `_write_client` counts the streamed part: when it leaves for the client.
        self.stream_left -= n
        self.bytes_out += n
        self._c.b2c.inc(n)

    def _response_splice_done(self) -> None:
        self._flush()  # the responses held behind this one
        # A consumer's next Fetch answer is most likely large too.
        self._next_head(self.response_splicer, self.upstream_paused,
                        self.resume_upstream_reading, self.upstream_data)

    def _response_splice_failed(self, reason: str, detail: str) -> None:
        self.response_splicer = None
        if reason == REFUSED:  # nothing moved: the upstream transport reads the rest
            self.resume_upstream_reading("splice")
        else:
            self.close(reason, detail=detail)


def _uncounted(n: int) -> None:
    """The side of a splice a direction does not count at (see `Splicer`)."""
