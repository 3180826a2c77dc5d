"""Three brokers behind the proxy: every broker gets its own listener, partitions led by each
broker are produced and consumed through it, and group coordination goes through the proxy."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from confluent_kafka.admin import AdminClient
from test_proxy_clients import create_topic

from kafka_chaos_proxy.faults.decision import PASS, Decision, RequestView
from kafka_chaos_proxy.proxy.embedded import EmbeddedProxy
from kafka_chaos_proxy.proxy.real_kafka import KafkaCluster
from tests.support.records import Tally, key, value

pytestmark = pytest.mark.cluster3


class NodeRecorder:
    def __init__(self) -> None:
        self.by_api: dict[int, set[int]] = {}

    def on_request(self, request: RequestView) -> Decision:
        self.by_api.setdefault(request.api_key, set()).add(request.broker_node)
        return PASS


async def test_three_brokers_through_the_proxy(proxy_factory3: Any, kafka_cluster3: KafkaCluster,
                                               unique_name: str) -> None:
    recorder = NodeRecorder()
    proxy: EmbeddedProxy = proxy_factory3(decider=recorder)
    bs = proxy.bootstrap_servers
    topic = f"{unique_name}-t"
    create_topic(bs, topic, partitions=9, replication=3)
    admin = AdminClient({"bootstrap.servers": bs})
    leaders: set[int] = set()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        meta = admin.list_topics(topic, timeout=10)
        parts = meta.topics[topic].partitions
        leaders = {p.leader for p in parts.values()}
        if len(parts) == 9 and -1 not in leaders:
            break
    assert leaders == set(kafka_cluster3.nodes)
    for b in meta.brokers.values():
        assert b.host == "127.0.0.1" and (b.host, b.port) not in set(
            kafka_cluster3.nodes.values())

    n = 3000
    producer = AIOKafkaProducer(bootstrap_servers=bs, acks="all")
    await producer.start()
    try:
        futures = [await producer.send(topic, value(seq), key=key(seq)) for seq in range(n)]
        for f in futures:
            await f
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bs, group_id=f"{unique_name}-g",
                                auto_offset_reset="earliest")
    await consumer.start()
    tally = Tally()
    try:
        deadline = time.monotonic() + 90
        while tally.count < n and time.monotonic() < deadline:
            for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                for r in records:
                    tally.add(tp.partition, r.key, r.value)
        await consumer.commit()
    finally:
        await consumer.stop()
    tally.verify(n)
    assert set(tally.by_partition) == set(range(9))

    brokers = proxy.list_brokers()
    assert {b["node_id"] for b in brokers} == set(kafka_cluster3.nodes)
    assert len({b["proxy_port"] for b in brokers}) == 3
    # Produce went to every leader's listener; the group protocol ran on a node listener.
    assert recorder.by_api[0] == set(kafka_cluster3.nodes)
    for api in (11, 14, 8):  # JoinGroup, SyncGroup, OffsetCommit
        nodes = recorder.by_api.get(api, set())
        assert nodes and nodes <= set(kafka_cluster3.nodes), api


async def test_broker_restart_closes_its_client_connections_and_clients_carry_on(
        proxy_factory3: Any, kafka_cluster3: KafkaCluster, unique_name: str) -> None:
    from kafka_chaos_proxy.proxy import metrics

    if kafka_cluster3.control is None:
        pytest.skip("needs a local cluster to stop a node")
    proxy: EmbeddedProxy = proxy_factory3()
    bs = proxy.bootstrap_servers
    topic = f"{unique_name}-t"
    create_topic(bs, topic, partitions=6, replication=3)
    producer = AIOKafkaProducer(bootstrap_servers=bs, acks="all")
    await producer.start()
    victim = max(kafka_cluster3.nodes)
    closes = metrics.connection_closes_total.labels("upstream_closed")
    try:
        for seq in range(300):
            await producer.send(topic, value(seq), key=key(seq))
        await producer.flush()
        assert any(c["node_id"] == victim for c in proxy.list_connections())
        before = closes._value.get()
        kafka_cluster3.stop_node(victim, graceful=False)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and any(
                    c["node_id"] == victim for c in proxy.list_connections()):
                await asyncio.sleep(0.1)
            assert closes._value.get() > before
            for seq in range(300, 600):  # leaders moved: the clients keep going via the proxy
                await producer.send(topic, value(seq), key=key(seq))
            await producer.flush()
        finally:
            kafka_cluster3.start_node(victim)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bs, group_id=f"{unique_name}-g",
                                auto_offset_reset="earliest")
    await consumer.start()
    tally = Tally()
    try:
        deadline = time.monotonic() + 60
        while tally.count < 600 and time.monotonic() < deadline:
            for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                for r in records:
                    tally.add(tp.partition, r.key, r.value)
    finally:
        await consumer.stop()
    tally.verify(600)
