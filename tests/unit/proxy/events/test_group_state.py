"""Group state folded through real-shaped rebalance sequences."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from kafka_chaos_proxy.proxy import metrics
from kafka_chaos_proxy.proxy.groups import GroupStateModel
from kafka_chaos_proxy.proxy.observers import GroupMetrics


def _sample(name: str, group: str) -> float | None:
    text = generate_latest(metrics.REGISTRY).decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels.get("group") == group:
                return sample.value
    return None


def _two_member_rebalance(
    model: GroupStateModel, build: SimpleNamespace, group: str, generation: int, clock: object
) -> None:
    tick = clock.tick  # type: ignore[attr-defined]
    # m-2's JoinGroup answer may reach the proxy before the leader's: order must not matter.
    model.observe(build.join(group, "m-2", generation, "m-1", at=tick(), latency_s=0.5))
    model.observe(
        build.join(
            group, "m-1", generation, "m-1", members=["m-1", "m-2"], at=tick(), latency_s=0.5
        )
    )
    assert model.get(group).state == "rebalancing"
    model.observe(
        build.sync(
            group,
            "m-1",
            generation,
            {"t": [0]},
            assignments={"m-1": {"t": [0]}, "m-2": {"t": [1]}},
            at=tick(),
        )
    )
    assert model.get(group).state == "rebalancing"  # m-2 has not synced yet
    model.observe(build.sync(group, "m-2", generation, {"t": [1]}, at=tick(), latency_s=0.05))


def test_two_member_rebalance(build: SimpleNamespace) -> None:
    model = GroupStateModel()
    model.listeners.append(GroupMetrics())
    clock = build.Clock()
    start = clock.now
    _two_member_rebalance(model, build, "fold-g1", 1, clock)
    group = model.get("fold-g1")
    assert group is not None
    assert (group.state, group.generation, group.leader) == ("stable", 1, "m-1")
    assert (group.protocol_type, group.protocol, group.kind) == ("consumer", "range", "classic")
    assert set(group.members) == {"m-1", "m-2"}
    assert group.members["m-2"].assignment == {"t": [1]}
    assert group.members["m-2"].subscription == ["orders"]
    assert group.assignment == {"m-1": {"t": [0]}, "m-2": {"t": [1]}}
    assert group.rebalance_count == 1
    record = group.last_rebalance
    assert record is not None and record.started_at == pytest.approx(start + 0.1)
    # From the first JoinGroup (t+0.1) to the answer of the last SyncGroup (t+0.4, +50 ms).
    assert record.duration_s == pytest.approx(0.35, abs=1e-6)
    assert _sample("kcp_group_generation", "fold-g1") == 1
    assert _sample("kcp_group_members", "fold-g1") == 2
    assert _sample("kcp_group_rebalances_total", "fold-g1") == 1
    assert _sample("kcp_group_rebalance_seconds_count", "fold-g1") == 1

    # Heartbeat says a new round began; a third member joins generation 2.
    model.observe(build.heartbeat("fold-g1", "m-1", 1, error=27, at=clock.tick()))
    assert group.state == "rebalancing"
    for member in ("m-1", "m-2", "m-3"):
        leader_list = ["m-1", "m-2", "m-3"] if member == "m-1" else None
        model.observe(build.join("fold-g1", member, 2, "m-1", members=leader_list, at=clock.tick()))
    model.observe(
        build.sync(
            "fold-g1",
            "m-1",
            2,
            {"t": [0]},
            assignments={"m-1": {"t": [0]}, "m-2": {"t": [1]}, "m-3": {}},
            at=clock.tick(),
        )
    )
    model.observe(build.sync("fold-g1", "m-2", 2, {"t": [1]}, at=clock.tick()))
    assert group.state == "rebalancing"
    model.observe(build.sync("fold-g1", "m-3", 2, {}, at=clock.tick()))
    assert (group.state, group.generation, group.rebalance_count) == ("stable", 2, 2)
    assert group.members["m-3"].assignment == {}
    assert _sample("kcp_group_members", "fold-g1") == 3

    # m-3 leaves: the broker will rebalance the other two.
    model.observe(build.leave("fold-g1", "m-3", at=clock.tick()))
    assert set(group.members) == {"m-1", "m-2"} and group.state == "rebalancing"

    detail = group.detail()
    assert detail["member_count"] == 2 and detail["last_rebalance"]["generation"] == 2


def test_sync_error_keeps_rebalancing_and_leader_list_prunes(build: SimpleNamespace) -> None:
    model = GroupStateModel()
    clock = build.Clock()
    _two_member_rebalance(model, build, "g", 1, clock)
    model.observe(build.join("g", "m-1", 2, "m-1", members=["m-1"], at=clock.tick()))
    group = model.get("g")
    assert set(group.members) == {"m-1"}  # m-2 is not in generation 2
    model.observe(build.sync("g", "m-1", 2, {}, error=27, at=clock.tick()))
    # The broker's "rejoin" is a step of every rebalance, not an error of the group.
    assert group.state == "rebalancing" and group.last_error is None
    model.observe(build.sync("g", "m-1", 2, {"t": [0, 1]}, at=clock.tick()))
    assert group.state == "stable" and group.members["m-1"].assignment == {"t": [0, 1]}


def test_unknown_member_is_dropped(build: SimpleNamespace) -> None:
    model = GroupStateModel()
    clock = build.Clock()
    _two_member_rebalance(model, build, "g", 1, clock)
    model.observe(build.heartbeat("g", "m-2", 1, error=25, at=clock.tick()))
    assert set(model.get("g").members) == {"m-1"}


def test_commits_are_recorded(build: SimpleNamespace) -> None:
    model = GroupStateModel()
    model.observe(build.commit("g", "m-1", 1, {"t": {0: 5, 1: 9}}, {"t": {1: 27}}))
    group = model.get("g")
    assert group.offsets == {"t": {0: 5}}
    assert group.state == "rebalancing"  # REBALANCE_IN_PROGRESS says a round started


def test_kip848_epochs(build: SimpleNamespace) -> None:
    model = GroupStateModel()
    topic = uuid.uuid4()

    def hb(member: str, req_epoch: int, epoch: int, parts: list[int] | None) -> None:
        request = {
            "group_id": "g848",
            "member_id": member,
            "member_epoch": req_epoch,
            "subscribed_topic_names": ["a"],
            "topic_partitions": [],
        }
        response = {
            "error_code": 0,
            "member_id": member,
            "member_epoch": epoch,
            "heartbeat_interval_ms": 1000,
            "assignment": None
            if parts is None
            else {"topic_partitions": [{"topic_id": topic, "partitions": parts}]},
        }
        model.observe(build.exchange(68, 0, request, response))

    hb("a", 0, 1, [0, 1])
    group = model.get("g848")
    assert (group.kind, group.state, group.generation, group.rebalance_count) == (
        "consumer",
        "stable",
        1,
        1,
    )
    hb("b", 0, 2, [])
    assert group.state == "rebalancing"  # a is still at epoch 1
    hb("a", 1, 2, [0])
    assert (group.state, group.generation, group.rebalance_count) == ("stable", 2, 2)
    assert group.members["a"].assignment == {str(topic): [0]}
    hb("b", 2, 2, [1])
    assert group.members["b"].assignment == {str(topic): [1]} and group.rebalance_count == 2
    hb("b", -1, -1, None)
    assert set(group.members) == {"a"}


def test_bounds_evict_oldest_and_remove_series(build: SimpleNamespace) -> None:
    model = GroupStateModel(max_groups=2, max_members=2)
    model.listeners.append(GroupMetrics())
    clock = build.Clock()
    for name in ("bound-a", "bound-b", "bound-c"):
        model.observe(build.join(name, "m", 1, "m", members=["m"], at=clock.tick()))
    assert [g.group_id for g in model.list()] == ["bound-b", "bound-c"]
    assert _sample("kcp_group_members", "bound-a") is None
    for member in ("x", "y", "z"):
        model.observe(build.heartbeat("bound-c", member, 1, at=clock.tick()))
    assert len(model.get("bound-c").members) == 2


def test_rejoin_into_same_generation_is_not_a_rebalance(build: SimpleNamespace) -> None:
    model = GroupStateModel()
    clock = build.Clock()
    _two_member_rebalance(model, build, "g", 1, clock)
    model.observe(build.join("g", "m-2", 1, "m-1", at=clock.tick()))
    group = model.get("g")
    assert (group.state, group.generation, group.rebalance_count) == ("stable", 1, 1)
