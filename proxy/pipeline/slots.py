"""Per-connection ordered response slots (invariant 2), free of I/O.

Kafka clients match responses to requests by order as much as by correlation id, so the proxy
must hand responses back in request order even when it delays, drops or synthesizes some of
them. Every request that expects a response owns a `Slot` allocated when the request arrives;
responses fill slots in any order, and `pop_ready` releases only the filled prefix. A slot that
is never filled (a dropped response) stalls everything behind it, as a stalled TCP connection
would. A slot filled with a future `ready_at` (a delayed response) holds the queue until then.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any


class Slot:
    __slots__ = ("api_key", "api_version", "correlation_id", "data", "owner", "ready_at")

    def __init__(self, correlation_id: int, api_key: int, api_version: int, owner: Any) -> None:
        self.correlation_id = correlation_id
        self.api_key = api_key
        self.api_version = api_version
        self.data: bytes | None = None
        self.ready_at = 0.0
        self.owner = owner  # whatever the pipeline wants back when the slot is released

    @property
    def filled(self) -> bool:
        return self.data is not None


class SlotQueue:
    __slots__ = ("_q",)

    def __init__(self) -> None:
        self._q: deque[Slot] = deque()

    def __len__(self) -> int:
        return len(self._q)

    def __iter__(self) -> Iterator[Slot]:
        return iter(self._q)

    def allocate(self, correlation_id: int, api_key: int, api_version: int,
                 owner: Any = None) -> Slot:
        slot = Slot(correlation_id, api_key, api_version, owner)
        self._q.append(slot)
        return slot

    @staticmethod
    def fill(slot: Slot, data: bytes, ready_at: float = 0.0) -> None:
        slot.data = data
        slot.ready_at = ready_at

    def pop_ready(self, now: float) -> tuple[list[Slot], float | None]:
        """Release the filled, due prefix; also return when the head becomes due (if held)."""
        out: list[Slot] = []
        q = self._q
        while q:
            head = q[0]
            if head.data is None:
                return out, None
            if head.ready_at > now:
                return out, head.ready_at
            out.append(q.popleft())
        return out, None

    def peek_ready(self, now: float) -> Slot | None:
        """The head if it can be written now (used by the throttled writer, one at a time)."""
        if self._q:
            head = self._q[0]
            if head.data is not None and head.ready_at <= now:
                return head
        return None

    def nth(self, i: int) -> Slot | None:
        """The slot `i` places from the oldest (0: the oldest), filled or not; None past
        the end."""
        q = self._q
        return q[i] if i < len(q) else None

    def popleft(self) -> Slot:
        return self._q.popleft()

    def head_due_at(self) -> float | None:
        if self._q and self._q[0].data is not None:
            return self._q[0].ready_at
        return None

    def clear(self) -> list[Slot]:
        slots = list(self._q)
        self._q.clear()
        return slots
