"""The previous major line (3.9.x) runs locally too.

Why: users of the proxy still run 3.x brokers, whose logging backend (reload4j) and
KIP-848 preview switch differ from 4.x; this keeps `proxy.real_kafka` honest for both lines. It
starts its own local broker (module scope), so it only runs on the local kind.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kafka_chaos_proxy.proxy.real_kafka import KafkaCluster, fetch_classpath, provide_kafka
from kafka_chaos_proxy.proxy.real_kafka.probe import api_versions
from kafka_chaos_proxy.proxy.real_kafka.provider import choose_kind

KAFKA_39 = "3.9.2"
_MESSAGES = [f"v39-{i}".encode() for i in range(5)]
_POLL_ROUNDS = 60


@pytest.fixture(scope="module")
def kafka39() -> Iterator[KafkaCluster]:
    if choose_kind() != "local":
        pytest.skip("a specific Kafka release can only be chosen for the local kind")
    with provide_kafka(version=KAFKA_39) as cluster:
        yield cluster


def test_version_reported(kafka39: KafkaCluster) -> None:
    assert kafka39.version == KAFKA_39
    text = kafka39.log_paths[0].read_text(errors="replace")
    # reload4j must be bound, or the broker would run with no logs at all.
    assert "Kafka version: 3.9" in text


def test_consumer_group_protocol_served(kafka39: KafkaCluster) -> None:
    """KIP-848 is switched on: ConsumerGroupHeartbeat (API 68) is advertised.

    Only v0 exists in 3.9: the Java client of the same release speaks it (next test), while
    librdkafka's `group.protocol=consumer` needs v1 (4.0+).
    """
    host, port = kafka39.nodes[1]
    assert api_versions(host, port).get(68, (0, -1))[0] == 0


def test_round_trip_39(kafka39: KafkaCluster, unique_name: str) -> None:
    from confluent_kafka import Consumer, Producer

    topic = f"{unique_name}-t"
    producer = Producer({"bootstrap.servers": kafka39.bootstrap_servers})
    for value in _MESSAGES:
        producer.produce(topic, value)
    assert producer.flush(30) == 0
    consumer = Consumer(
        {
            "bootstrap.servers": kafka39.bootstrap_servers,
            "group.id": f"{unique_name}-g",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
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
    finally:
        consumer.close()
    assert got == _MESSAGES


@pytest.mark.clients
def test_java_consumer_protocol_39(
    kafka39: KafkaCluster, unique_name: str, tmp_path: Path
) -> None:
    """kafka-clients 3.9 with `group.protocol=consumer` (KIP-848 preview) round-trips."""
    javac, java = shutil.which("javac"), shutil.which("java")
    if javac is None or java is None:
        pytest.fail("javac/java not found: a JDK 17+ is needed for the Java client tests")
    jars = fetch_classpath(
        [f"org.apache.kafka:kafka-clients:{KAFKA_39}", "org.slf4j:slf4j-simple:1.7.36"],
        f"java-clients/{KAFKA_39}",
    )
    lib = f"{jars[0].parent}/*"
    source = Path(__file__).parent / "java" / "RoundTrip.java"
    subprocess.run([javac, "-d", str(tmp_path), "-cp", lib, str(source)], check=True, timeout=120)
    proc = subprocess.run(
        [
            java,
            "-Xmx256m",
            "-cp",
            f"{tmp_path}:{lib}",
            "RoundTrip",
            kafka39.bootstrap_servers,
            f"{unique_name}-t",
            f"{unique_name}-g",
            "consumer",
            "5",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "CONSUMED 5" in proc.stdout
