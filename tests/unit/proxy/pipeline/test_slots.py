"""Ordered response slots (invariant 2), pure."""

from __future__ import annotations

from kafka_chaos_proxy.proxy.pipeline.slots import SlotQueue


def test_released_in_request_order_whatever_the_fill_order() -> None:
    q = SlotQueue()
    a, b, c = (q.allocate(i, 3, 1) for i in range(3))
    q.fill(c, b"c")
    q.fill(b, b"b")
    assert q.pop_ready(0.0) == ([], None)
    q.fill(a, b"a")
    ready, _ = q.pop_ready(0.0)
    assert [s.data for s in ready] == [b"a", b"b", b"c"]
    assert len(q) == 0


def test_unfilled_slot_stalls_everything_behind_it() -> None:
    q = SlotQueue()
    q.allocate(1, 12, 4)  # dropped: never filled
    b = q.allocate(2, 12, 4)
    q.fill(b, b"b")
    assert q.pop_ready(100.0) == ([], None)
    assert len(q) == 2


def test_delayed_slot_holds_the_queue_until_due() -> None:
    q = SlotQueue()
    a = q.allocate(1, 12, 4)
    b = q.allocate(2, 12, 4)
    q.fill(a, b"a", ready_at=10.0)
    q.fill(b, b"b")
    assert q.pop_ready(5.0) == ([], 10.0)
    ready, wake = q.pop_ready(10.0)
    assert [s.data for s in ready] == [b"a", b"b"] and wake is None
