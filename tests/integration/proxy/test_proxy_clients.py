"""Real client libraries produce and consume through the proxy: nothing lost, nothing altered,
per-partition order kept, consumer groups coordinated through the proxy.

Sizes: aiokafka 50,000 records and confluent-kafka 50,000 (the fast paths), kafka-python 5,000
(pure Python, slow), Java kafka-clients 200 per group protocol (a JVM start dominates).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer, KafkaProducer

from kafka_chaos_proxy.proxy.embedded import EmbeddedProxy
from kafka_chaos_proxy.proxy.real_kafka import DEFAULT_KAFKA_VERSION, fetch_classpath
from tests.support.records import PARTITIONS, Tally, key, value

DEADLINE_S = 120.0


def create_topic(bootstrap: str, topic: str, partitions: int = PARTITIONS,
                 replication: int = 1) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, partitions, replication)])
    futures[topic].result(30)


async def test_aiokafka_50k_records_through_the_proxy(proxy_server: EmbeddedProxy,
                                                      unique_name: str) -> None:
    n = 50_000
    topic, group = f"{unique_name}-t", f"{unique_name}-g"
    bs = proxy_server.bootstrap_servers
    create_topic(bs, topic)
    producer = AIOKafkaProducer(bootstrap_servers=bs, linger_ms=5, acks="all",
                                enable_idempotence=True)
    await producer.start()
    try:
        batch = []
        for seq in range(n):
            batch.append(await producer.send(topic, value(seq), key=key(seq)))
            if len(batch) >= 2000:
                for fut in batch:
                    await fut
                batch.clear()
        for fut in batch:
            await fut
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bs, group_id=group,
                                auto_offset_reset="earliest", enable_auto_commit=True)
    await consumer.start()
    tally = Tally()
    try:
        deadline = time.monotonic() + DEADLINE_S
        while tally.count < n and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for tp, records in batches.items():
                for r in records:
                    tally.add(tp.partition, r.key, r.value)
        await consumer.commit()
    finally:
        await consumer.stop()
    tally.verify(n)


def test_confluent_kafka_50k_records_through_the_proxy(proxy_server: EmbeddedProxy,
                                                       unique_name: str) -> None:
    n = 50_000
    topic, group = f"{unique_name}-t", f"{unique_name}-g"
    bs = proxy_server.bootstrap_servers
    create_topic(bs, topic)
    producer = Producer({"bootstrap.servers": bs, "enable.idempotence": True,
                         "linger.ms": 5})
    failures: list[str] = []

    def on_delivery(err: object, _msg: object) -> None:
        if err is not None:
            failures.append(str(err))

    deadline = time.monotonic() + DEADLINE_S
    for seq in range(n):
        for _ in range(1000):  # a full local queue drains within a few polls
            try:
                producer.produce(topic, value(seq), key(seq), on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.1)
        else:
            pytest.fail("producer queue never drained")
        producer.poll(0)
        assert time.monotonic() < deadline
    assert producer.flush(60) == 0
    assert failures == []
    consumer = Consumer({"bootstrap.servers": bs, "group.id": group,
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    tally = Tally()
    deadline = time.monotonic() + DEADLINE_S
    try:
        while tally.count < n and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=5000, timeout=1.0):
                assert msg.error() is None, msg.error()
                tally.add(msg.partition() or 0, msg.key(), msg.value() or b"")
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    tally.verify(n)


def test_kafka_python_5k_records_through_the_proxy(proxy_server: EmbeddedProxy,
                                                   unique_name: str) -> None:
    n = 5_000
    topic, group = f"{unique_name}-t", f"{unique_name}-g"
    bs = proxy_server.bootstrap_servers
    create_topic(bs, topic)
    producer = KafkaProducer(bootstrap_servers=bs, acks="all", linger_ms=5,
                             max_in_flight_requests_per_connection=1)
    futures = [producer.send(topic, value(seq), key=key(seq)) for seq in range(n)]
    producer.flush(60)
    for f in futures:
        f.get(30)
    producer.close(10)
    consumer = KafkaConsumer(topic, bootstrap_servers=bs, group_id=group,
                             auto_offset_reset="earliest", enable_auto_commit=False)
    tally = Tally()
    deadline = time.monotonic() + DEADLINE_S
    try:
        while tally.count < n and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=1000, max_records=2000).items():
                for r in records:
                    tally.add(tp.partition, r.key, r.value)
        consumer.commit()
    finally:
        consumer.close()
    tally.verify(n)


@pytest.fixture(scope="module")
def java_round_trip(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    javac, java = shutil.which("javac"), shutil.which("java")
    if javac is None or java is None:
        pytest.skip("no JDK on PATH")
    jars = fetch_classpath([f"org.apache.kafka:kafka-clients:{DEFAULT_KAFKA_VERSION}",
                            "org.slf4j:slf4j-simple:1.7.36"],
                           f"java-clients/{DEFAULT_KAFKA_VERSION}")
    lib = f"{jars[0].parent}/*"
    classes = tmp_path_factory.mktemp("java-classes")
    source = Path(__file__).parents[1] / "real_kafka" / "java" / "RoundTrip.java"
    subprocess.run([javac, "-d", str(classes), "-cp", lib, str(source)], check=True,
                   timeout=120)
    return [java, "-Xmx256m", "-cp", f"{classes}:{lib}", "RoundTrip"]


@pytest.mark.clients
@pytest.mark.parametrize("protocol", ["classic", "consumer"])
def test_java_kafka_clients_through_the_proxy(proxy_server: EmbeddedProxy,
                                              java_round_trip: list[str], unique_name: str,
                                              protocol: str) -> None:
    proc = subprocess.run(
        [*java_round_trip, proxy_server.bootstrap_servers, f"{unique_name}-t",
         f"{unique_name}-g", protocol, "200"],
        capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "CONSUMED 200" in proc.stdout
    brokers = proxy_server.list_brokers()
    assert brokers and all(b["proxy_port"] for b in brokers)
