"""The ordered writer: responses leave for the client in request order (invariant 2).

Responses fill their slots (`SlotQueue`) in any order; `_flush` releases the filled, due prefix
in one write, or, under THROTTLE, trickles it out at the capped rate. A held slot (a delayed
response) schedules the next flush; freeing slots below the in-flight limit lets the request
path take the frames it held back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kafka_chaos_proxy.proxy.pipeline.core import ConnectionCore
from kafka_chaos_proxy.proxy.pipeline.request_context import RequestContext


class Writer(ConnectionCore):
    """Part of `Connection`: filling slots and writing them to the client."""

    if TYPE_CHECKING:
        def _drain_backlog(self) -> None:
            """Handle the frames held back by the in-flight limit (`RequestPath`)."""

    def fill_slot(self, ctx: RequestContext, data: bytes, ready_at: float = 0.0) -> None:
        slot = ctx.slot
        assert slot is not None
        slot.data = data
        slot.ready_at = ready_at
        if not self._batching:
            self._flush()

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
        while not self.throttle_bps:
            head = slots.peek_ready(now)
            if head is None:
                break
            slots.popleft()
            data = head.data
            assert data is not None
            out.append(data)
            nbytes += len(data)
            self._c.response(head.api_key)
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
                self._end_written(ctx)
        due = slots.head_due_at()
        if due is not None and due > now:
            self._schedule_flush(due)
        if "inflight" in self.paused and len(slots) < self.config.max_inflight:
            self._below_inflight_limit()

    def _below_inflight_limit(self) -> None:
        """Slots were released while reading is paused at the in-flight limit: handle the
        frames held back, and read again once they are all handled."""
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
                self._c.response(head.api_key)
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
                    self._end_written(done.owner)

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
