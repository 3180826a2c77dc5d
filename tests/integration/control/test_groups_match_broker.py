"""The proxy's `/groups/<id>` against the broker's own DescribeGroups, for a real two-member
aiokafka group: both say STABLE with two members while it runs (and the proxy records no error
for a healthy group, KIP-394's MEMBER_ID_REQUIRED step included), and both say EMPTY with no
members once the consumers closed."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from confluent_kafka import ConsumerGroupState
from confluent_kafka.admin import AdminClient as KafkaAdminClient

from kafka_chaos_proxy.proxy.real_kafka import KafkaCluster
from tests.support.chaos import ChaosProxy, consume, consumer, create_topic, produce

# The API's words for the broker's states (`GroupState.state`).
_PROXY_WORD = {ConsumerGroupState.STABLE: "stable", ConsumerGroupState.EMPTY: "empty",
               ConsumerGroupState.PREPARING_REBALANCING: "rebalancing",
               ConsumerGroupState.COMPLETING_REBALANCING: "rebalancing"}


def _broker_view(bootstrap: str, group: str) -> tuple[str | None, int]:
    """DescribeGroups straight to the broker, not through the proxy."""
    admin = KafkaAdminClient({"bootstrap.servers": bootstrap})
    description = admin.describe_consumer_groups([group], request_timeout=10)[group].result(15)
    return _PROXY_WORD.get(description.state), len(description.members)


async def _agree(chaos: ChaosProxy, cluster: KafkaCluster, group: str,
                 state: str, members: int) -> dict[str, Any]:
    """Wait (bounded) until the proxy and the broker both show `state` with `members`."""

    async def both() -> dict[str, Any] | None:
        proxy_view = await chaos.group(group)
        broker = await asyncio.to_thread(_broker_view, cluster.bootstrap_servers, group)
        if (proxy_view is not None and broker == (state, members)
                and (proxy_view["state"], proxy_view["member_count"]) == broker
                and len(proxy_view["members"]) == members):
            return proxy_view
        return None

    return await chaos.wait_for(both, f"proxy and broker to agree on {state}/{members}")


async def test_group_state_matches_the_broker(
    chaos: ChaosProxy, kafka_cluster: KafkaCluster, unique_name: Any, tmp_path: Path
) -> None:
    topic, group = unique_name("t"), unique_name("g")
    bs = chaos.bootstrap_servers

    async def coordinator_up() -> bool:
        """A fresh cluster answers COORDINATOR_NOT_AVAILABLE until __consumer_offsets exists:
        a real error, and not one of a healthy group, so wait it out first (not via the proxy)."""
        try:
            await asyncio.to_thread(_broker_view, kafka_cluster.bootstrap_servers,
                                    unique_name("warm-up"))
        except Exception:
            return False
        return True

    await chaos.wait_for(coordinator_up, "the group coordinator")
    create_topic(bs, topic, partitions=2)
    await produce(bs, topic, 6)
    members = [consumer(bs, topic, group, client_id=f"match-{i}") for i in range(2)]
    for member in members:
        await member.start()
    try:
        await consume(members, {f"v{i}".encode() for i in range(6)})

        async def both_assigned() -> bool:
            await consume(members, set(), timeout_s=1)
            return all(m.assignment() for m in members)

        await chaos.wait_for(both_assigned, "both members to hold partitions")
        running = await _agree(chaos, kafka_cluster, group, "stable", 2)
        assert running["last_error"] is None, running["last_error"]
        # A first join answered MEMBER_ID_REQUIRED is an event step, its error kept as sent
        # (the event file has every key; the API's Event model names the documented ones).
        lines = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
        joins = [e for e in lines if e["group"] == group and e["api"] == "JoinGroup"]
        assert joins and all(
            (e["error"] == "MEMBER_ID_REQUIRED") == (e["step"] == "member_id_required")
            for e in joins)
    finally:
        for member in members:
            await member.stop()

    left = await _agree(chaos, kafka_cluster, group, "empty", 0)
    assert left["members"] == [] and left["last_error"] is None
    metrics = await chaos.metrics()
    gauge = [line for line in metrics.splitlines()
             if line.startswith("kcp_group_members{") and f'group="{group}"' in line]
    assert gauge and gauge[0].endswith(" 0.0"), gauge


async def test_silent_members_expire_with_the_broker(
    chaos: ChaosProxy, kafka_cluster: KafkaCluster, unique_name: Any
) -> None:
    """Members that never get their LeaveGroup through (a fault drops it) stay members at the
    broker until their sessions time out (6 s here): the proxy, which saw no leave either,
    must expire them too rather than show them forever."""
    topic, group = unique_name("t"), unique_name("g")
    bs = chaos.bootstrap_servers
    create_topic(bs, topic, partitions=2)
    await produce(bs, topic, 2)
    await chaos.add_fault({
        "id": "no-leave",
        "match": {"apis": ["LeaveGroup"], "group_id": group},
        "action": {"type": "drop_request"},
    })
    members = [consumer(bs, topic, group, client_id=f"silent-{i}") for i in range(2)]
    for member in members:
        await member.start()
    try:
        await consume(members, {b"v0", b"v1"})
        await _agree(chaos, kafka_cluster, group, "stable", 2)
    finally:
        await asyncio.gather(*(member.stop() for member in members))
    left = await _agree(chaos, kafka_cluster, group, "empty", 0)
    assert left["members"] == []
    assert (await chaos.fault("no-leave"))["stats"]["injected"] >= 1
