"""The Python API against the session's real broker, with kafka-python (blocking) and aiokafka
(asyncio) consumers: a proxy started in-process and as `kafka-chaos-proxy run`, a context-
managed fault that lands and is gone on exit, `events.wait` finding the injected event after
the fact, group state, a proxy in front of the broker the provider picks."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaConsumer
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from kafka_chaos_proxy.proxy.api import AsyncChaosProxy, ChaosProxy, EventTimeout
from kafka_chaos_proxy.proxy.api.options import Mode
from tests.conftest import UniqueName

RECORDS = 30
WAIT_S = 60.0  # an upper bound on consuming; no test asserts on elapsed time


def _topic_with_records(bootstrap: str, topic: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for i in range(RECORDS):
        producer.send(topic, str(i).encode())
    producer.close()


def _consume_all(bootstrap: str, topic: str, group: str) -> set[int]:
    consumer = KafkaConsumer(topic, group_id=group, bootstrap_servers=bootstrap,
                             auto_offset_reset="earliest")
    seen: set[int] = set()
    deadline = time.monotonic() + WAIT_S
    try:
        while len(seen) < RECORDS and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                seen.update(int(r.value) for r in records)
    finally:
        consumer.close()
    return seen


@pytest.fixture(params=["inprocess", "subprocess"])
def chaos(request: pytest.FixtureRequest, kafka_bootstrap: str) -> Iterator[ChaosProxy]:
    """A proxy of each mode in front of the session's broker."""
    with ChaosProxy.start(kafka_bootstrap, mode=request.param) as chaos:
        yield chaos


def test_a_fault_lands_is_awaited_after_the_fact_and_goes_on_exit(
        chaos: ChaosProxy, kafka_bootstrap: str, unique_name: UniqueName) -> None:
    topic, group = unique_name("topic"), unique_name("group")
    _topic_with_records(kafka_bootstrap, topic)
    with chaos.fault(api="SyncGroup", group=group).error("NOT_COORDINATOR", times=1) as fault:
        seen = _consume_all(chaos.bootstrap, topic, group)
        assert fault.injections() == 1
        assert [r["id"] for r in chaos.rules()] == [fault.id]
    assert chaos.rules() == []
    assert seen == set(range(RECORDS))
    # The injection happened long before this call: waiting reads forward from the baseline.
    event = chaos.events.wait(api="SyncGroup", group=group, injected=True, timeout=10)
    assert (event["error"], event["fault"]["rule"]) == ("NOT_COORDINATOR", fault.id)
    assert fault.wait()["seq"] == event["seq"]
    later = chaos.events.wait(api="SyncGroup", group=group, injected=False, error="NONE",
                              since=event["seq"])
    assert later["seq"] > event["seq"]  # the rejoin's SyncGroup, answered by the broker
    detail = chaos.group(group)
    assert detail["group_id"] == group and detail["generation"] >= 1
    assert group in [g["group_id"] for g in chaos.groups()]


def test_a_wait_for_what_never_happens_says_what_did(
        chaos: ChaosProxy, kafka_bootstrap: str, unique_name: UniqueName) -> None:
    topic, group = unique_name("topic"), unique_name("group")
    _topic_with_records(kafka_bootstrap, topic)
    assert _consume_all(chaos.bootstrap, topic, group) == set(range(RECORDS))
    with pytest.raises(EventTimeout) as info:
        chaos.events.wait(api="SyncGroup", group=group, injected=True, timeout=1)
    assert f"of group {group}:" in str(info.value)
    assert any(e["api"] == "SyncGroup" and not e.get("fault") for e in info.value.seen)


@pytest.mark.parametrize("mode", ["inprocess", "subprocess"])
def test_a_proxy_in_front_of_the_broker_the_provider_picks(
        monkeypatch: pytest.MonkeyPatch, kafka_bootstrap: str, unique_name: UniqueName,
        mode: Mode) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)  # the provider's first choice
    monkeypatch.delenv("KCP_KAFKA_PROVIDER", raising=False)
    topic, group = unique_name("topic"), unique_name("group")
    _topic_with_records(kafka_bootstrap, topic)
    with ChaosProxy.start(mode=mode) as chaos:
        assert _consume_all(chaos.bootstrap, topic, group) == set(range(RECORDS))
        assert chaos.events.wait(api="JoinGroup", group=group)["group"] == group


async def test_the_async_api_while_an_aiokafka_consumer_runs(
        kafka_bootstrap: str, unique_name: UniqueName) -> None:
    topic, group = unique_name("topic"), unique_name("group")
    _topic_with_records(kafka_bootstrap, topic)
    async with AsyncChaosProxy.start(kafka_bootstrap) as chaos:
        async with chaos.fault(api="Heartbeat", group=group).error("REBALANCE_IN_PROGRESS",
                                                                   times=1) as fault:
            consumer = AIOKafkaConsumer(topic, group_id=group, bootstrap_servers=chaos.bootstrap,
                                        auto_offset_reset="earliest", heartbeat_interval_ms=500)
            await consumer.start()
            try:
                seen: set[int] = set()
                deadline = time.monotonic() + WAIT_S
                while len(seen) < RECORDS and time.monotonic() < deadline:
                    for records in (await consumer.getmany(timeout_ms=500)).values():
                        seen.update(int(r.value) for r in records if r.value is not None)
                # The consumer keeps heartbeating on this loop while the wait is awaited.
                event = await chaos.events.wait(api="Heartbeat", group=group, injected=True,
                                                timeout=30)
            finally:
                await consumer.stop()
            assert await fault.injections() == 1
        assert await chaos.rules() == []
    assert event["error"] == "REBALANCE_IN_PROGRESS" and seen == set(range(RECORDS))
