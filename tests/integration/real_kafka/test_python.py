"""Produce and consume through the real broker with the Python clients people use.

Why three clients: each has its own protocol implementation (aiokafka and kafka-python in
Python, confluent-kafka on librdkafka), and the proxy must be transparent to all of them; a
fixture that only one of them can talk to would hide broker-side surprises.
"""

from __future__ import annotations

import pytest

from kafka_chaos_proxy.proxy.real_kafka import KafkaCluster

_MESSAGES = [f"value-{i}".encode() for i in range(10)]
_POLL_ROUNDS = 60


def test_cluster_handle_is_consistent(kafka_cluster: KafkaCluster) -> None:
    assert kafka_cluster.kind in {"external", "testcontainers", "local"}
    assert kafka_cluster.nodes
    hosts = {f"{host}:{port}" for host, port in kafka_cluster.nodes.values()}
    assert set(kafka_cluster.bootstrap_servers.split(",")) <= hosts | set(
        kafka_cluster.bootstrap_servers.split(",")
    )
    if kafka_cluster.kind == "local":
        assert all(p.is_file() for p in kafka_cluster.log_paths)
        assert all(host == "127.0.0.1" for host, _ in kafka_cluster.nodes.values())


def test_kafka_python_round_trip(kafka_bootstrap: str, unique_name: str) -> None:
    from kafka import KafkaConsumer, KafkaProducer

    topic = f"{unique_name}-kp"
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    try:
        for value in _MESSAGES:
            producer.send(topic, value)
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=10)
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"{unique_name}-kp-group",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=1000,
    )
    got: list[bytes] = []
    try:
        for _ in range(_POLL_ROUNDS):
            for records in consumer.poll(timeout_ms=500).values():
                got.extend(r.value for r in records)
            if len(got) >= len(_MESSAGES):
                break
        consumer.commit()
    finally:
        consumer.close()
    assert got == _MESSAGES


async def test_aiokafka_round_trip(kafka_bootstrap: str, unique_name: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    topic = f"{unique_name}-aio"
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for value in _MESSAGES:
            await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"{unique_name}-aio-group",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    got: list[bytes] = []
    try:
        for _ in range(_POLL_ROUNDS):
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                got.extend(r.value for r in records if r.value is not None)
            if len(got) >= len(_MESSAGES):
                break
        await consumer.commit()
    finally:
        await consumer.stop()
    assert got == _MESSAGES


@pytest.mark.parametrize("protocol", ["classic", "consumer"])
def test_confluent_kafka_round_trip(
    kafka_cluster: KafkaCluster, unique_name: str, protocol: str
) -> None:
    """librdkafka with both group protocols: classic and KIP-848 `consumer`."""
    from confluent_kafka import Consumer, Producer

    topic = f"{unique_name}-ck"
    producer = Producer({"bootstrap.servers": kafka_cluster.bootstrap_servers, "acks": "all"})
    for value in _MESSAGES:
        producer.produce(topic, value)
    assert producer.flush(30) == 0
    config: dict[str, object] = {
        "bootstrap.servers": kafka_cluster.bootstrap_servers,
        "group.id": f"{unique_name}-ck-group",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "group.protocol": protocol,
    }
    if protocol == "classic":
        config["session.timeout.ms"] = 6000
    consumer = Consumer(config)
    got: list[bytes] = []
    try:
        consumer.subscribe([topic])
        for _ in range(_POLL_ROUNDS):
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            payload = msg.value()
            assert payload is not None
            got.append(payload)
            if len(got) >= len(_MESSAGES):
                break
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    assert got == _MESSAGES
