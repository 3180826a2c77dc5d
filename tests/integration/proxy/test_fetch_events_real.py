"""Fetch sample events (`fetch_events`) in front of the real broker, with real consumers:
kafka-python fetches by topic name (Fetch v12 here), librdkafka (confluent-kafka) by topic id
(v13+), which the proxy names from the Metadata answers it passed on. With the option off, not
one Fetch event."""

from __future__ import annotations

import itertools
import time
from typing import Any

from confluent_kafka import Consumer
from kafka import KafkaConsumer, KafkaProducer

from kafka_chaos_proxy.proxy.events import EventLog
from tests.integration.proxy.test_proxy_clients import create_topic
from tests.support.proxies import ProxyFactory

PARTITIONS = 3
RECORDS = 30
DEADLINE_S = 60.0


def produce(bootstrap: str, topic: str) -> None:
    create_topic(bootstrap, topic, PARTITIONS)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for seq in range(RECORDS):
        producer.send(topic, f"v{seq}".encode(), partition=seq % PARTITIONS)
    producer.flush(30)
    producer.close(10)


def consume_kafka_python(bootstrap: str, topic: str, group: str, client_id: str) -> int:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                             client_id=client_id, auto_offset_reset="earliest",
                             enable_auto_commit=False)
    got = 0
    deadline = time.monotonic() + DEADLINE_S
    try:
        while got < RECORDS and time.monotonic() < deadline:
            got += sum(len(rs) for rs in consumer.poll(timeout_ms=500).values())
        end = time.monotonic() + 1.5  # a second more of fetching: an unchanged-set sample
        while time.monotonic() < end:
            consumer.poll(timeout_ms=200)
    finally:
        consumer.close()
    return got


def samples(log: EventLog, client_id: str) -> list[dict[str, Any]]:
    return [e for e in log if e["api"] == "Fetch" and e["client_id"] == client_id]


def test_kafka_python_fetches_are_sampled_with_their_partitions(
        proxy_factory: ProxyFactory, unique_name: str) -> None:
    log = EventLog()
    proxy = proxy_factory(fetch_event_sink=log.record, fetch_events=True)
    topic = f"{unique_name}-t"
    produce(proxy.bootstrap_servers, topic)
    client_id = f"{unique_name}-kp"
    assert consume_kafka_python(proxy.bootstrap_servers, topic, f"{unique_name}-g",
                                client_id) == RECORDS
    mine = samples(log, client_id)
    assert mine, [e["api"] for e in log]
    assert all(e["outcome"] == "observed" and e["group"] is None and e["api_key"] == 1
               for e in mine)
    # Its one fetch connection (single broker) ends up fetching the whole topic.
    assert mine[-1]["partitions"] == {topic: [0, 1, 2]}
    assert sum(e["fetches"] for e in mine) >= len(mine)
    # Unchanged sets are told at most about once a second per connection.
    by_conn: dict[int, list[dict[str, Any]]] = {}
    for e in mine:
        by_conn.setdefault(e["connection"], []).append(e)
    for events in by_conn.values():
        assert all(b["ts"] - a["ts"] >= 0.99 for a, b in itertools.pairwise(events)
                   if a["partitions"] == b["partitions"])


def test_librdkafka_topic_ids_are_named_from_metadata(
        proxy_factory: ProxyFactory, unique_name: str) -> None:
    log = EventLog()
    proxy = proxy_factory(fetch_event_sink=log.record, fetch_events=True)
    topic = f"{unique_name}-t"
    produce(proxy.bootstrap_servers, topic)
    client_id = f"{unique_name}-rd"
    consumer = Consumer({"bootstrap.servers": proxy.bootstrap_servers,
                         "group.id": f"{unique_name}-g", "client.id": client_id,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    got = 0
    deadline = time.monotonic() + DEADLINE_S
    try:
        while got < RECORDS and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                got += 1
    finally:
        consumer.close()
    assert got == RECORDS
    mine = samples(log, client_id)
    assert mine
    assert max(e["version"] for e in mine) >= 13  # topic ids on the wire
    assert {topic: [0, 1, 2]} in [e["partitions"] for e in mine]
    assert not any(t.startswith("topic_id:") for e in mine for t in e["partitions"])


def test_off_no_fetch_event(proxy_factory: ProxyFactory, unique_name: str) -> None:
    log = EventLog()
    proxy = proxy_factory(fetch_event_sink=log.record)  # fetch_events left at its default
    topic = f"{unique_name}-t"
    produce(proxy.bootstrap_servers, topic)
    assert consume_kafka_python(proxy.bootstrap_servers, topic, f"{unique_name}-g",
                                f"{unique_name}-kp") == RECORDS
    assert len(log) == 0
    assert proxy.server is not None and len(proxy.server.topic_names) == 0
