"""Continuous production: paced by the clock, caught up after a slow tick, stoppable, and
sharing one sequence with bursts (so lost/duplicate counting sees every record)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from kafka_chaos_proxy.lab.matrix import produce
from kafka_chaos_proxy.lab.matrix.produce import RateProduction, SequenceProducer, records_due


def test_records_due_starts_at_once_and_never_overshoots() -> None:
    assert records_due(10, -1, 100) == 0
    assert records_due(10, 0.0, 100) == 1
    assert records_due(10, 0.95, 100) == 10
    assert records_due(10, 1.0, 100) == 11
    assert records_due(10, 50.0, 100) == 100


class FakeSink:
    def __init__(self) -> None:
        self.sent: list[int] = []
        self.polls = 0
        self.flushed = 0

    def send(self, count: int) -> None:
        self.sent.append(count)

    def poll(self) -> None:
        self.polls += 1

    def flush(self, timeout_s: float = 30.0) -> int:
        self.flushed += 1
        return 0


class FakeClock:
    """Time moves only when the loop sleeps; one sleep can be made long (a stalled thread)."""

    def __init__(self, stall_at: int | None = None, stall_s: float = 0.0) -> None:
        self.now = 0.0
        self.sleeps = 0
        self.stall_at, self.stall_s = stall_at, stall_s

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += self.stall_s if self.sleeps == self.stall_at else max(seconds, 0.001)


def test_the_total_is_rate_times_duration_even_after_a_stall() -> None:
    sink, clock = FakeSink(), FakeClock(stall_at=3, stall_s=2.0)
    rate = RateProduction(sink, records_per_s=100, duration_s=5, clock=clock,
                          sleep=clock.sleep)
    rate.run()
    assert sum(sink.sent) == 500 == rate.sent
    assert max(sink.sent) >= 190  # the two stalled seconds went out at once, not lost
    assert sink.flushed == 1
    assert clock.now == pytest.approx(5.0, abs=0.1)
    report = rate.report()
    assert report["planned"] == report["sent"] == 500 and not report["stopped_early"]


def test_stop_ends_it_early_and_still_flushes() -> None:
    sink = FakeSink()
    rate = RateProduction(sink, records_per_s=1000, duration_s=600)
    rate.start()
    threading.Event().wait(0.2)
    rate.stop()
    assert not rate.busy()
    assert 0 < rate.sent < rate.total
    assert sink.flushed == 1 and rate.report()["stopped_early"]


class FakeMessage:
    def __init__(self, topic: str, partition: int, offset: int, value: bytes) -> None:
        self._t, self._p, self._o, self._v = topic, partition, offset, value

    def topic(self) -> str:
        return self._t

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o

    def value(self) -> bytes:
        return self._v


class FakeProducer:
    """librdkafka's shape: produce() queues, poll()/flush() serve delivery callbacks."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.queued: list[tuple[bytes, Any]] = []
        self.offset = 0
        self.lock = threading.Lock()

    def produce(self, topic: str, key: bytes, value: bytes, on_delivery: Any) -> None:
        with self.lock:
            self.queued.append((value, on_delivery))

    def _serve(self) -> None:
        with self.lock:
            queued, self.queued = self.queued, []
        for value, callback in queued:
            self.offset += 1
            callback(None, FakeMessage("t", 0, self.offset, value))

    def poll(self, timeout: float) -> int:
        self._serve()
        return 0

    def flush(self, timeout: float) -> int:
        self._serve()
        return 0


def test_sequence_numbers_continue_across_bursts_and_rates(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(produce, "Producer", FakeProducer)
    producer = SequenceProducer("127.0.0.1:1", "t")
    producer.produce(5)
    rate = RateProduction(producer, records_per_s=2000, duration_s=0.05)
    rate.start()
    producer.produce(5)  # a burst while the rate runs
    rate.stop()
    seqs = sorted(producer.delivered.values())
    # One sequence, no gap and no number used twice, whichever way a record was produced.
    assert seqs == list(range(len(seqs))) and len(seqs) == 10 + rate.sent
    assert len(producer.expected()) == len(seqs) and producer.next_seq == len(seqs)
