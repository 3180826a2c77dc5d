"""Broker-consistent UNKNOWN_MEMBER_ID against a real broker and a real aiokafka consumer.

A plain injected UNKNOWN_MEMBER_ID comes from the proxy while the broker still holds the
member: the client rightly forgets its member id and rejoins, and the broker's rebalance waits
for the ghost of its old member until that member's session times out. With
`broker_consistent` the proxy removes the member at the broker first (its own LeaveGroup), so
the broker agrees with the client and the rejoin is immediate. The test shows both, from the
broker's own DescribeGroups (asked directly, not through the proxy) and from the time the
client takes to its next assignment, compared within one test (no wall-clock threshold).

The side channel (`proxy.side_channel`) is tested here too, against the same broker: a member
it does not know is UNKNOWN_MEMBER_ID, a real one is removed, an unreachable broker is a
result with a reason rather than an exception; likewise the KIP-848 leave for a real
librdkafka member of a consumer-protocol group.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient as KafkaAdminClient

from kafka_chaos_proxy.faults.engine import FaultEngine
from kafka_chaos_proxy.proxy import side_channel
from kafka_chaos_proxy.proxy.exchange import Exchange
from kafka_chaos_proxy.proxy.real_kafka import KafkaCluster
from tests.support.chaos import create_topic

JOIN_GROUP, HEARTBEAT, SYNC_GROUP = 11, 12, 14
SESSION_TIMEOUT_MS = 10_000
WAIT_S = 60.0  # bound of every wait; nothing is asserted on elapsed wall-clock time


class Exchanges:
    """Every coordination exchange the proxy finished (appended on the proxy's thread)."""

    def __init__(self) -> None:
        self.items: list[Exchange] = []
        self._lock = threading.Lock()

    def observe(self, exchange: Exchange) -> None:
        with self._lock:
            self.items.append(exchange)

    def of(self, api_key: int, group: str) -> list[Exchange]:
        with self._lock:
            items = list(self.items)
        return [e for e in items if e.api_key == api_key and e.request_body is not None
                and e.request_body.get("group_id") == group]


def _answered_at(exchange: Exchange) -> float:
    return exchange.started_at + exchange.latency_s


def _ok(exchange: Exchange) -> bool:
    return (exchange.outcome == "ok" and exchange.response_body is not None
            and exchange.response_body.get("error_code") == 0)


def _broker_members(admin: KafkaAdminClient, group: str) -> list[str]:
    """The group's member ids from the broker's DescribeGroups (not through the proxy)."""
    description = admin.describe_consumer_groups([group], request_timeout=10)[group].result(15)
    return [m.member_id for m in description.members]


async def _until(check: Any, what: str, timeout_s: float = WAIT_S) -> Any:
    for _ in range(int(timeout_s / 0.1)):
        result = check()
        if result:
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Outcome:
    old_member: str
    new_member: str
    join_delay_s: float  # injection -> the next successful JoinGroup reached the client
    assignment_delay_s: float  # injection -> the next successful SyncGroup (the assignment)
    ghost_seen: bool  # the broker still listed the old member after the client was told
    checks: int  # DescribeGroups asked between the injection and the assignment


async def _inject_once(proxy_factory: Any, kafka_cluster: KafkaCluster, admin: KafkaAdminClient,
                       name: str, consistent: bool) -> Outcome:
    """One aiokafka member alone in its group; its Heartbeat is answered UNKNOWN_MEMBER_ID
    once; watch the broker and the client until the client holds its partition again."""
    engine = FaultEngine(seed=1)
    seen = Exchanges()
    proxy = proxy_factory(decider=engine, observers=[seen])
    topic, group = f"{name}-t", f"{name}-g"
    create_topic(kafka_cluster.bootstrap_servers, topic, 1)
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=proxy.bootstrap_servers, group_id=group,
        client_id=f"{name}-client", session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=500, request_timeout_ms=30_000, retry_backoff_ms=100,
        enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    stop = asyncio.Event()

    async def poll() -> None:  # a consumer that keeps polling, as real ones do
        while not stop.is_set():
            await consumer.getmany(timeout_ms=100)

    poller = asyncio.create_task(poll())
    try:
        await _until(lambda: consumer.assignment(), "the first assignment")
        # Stable: the broker has taken a heartbeat of the member since its assignment.
        await _until(lambda: any(_ok(e) for e in seen.of(HEARTBEAT, group)), "a heartbeat")
        joined = [e for e in seen.of(JOIN_GROUP, group) if _ok(e)]
        assert joined, "the member joined through the proxy"
        old_member = joined[-1].response_body["member_id"]  # type: ignore[index]
        assert old_member in await asyncio.to_thread(_broker_members, admin, group)
        action: dict[str, Any] = {"type": "error", "error": "UNKNOWN_MEMBER_ID"}
        if consistent:
            action["broker_consistent"] = True
        proxy.call(engine.add, {
            "id": "fence", "match": {"apis": ["Heartbeat"], "group_id": group,
                                     "member_id": old_member},
            "action": action, "dosage": {"max_injections": 1}})

        def injected() -> Exchange | None:
            hits = [e for e in seen.of(HEARTBEAT, group) if e.outcome == "error_injected"]
            return hits[0] if hits else None

        hit: Exchange = await _until(injected, "the injected UNKNOWN_MEMBER_ID")
        assert hit.response_body is not None and hit.response_body["error_code"] == 25
        injected_at = hit.started_at  # the rule fired when the heartbeat arrived

        def assigned() -> Exchange | None:
            done = [e for e in seen.of(SYNC_GROUP, group)
                    if e.started_at > injected_at and _ok(e)]
            return done[0] if done else None

        # The broker's view once the client has its answer, and then every 0.1 s until the
        # client holds its partition again.
        ghost_seen, checks, sync = False, 0, None
        deadline = time.monotonic() + WAIT_S
        while sync is None and time.monotonic() < deadline:
            if checks:
                await asyncio.sleep(0.1)
            members = await asyncio.to_thread(_broker_members, admin, group)
            checks += 1
            ghost_seen = ghost_seen or old_member in members
            sync = assigned()
        assert sync is not None, "the member was assigned its partition again"
        rejoined = [e for e in seen.of(JOIN_GROUP, group) if e.started_at > injected_at
                    and _ok(e)]
        assert rejoined, "the member rejoined through the proxy"
        new_member = rejoined[0].response_body["member_id"]  # type: ignore[index]
        assert new_member != old_member  # the client forgot its member id, as it should
        # Either way the broker ends with the new member alone.
        assert await asyncio.to_thread(_broker_members, admin, group) == [new_member]
        return Outcome(old_member, new_member, _answered_at(rejoined[0]) - injected_at,
                       _answered_at(sync) - injected_at, ghost_seen, checks)
    finally:
        stop.set()
        await poller
        await consumer.stop()


async def test_broker_consistent_unknown_member_id_leaves_no_ghost_and_rejoins_sooner(
        proxy_factory: Any, kafka_cluster: KafkaCluster, unique_name: Any) -> None:
    admin = KafkaAdminClient({"bootstrap.servers": kafka_cluster.bootstrap_servers})
    plain = await _inject_once(proxy_factory, kafka_cluster, admin, unique_name("plain"),
                               consistent=False)
    consistent = await _inject_once(proxy_factory, kafka_cluster, admin,
                                    unique_name("consistent"), consistent=True)
    print(f"\nplain:      join {plain.join_delay_s:.3f} s, assignment "
          f"{plain.assignment_delay_s:.3f} s, ghost seen {plain.ghost_seen} "
          f"({plain.checks} DescribeGroups)"
          f"\nconsistent: join {consistent.join_delay_s:.3f} s, assignment "
          f"{consistent.assignment_delay_s:.3f} s, ghost seen {consistent.ghost_seen} "
          f"({consistent.checks} DescribeGroups)")
    # Plain: the broker still held the old member while the client rejoined without it.
    assert plain.ghost_seen
    # Consistent: the broker had forgotten it before the client was told.
    assert not consistent.ghost_seen and consistent.checks >= 1
    assert consistent.assignment_delay_s < plain.assignment_delay_s
    assert consistent.join_delay_s < plain.join_delay_s


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_side_channel_remove_member_against_the_real_broker(
        kafka_cluster: KafkaCluster, unique_name: Any) -> None:
    (address,) = kafka_cluster.nodes.values()
    admin = KafkaAdminClient({"bootstrap.servers": kafka_cluster.bootstrap_servers})
    topic, group = unique_name("t"), unique_name("g")
    create_topic(kafka_cluster.bootstrap_servers, topic, 1)
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka_cluster.bootstrap_servers, group_id=group,
        session_timeout_ms=SESSION_TIMEOUT_MS, heartbeat_interval_ms=500,
        enable_auto_commit=False)
    await consumer.start()
    try:
        for _ in range(int(WAIT_S / 0.1)):
            await consumer.getmany(timeout_ms=100)
            if consumer.assignment():
                break
        (member,) = await asyncio.to_thread(_broker_members, admin, group)

        side_channel.forget_versions()
        unknown = await side_channel.remove_member(address, group, f"{member}-not-a-member")
        assert (unknown.answered, unknown.error) == (True, "UNKNOWN_MEMBER_ID"), unknown
        assert unknown.api == "LeaveGroup" and unknown.version is not None
        assert unknown.version >= 3

        removed = await side_channel.remove_member(address, group, member)
        assert (removed.answered, removed.error) == (True, None), removed
        assert member not in await asyncio.to_thread(_broker_members, admin, group)
    finally:
        await consumer.stop()

    refused = await side_channel.remove_member(("127.0.0.1", _free_port()), group, "m",
                                               timeout_s=2.0)
    assert not refused.answered and refused.error is None
    assert refused.reason is not None and "cannot reach" in refused.reason


def _poll_until_assigned(consumer: Consumer) -> bool:
    for _ in range(int(WAIT_S / 0.5)):
        consumer.poll(0.5)
        if consumer.assignment():
            return True
    return False


async def test_side_channel_kip848_leave_against_the_real_broker(
        kafka_cluster: KafkaCluster, unique_name: Any) -> None:
    (address,) = kafka_cluster.nodes.values()
    topic, group = unique_name("t"), unique_name("g")
    create_topic(kafka_cluster.bootstrap_servers, topic, 1)
    consumer = Consumer({"bootstrap.servers": kafka_cluster.bootstrap_servers,
                         "group.id": group, "group.protocol": "consumer",
                         "enable.auto.commit": False})
    try:
        consumer.subscribe([topic])
        assert await asyncio.to_thread(_poll_until_assigned, consumer)
        member = consumer.memberid()
        assert member

        unknown = await side_channel.leave_consumer_group(address, group, "not-a-member")
        assert (unknown.answered, unknown.error) == (True, "UNKNOWN_MEMBER_ID"), unknown
        left = await side_channel.leave_consumer_group(address, group, member)
        assert (left.answered, left.api, left.error) == (True, "ConsumerGroupHeartbeat", None)
    finally:
        await asyncio.to_thread(consumer.close)
