"""Three-node cluster: a group keeps working when its coordinator's node goes away.

Why: coordinator failover is the situation the proxy's group-coordination log exists for,
so the fixture must be able to kill the coordinator and bring it back on demand.
"""

from __future__ import annotations

import pytest

from kafka_chaos_proxy.proxy.real_kafka import KafkaCluster
from kafka_chaos_proxy.proxy.real_kafka.probe import metadata_brokers

pytestmark = pytest.mark.cluster3

_POLL_ROUNDS = 60


def _coordinator(bootstrap: str, group: str) -> int:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    future = admin.describe_consumer_groups([group], request_timeout=15)[group]
    return int(future.result(timeout=30).coordinator.id)


def _consume(bootstrap: str, topic: str, group: str, want: int) -> list[bytes]:
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    got: list[bytes] = []
    try:
        consumer.subscribe([topic])
        for _ in range(_POLL_ROUNDS):
            msg = consumer.poll(1.0)
            if msg is None or msg.error() is not None:
                continue
            payload = msg.value()
            if payload is not None:
                got.append(payload)
            if len(got) >= want:
                break
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return got


def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for value in values:
        producer.produce(topic, value)
    assert producer.flush(30) == 0


def test_three_nodes_listed(kafka_cluster3: KafkaCluster) -> None:
    assert sorted(kafka_cluster3.nodes) == [1, 2, 3]
    host, port = kafka_cluster3.nodes[1]
    assert sorted(b.node_id for b in metadata_brokers(host, port)) == [1, 2, 3]


def test_group_survives_coordinator_restart(
    kafka_cluster3: KafkaCluster, unique_name: str
) -> None:
    if kafka_cluster3.kind != "local":
        pytest.skip("stopping nodes needs the local kind")
    bootstrap = kafka_cluster3.bootstrap_servers
    topic, group = f"{unique_name}-t", f"{unique_name}-g"
    first = [f"a{i}".encode() for i in range(5)]
    _produce(bootstrap, topic, first)
    assert _consume(bootstrap, topic, group, len(first)) == first

    coordinator = _coordinator(bootstrap, group)
    kafka_cluster3.stop_node(coordinator, graceful=False)
    try:
        survivors = ",".join(
            f"{h}:{p}" for i, (h, p) in kafka_cluster3.nodes.items() if i != coordinator
        )
        second = [f"b{i}".encode() for i in range(5)]
        _produce(survivors, topic, second)
        # Committed offsets moved with the coordinator: only the new records come back.
        assert _consume(survivors, topic, group, len(second)) == second
        assert _coordinator(survivors, group) != coordinator
    finally:
        kafka_cluster3.start_node(coordinator)
    assert kafka_cluster3.is_running(coordinator)
