"""Faults injected into a real aiokafka consumer group through the admin API, and what the
event log, the group state and the metrics show of the client's reaction.

Every test ends with consumption resuming: a fault that leaves the client stuck is a failure.
Waits are bounded conditions on the event log or on consumed records, never elapsed time.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import CommitFailedError
from aiokafka.structs import OffsetAndMetadata, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from tests.support.chaos import ChaosProxy, consume, consumer, create_topic, produce

PARTITIONS = 2


def _values(start: int, count: int) -> set[bytes]:
    return {f"v{i}".encode() for i in range(start, start + count)}


async def _start_member(chaos: ChaosProxy, topic: str, group: str) -> AIOKafkaConsumer:
    member = consumer(chaos.bootstrap_servers, topic, group)
    await member.start()
    return member


async def _resumes(chaos: ChaosProxy, member: AIOKafkaConsumer, topic: str, start: int) -> None:
    await produce(chaos.bootstrap_servers, topic, 4, start=start)
    await consume([member], _values(start, 4))


async def _injected(chaos: ChaosProxy, rule_id: str, count: int = 1) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        rule = await chaos.fault(rule_id)
        return rule if rule["stats"]["injected"] >= count else None

    return await chaos.wait_for(done, f"rule {rule_id} to inject {count} fault(s)")


def _faulted(events: list[dict[str, Any]], rule_id: str) -> list[dict[str, Any]]:
    return [e for e in events if e["fault"] and e["fault"]["rule"] == rule_id]


async def test_not_coordinator_on_sync_group_rediscovers_and_recovers(
    chaos: ChaosProxy, unique_name: Any
) -> None:
    topic, group = unique_name("t"), unique_name("g")
    create_topic(chaos.bootstrap_servers, topic, PARTITIONS)
    await produce(chaos.bootstrap_servers, topic, 4)
    await chaos.add_fault(
        {
            "id": "sync-nc",
            "match": {"apis": ["SyncGroup"], "group_id": group},
            "action": {"type": "error", "error": "NOT_COORDINATOR"},
            "dosage": {"max_injections": 1},
        }
    )
    member = await _start_member(chaos, topic, group)
    try:
        await consume([member], _values(0, 4))
        await _injected(chaos, "sync-nc")
        await _resumes(chaos, member, topic, 4)
    finally:
        await member.stop()

    events = await chaos.events(group=group)
    (hit,) = _faulted(events, "sync-nc")
    assert hit["api"] == "SyncGroup" and hit["error"] == "NOT_COORDINATOR"
    assert hit["fault"]["action"] == "error"
    after = [e for e in events if e["seq"] > hit["seq"]]
    assert any(e["api"] == "FindCoordinator" and e["coordinator"] is not None for e in after)
    assert any(e["api"] == "SyncGroup" and not e["error"] and e["assignment"] for e in after)


async def test_dropped_sync_group_response_times_out_and_rejoins(
    chaos: ChaosProxy, unique_name: Any
) -> None:
    topic, group = unique_name("t"), unique_name("g")
    create_topic(chaos.bootstrap_servers, topic, PARTITIONS)
    await produce(chaos.bootstrap_servers, topic, 4)
    await chaos.add_fault(
        {
            "id": "sync-drop",
            "match": {"apis": ["SyncGroup"], "group_id": group},
            "action": {"type": "drop_response"},
            "dosage": {"max_injections": 1},
        }
    )
    member = await _start_member(chaos, topic, group)
    try:
        await consume([member], _values(0, 4))
        await _injected(chaos, "sync-drop")
        await _resumes(chaos, member, topic, 4)
    finally:
        await member.stop()

    events = await chaos.events(group=group)
    (hit,) = _faulted(events, "sync-drop")
    assert hit["api"] == "SyncGroup" and hit["fault"]["action"] == "drop_response"
    assert hit["assignment"] is None  # the client never saw an answer
    after = [e for e in events if e["seq"] > hit["seq"]]
    rejoin = next(e for e in after if e["api"] == "JoinGroup" and not e["error"])
    assert any(
        e["api"] == "SyncGroup" and not e["error"] and e["generation"] >= rejoin["generation"]
        for e in after
    )
    state = await chaos.group(group)
    assert state is not None and state["rebalance_count"] >= 1


async def test_rebalance_in_progress_on_offset_commit(chaos: ChaosProxy, unique_name: Any) -> None:
    topic, group = unique_name("t"), unique_name("g")
    create_topic(chaos.bootstrap_servers, topic, PARTITIONS)
    await produce(chaos.bootstrap_servers, topic, 4)
    member = await _start_member(chaos, topic, group)
    try:
        await consume([member], _values(0, 4))
        await chaos.add_fault(
            {
                "id": "commit-rip",
                "match": {"apis": ["OffsetCommit"], "group_id": group},
                "action": {"type": "error", "error": "REBALANCE_IN_PROGRESS"},
                "dosage": {"max_injections": 1},
            }
        )
        offsets = {TopicPartition(topic, 0): OffsetAndMetadata(1, "")}
        with pytest.raises(CommitFailedError):
            await member.commit(offsets)
        await _resumes(chaos, member, topic, 4)  # the client rejoined and goes on
        await member.commit(offsets)
    finally:
        await member.stop()

    events = await chaos.events(group=group)
    (hit,) = _faulted(events, "commit-rip")
    assert hit["api"] == "OffsetCommit" and hit["error"] == "REBALANCE_IN_PROGRESS"
    assert hit["offsets"][topic]["0"] == {"offset": 1, "error": "REBALANCE_IN_PROGRESS"}
    after = [e for e in events if e["seq"] > hit["seq"]]
    assert any(e["api"] == "JoinGroup" and not e["error"] for e in after)  # the reaction
    assert any(e["api"] == "OffsetCommit" and e["error"] is None for e in after)


def _histogram(text: str, api: str) -> dict[float, float]:
    """Cumulative bucket counts of the client-visible latency histogram for one API."""
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "kcp_coordination_latency_seconds":
            continue
        for sample in family.samples:
            if sample.name.endswith("_bucket") and sample.labels.get("api") == api:
                buckets[float(sample.labels["le"])] = sample.value
    return buckets


async def test_delay_jitter_shows_in_latency_histogram(chaos: ChaosProxy, unique_name: Any) -> None:
    fixed_ms, jitter_ms, count = 500, 300, 5  # uniform: 500 ms ± 300 ms
    topic, group = unique_name("t"), unique_name("g")
    create_topic(chaos.bootstrap_servers, topic, PARTITIONS)
    await produce(chaos.bootstrap_servers, topic, 4)
    member = await _start_member(chaos, topic, group)
    try:
        await consume([member], _values(0, 4))
        before = _histogram(await chaos.metrics(), "Heartbeat")
        await chaos.add_fault(
            {
                "id": "hb-jitter",
                "match": {"apis": ["Heartbeat"], "group_id": group},
                "action": {
                    "type": "delay",
                    "side": "response",
                    "fixed_ms": fixed_ms,
                    "jitter_ms": jitter_ms,
                    "distribution": "uniform",
                },
                "dosage": {"max_injections": count},
            }
        )
        await _injected(chaos, "hb-jitter", count)

        async def all_logged() -> list[dict[str, Any]]:
            hits = _faulted(await chaos.events(group=group, api="Heartbeat"), "hb-jitter")
            return hits if len(hits) == count else []

        hits = await chaos.wait_for(all_logged, "the delayed heartbeats in the event log")
        after = _histogram(await chaos.metrics(), "Heartbeat")
        await _resumes(chaos, member, topic, 4)
    finally:
        await member.stop()

    delays = [e["fault"]["delay_ms"] for e in hits]
    assert all(fixed_ms - jitter_ms <= d <= fixed_ms + jitter_ms for d in delays), delays
    assert len(set(delays)) > 1, delays  # jitter, not a fixed delay
    assert all(e["latency_ms"] >= e["fault"]["delay_ms"] for e in hits)
    # Each delayed heartbeat sits in the histogram bucket its event's latency says.
    bounds = sorted(after)
    for low, high in itertools.pairwise(bounds):
        if high <= (fixed_ms - jitter_ms) / 1000:
            continue
        logged = sum(1 for e in hits if low < e["latency_ms"] / 1000 <= high)
        counted = (after[high] - before.get(high, 0)) - (after[low] - before.get(low, 0))
        assert counted >= logged, (low, high, counted, logged)


async def test_error_after_forward_on_offset_commit(chaos: ChaosProxy, unique_name: Any) -> None:
    topic, group = unique_name("t"), unique_name("g")
    create_topic(chaos.bootstrap_servers, topic, PARTITIONS)
    await produce(chaos.bootstrap_servers, topic, 4)
    member = await _start_member(chaos, topic, group)
    try:
        await consume([member], _values(0, 4))
        await chaos.add_fault(
            {
                "id": "commit-eaf",
                "match": {"apis": ["OffsetCommit"], "group_id": group},
                "action": {"type": "error_after_forward", "error": "NOT_COORDINATOR"},
                "dosage": {"max_injections": 1},
            }
        )
        tp = TopicPartition(topic, 1)
        await member.commit({tp: OffsetAndMetadata(2, "")})  # aiokafka retries after rediscovery
        assert await member.committed(tp) == 2
        await _resumes(chaos, member, topic, 4)
    finally:
        await member.stop()

    events = await chaos.events(group=group)
    (hit,) = _faulted(events, "commit-eaf")
    assert hit["api"] == "OffsetCommit" and hit["fault"]["action"] == "error_after_forward"
    assert hit["error"] == "NOT_COORDINATOR" and hit["upstream_latency_ms"] is not None
    after = [e for e in events if e["seq"] > hit["seq"]]
    assert any(e["api"] == "FindCoordinator" for e in after)
    assert any(e["api"] == "OffsetCommit" and e["error"] is None for e in after)


@pytest.mark.parametrize("mode", ["graceful", "reset"])
async def test_close_on_heartbeat(chaos: ChaosProxy, unique_name: Any, mode: str) -> None:
    topic, group = unique_name("t"), unique_name("g")
    create_topic(chaos.bootstrap_servers, topic, PARTITIONS)
    await produce(chaos.bootstrap_servers, topic, 4)
    member = await _start_member(chaos, topic, group)
    try:
        await consume([member], _values(0, 4))
        await chaos.add_fault(
            {
                "id": f"hb-close-{mode}",
                "match": {"apis": ["Heartbeat"], "group_id": group},
                "action": {"type": "close", "when": "before", "mode": mode},
                "dosage": {"max_injections": 1},
            }
        )
        await _injected(chaos, f"hb-close-{mode}")

        async def heartbeat_after_close() -> bool:
            events = await chaos.events(group=group, api="Heartbeat")
            hits = _faulted(events, f"hb-close-{mode}")
            return bool(hits) and any(
                e["seq"] > hits[0]["seq"] and not e["error"] and e["outcome"] == "ok"
                for e in events
            )

        await chaos.wait_for(heartbeat_after_close, "a heartbeat on a new connection")
        await _resumes(chaos, member, topic, 4)
    finally:
        await member.stop()

    events = await chaos.events(group=group, api="Heartbeat")
    (hit,) = _faulted(events, f"hb-close-{mode}")
    assert hit["fault"]["close"] == f"before/{mode}" and hit["outcome"] != "ok"
    later = next(e for e in events if e["seq"] > hit["seq"] and e["outcome"] == "ok")
    assert later["connection"] != hit["connection"]


async def test_throttled_join_group(chaos: ChaosProxy, unique_name: Any) -> None:
    topic, group = unique_name("t"), unique_name("g")
    create_topic(chaos.bootstrap_servers, topic, PARTITIONS)
    await produce(chaos.bootstrap_servers, topic, 4)
    await chaos.add_fault(
        {
            "id": "join-slow",
            "match": {"apis": ["JoinGroup"], "group_id": group},
            "action": {"type": "throttle", "bytes_per_s": 1000},
            "dosage": {"max_injections": 2},
        }
    )
    member = await _start_member(chaos, topic, group)
    try:
        await consume([member], _values(0, 4))
        await _injected(chaos, "join-slow")
    finally:
        await member.stop()
    hits = _faulted(await chaos.events(group=group, api="JoinGroup"), "join-slow")
    assert hits and all(e["fault"]["action"] == "throttle" for e in hits)
    state = await chaos.group(group)
    assert state is not None and state["rebalance_count"] >= 1


async def test_faults_metric_and_rule_stats(chaos: ChaosProxy, unique_name: Any) -> None:
    """faults_injected_total follows the engine's injections (counted via on_injected)."""
    topic, group = unique_name("t"), unique_name("g")
    create_topic(chaos.bootstrap_servers, topic, PARTITIONS)
    rule = await chaos.add_fault(
        {
            # An id of its own: the metric registry is the process's, shared by every
            # in-process proxy of the session (the Python API's, the pytest plugin's).
            "id": unique_name("rule"),
            "match": {"apis": ["FindCoordinator"], "group_id": group},
            "action": {"type": "error", "error": "COORDINATOR_NOT_AVAILABLE"},
            "dosage": {"max_injections": 2},
        }
    )
    member = await _start_member(chaos, topic, group)
    await member.stop()
    stats = (await _injected(chaos, rule["id"], 2))["stats"]
    text = await chaos.metrics()
    values = [
        s.value
        for f in text_string_to_metric_families(text)
        if f.name == "kcp_faults_injected"
        for s in f.samples
        if s.labels == {"rule": rule["id"], "action": "error"}
    ]
    assert values == [stats["injected"]]
    await chaos.remove_fault(rule["id"])
    assert [r["id"] for r in await chaos.call(chaos.admin.rules)] == []
