"""A KIP-848 consumer group (librdkafka with group.protocol=consumer) through the proxy: the
ConsumerGroupHeartbeat traffic in the event log and the group model's epochs."""

from __future__ import annotations

import asyncio
from typing import Any

from confluent_kafka import Consumer

from tests.support.chaos import ChaosProxy, create_topic, produce


def _poll_until(consumer: Consumer, wanted: int, rounds: int = 120) -> int:
    """Poll in bounded rounds until `wanted` records arrived; returns how many did."""
    got = 0
    for _ in range(rounds):
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            got += 1
            if got >= wanted:
                break
    return got


async def test_kip848_group_events_and_state(chaos: ChaosProxy, unique_name: Any) -> None:
    topic, group = unique_name("t"), unique_name("g")
    create_topic(chaos.bootstrap_servers, topic, 2)
    await produce(chaos.bootstrap_servers, topic, 4)
    consumer = Consumer(
        {
            "bootstrap.servers": chaos.bootstrap_servers,
            "group.id": group,
            "group.protocol": "consumer",
            "client.id": "kip848-member",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.subscribe([topic])
        assert await asyncio.to_thread(_poll_until, consumer, 4) == 4

        async def stable() -> dict[str, Any] | None:
            state = await chaos.group(group)
            return state if state and state["state"] == "stable" else None

        state = await chaos.wait_for(stable, "the KIP-848 group to be stable")
    finally:
        await asyncio.to_thread(consumer.close)

    assert state["kind"] == "consumer" and state["member_count"] == 1
    assert state["generation"] is not None and state["generation"] >= 1
    (member,) = state["members"]
    assert member["client_id"] == "kip848-member" and member["subscription"] == [topic]
    assert sum(len(p) for p in (member["assignment"] or {}).values()) == 2

    events = await chaos.events(group=group, api="ConsumerGroupHeartbeat")
    assert events and events[0]["subscription"] == [topic]
    assert any(e["assignment"] for e in events)
    assert events[-1]["generation"] == -1  # the leave heartbeat on close
