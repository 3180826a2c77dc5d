"""Topics and records for matrix runs, written straight to the broker (never through the proxy).

Why not through the proxy: the faults are aimed at the consumer group; a producer on the same
proxy would add its own traffic to the evidence and could be hit by a broad rule. Why record
the delivery reports: the exact (partition, offset) of every record is what turns "the consumer
saw 118 records" into "these two were lost and these three came twice".
"""

from __future__ import annotations

import json
import time
from typing import Any

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

RecordKey = tuple[str, int, int]
FLUSH_TIMEOUT_S = 30.0
TOPIC_TIMEOUT_S = 30.0


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, partitions, 1)],
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
    """Produces records whose key and value carry a run-wide sequence number."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.next_seq = 0
        self.delivered: dict[RecordKey, int] = {}  # (topic, partition, offset) -> seq
        self.failures: list[str] = []
        self.produced_at: list[tuple[float, int]] = []  # (time, count) per batch
        self._producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                                   "enable.idempotence": True, "linger.ms": 5})

    def produce(self, count: int) -> list[RecordKey]:
        """Produce `count` records and wait for every delivery report (bounded)."""
        batch: list[RecordKey] = []

        def on_delivery(err: Any, msg: Any) -> None:
            if err is not None:
                self.failures.append(str(err))
                return
            key = (str(msg.topic()), int(msg.partition()), int(msg.offset()))
            self.delivered[key] = int(json.loads(msg.value())["seq"])
            batch.append(key)

        for _ in range(count):
            seq = self.next_seq
            self.next_seq += 1
            self._producer.produce(self.topic, key=f"seq-{seq}".encode(),
                                   value=json.dumps({"seq": seq}).encode(),
                                   on_delivery=on_delivery)
        remaining = self._producer.flush(FLUSH_TIMEOUT_S)
        if remaining:
            raise KafkaException(f"{remaining} records not delivered in {FLUSH_TIMEOUT_S:g} s")
        self.produced_at.append((time.time(), count))
        return batch

    def expected(self) -> set[RecordKey]:
        return set(self.delivered)
