"""kafka-python survives NOT_COORDINATOR on its first two SyncGroups and loses no record.

The matrix's `syncgroup-not-coordinator-twice` (docs/matrix.md: kafka-python recovered): the
coordinator "moves" between JoinGroup and SyncGroup, twice in a row, which catches clients
that retry a failed handshake once but give up on the second. Needs only the pytest plugin's
fixtures: `kafka_broker` (a real broker) and `chaos_proxy` (a proxy in front of it).
"""

import time
import uuid

from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from kafka_chaos_proxy import ChaosProxy, KafkaCluster

RECORDS = 50


def test_kafka_python_rejoins_after_two_syncgroup_not_coordinator(
        kafka_broker: KafkaCluster, chaos_proxy: ChaosProxy) -> None:
    topic, group = f"orders-{uuid.uuid4().hex[:8]}", f"billing-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap)
    for i in range(RECORDS):
        producer.send(topic, str(i).encode())
    producer.close()

    with chaos_proxy.fault(api="SyncGroup", group=group).error("NOT_COORDINATOR", times=2) as f:
        consumer = KafkaConsumer(topic, group_id=group, auto_offset_reset="earliest",
                                 bootstrap_servers=chaos_proxy.bootstrap)
        seen: set[int] = set()
        deadline = time.monotonic() + 60
        while len(seen) < RECORDS and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                seen.update(int(record.value) for record in records)
        consumer.close()
        assert f.injections() == 2

    event = chaos_proxy.events.wait(api="SyncGroup", group=group, injected=True)
    assert event["error"] == "NOT_COORDINATOR" and event["fault"]["rule"] == f.id
    assert seen == set(range(RECORDS))
