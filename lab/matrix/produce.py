"""Topics and records for matrix runs, written straight to the broker (never through the proxy).

Why not through the proxy: the faults are aimed at the consumer group; a producer on the same
proxy would add its own traffic to the evidence and could be hit by a broad rule. Why record
the delivery reports: the exact (partition, offset) of every record is what turns "the consumer
saw 118 records" into "these two were lost and these three came twice".

Continuous load (`produce_rate` steps) runs in a background thread, `RateProduction`, on the
same `SequenceProducer`, so its sequence numbers continue those of the bursts and every record,
whichever way it was produced, is in the one delivery map the verdict counts.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

RecordKey = tuple[str, int, int]
FLUSH_TIMEOUT_S = 30.0
TOPIC_TIMEOUT_S = 30.0
#: How often the rate loop wakes up at most (records due in between go out together).
RATE_TICK_S = 0.05


def create_topic(bootstrap: str, topic: str, partitions: int, replication: int = 1,
                 min_insync: int | None = None) -> None:
    """Create the run's topic and wait until every partition has a leader. With several
    brokers, `replication` 3 and `min_insync` 2 keep acknowledged records through the loss of
    one broker (the producer uses acks=all)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    config = {"min.insync.replicas": str(min_insync)} if min_insync else {}
    futures = admin.create_topics([NewTopic(topic, partitions, replication, config=config)],
                                  operation_timeout=TOPIC_TIMEOUT_S)
    futures[topic].result(timeout=TOPIC_TIMEOUT_S)
    # Wait until metadata shows every partition with a leader, so consumers see the topic whole.
    deadline = time.monotonic() + TOPIC_TIMEOUT_S
    while time.monotonic() < deadline:
        meta = admin.list_topics(topic, timeout=5)
        t = meta.topics.get(topic)
        if t is not None and t.error is None and len(t.partitions) == partitions and all(
            p.leader >= 0 for p in t.partitions.values()
        ):
            return
        time.sleep(0.1)
    raise RuntimeError(f"topic {topic} not ready with {partitions} partitions")


class SequenceProducer:
    """Produces records whose key and value carry a run-wide sequence number.

    Thread-safe: a burst (`produce`) from the run's monitor and a `RateProduction` thread
    (`send` + `poll`) share one librdkafka producer and one sequence.
    """

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.next_seq = 0
        self.delivered: dict[RecordKey, int] = {}  # (topic, partition, offset) -> seq
        self.failures: list[str] = []
        self.produced_at: list[tuple[float, int]] = []  # (time, count) per batch
        self._lock = threading.Lock()
        self._producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                                   "enable.idempotence": True, "linger.ms": 5})

    def _on_delivery(self, batch: list[RecordKey] | None) -> Callable[[Any, Any], None]:
        def on_delivery(err: Any, msg: Any) -> None:
            if err is not None:
                with self._lock:
                    self.failures.append(str(err))
                return
            key = (str(msg.topic()), int(msg.partition()), int(msg.offset()))
            with self._lock:
                self.delivered[key] = int(json.loads(msg.value())["seq"])
            if batch is not None:
                batch.append(key)

        return on_delivery

    def send(self, count: int, batch: list[RecordKey] | None = None) -> None:
        """Hand `count` records to the producer without waiting for their delivery."""
        on_delivery = self._on_delivery(batch)
        for _ in range(count):
            with self._lock:
                seq = self.next_seq
                self.next_seq += 1
            self._producer.produce(self.topic, key=f"seq-{seq}".encode(),
                                   value=json.dumps({"seq": seq}).encode(),
                                   on_delivery=on_delivery)
        with self._lock:
            self.produced_at.append((time.time(), count))

    def poll(self) -> None:
        """Serve delivery reports that are ready (never blocks)."""
        self._producer.poll(0)

    def flush(self, timeout_s: float = FLUSH_TIMEOUT_S) -> int:
        """Wait for outstanding deliveries (bounded); how many are still outstanding."""
        return int(self._producer.flush(timeout_s))

    def produce(self, count: int) -> list[RecordKey]:
        """Produce `count` records and wait for every delivery report (bounded)."""
        batch: list[RecordKey] = []
        self.send(count, batch)
        remaining = self.flush(FLUSH_TIMEOUT_S)
        if remaining:
            raise KafkaException(f"{remaining} records not delivered in {FLUSH_TIMEOUT_S:g} s")
        return batch

    def expected(self) -> set[RecordKey]:
        with self._lock:
            return set(self.delivered)

    def production(self) -> tuple[dict[RecordKey, int], list[tuple[float, int]]]:
        """A consistent copy of the delivered records' sequence numbers and the batches
        (time, count) they were produced in, taken while deliveries may still arrive."""
        with self._lock:
            return dict(self.delivered), list(self.produced_at)


class RecordSink(Protocol):
    def send(self, count: int) -> None: ...

    def poll(self) -> None: ...

    def flush(self, timeout_s: float = FLUSH_TIMEOUT_S) -> int: ...


def records_due(records_per_s: float, elapsed_s: float, total: int) -> int:
    """How many records a rate of `records_per_s` has produced `elapsed_s` after its start:
    the first at once, then one every 1/rate seconds, never more than `total`."""
    if elapsed_s < 0:
        return 0
    return min(total, int(records_per_s * elapsed_s) + 1)


class RateProduction:
    """`records_per_s` for `duration_s` in a background thread, then a bounded flush.

    Paced against the clock from the start (not by sleeping a fixed interval per record), so a
    slow tick is caught up rather than lost: the count is `records_per_s x duration_s` however
    the thread was scheduled. `stop()` ends it early (the run is over); records already
    handed over are still flushed, so the delivery map stays true.
    """

    def __init__(self, sink: RecordSink, records_per_s: float, duration_s: float, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], object] | None = None) -> None:
        self.sink = sink
        self.records_per_s = records_per_s
        self.duration_s = duration_s
        self.total = max(1, int(records_per_s * duration_s))
        self.sent = 0
        self.started_at: float | None = None  # wall-clock, for the evidence
        self.ended_at: float | None = None
        self.error: str | None = None
        self.undelivered = 0
        self._clock = clock
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="produce-rate", daemon=True)
        self._thread.start()

    def run(self) -> None:
        self.started_at = time.time()
        start = self._clock()
        try:
            while self.sent < self.total and not self._stop.is_set():
                due = records_due(self.records_per_s, self._clock() - start, self.total)
                if due > self.sent:
                    self.sink.send(due - self.sent)
                    self.sent = due
                self.sink.poll()
                if self.sent < self.total:
                    next_at = self.sent / self.records_per_s
                    self._sleep(max(0.0, min(RATE_TICK_S, next_at - (self._clock() - start))))
            self.undelivered = self.sink.flush(FLUSH_TIMEOUT_S)
        except Exception as exc:  # evidence, not a crash of the run
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.ended_at = time.time()

    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout_s: float = FLUSH_TIMEOUT_S + 5) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def report(self) -> dict[str, Any]:
        return {"records_per_s": self.records_per_s, "duration_s": self.duration_s,
                "planned": self.total, "sent": self.sent, "undelivered": self.undelivered,
                "started_at": self.started_at, "ended_at": self.ended_at, "error": self.error,
                "stopped_early": self._stop.is_set() and self.sent < self.total}
