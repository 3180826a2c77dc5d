"""Members leave the group model as they leave a broker's group: LeaveGroup (single and batch),
KIP-848 leave heartbeats, session expiry, and an unanswered LeaveGroup once its connection
closes. And KIP-394's MEMBER_ID_REQUIRED is a join step, not the group's last error."""

from __future__ import annotations

from types import SimpleNamespace

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from kafka_chaos_proxy.faults.decision import ActionKind, Decision
from kafka_chaos_proxy.proxy import metrics
from kafka_chaos_proxy.proxy.event_fields import event_fields
from kafka_chaos_proxy.proxy.events import EventLog
from kafka_chaos_proxy.proxy.exchange import ConnectionObserver
from kafka_chaos_proxy.proxy.groups import GroupStateModel
from kafka_chaos_proxy.proxy.observers import GroupMetrics


class Monotonic:
    """The model's monotonic clock, moved by hand: time passing with no exchange at all."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _members_gauge(group: str) -> float | None:
    text = generate_latest(metrics.REGISTRY).decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "kcp_group_members" and sample.labels.get("group") == group:
                return sample.value
    return None


def _stable_pair(model: GroupStateModel, build: SimpleNamespace, group: str,
                 clock: object) -> None:
    """m-1 (leader) and m-2 in generation 1, both synced; 6 s sessions (the builder's)."""
    tick = clock.tick  # type: ignore[attr-defined]
    model.observe(build.join(group, "m-2", 1, "m-1", at=tick(), connection=2))
    model.observe(build.join(group, "m-1", 1, "m-1", members=["m-1", "m-2"], at=tick()))
    model.observe(build.sync(group, "m-1", 1, {"t": [0]},
                             assignments={"m-1": {"t": [0]}, "m-2": {"t": [1]}}, at=tick()))
    model.observe(build.sync(group, "m-2", 1, {"t": [1]}, at=tick(), connection=2))
    assert model.get(group).state == "stable"


def test_member_id_required_is_a_join_step(build: SimpleNamespace) -> None:
    model = GroupStateModel()
    clock = build.Clock()
    first = build.join("step-g", "m-1", 0, "", error=79, at=clock.tick())
    ev = event_fields(first)
    assert (ev["error"], ev["error_code"]) == ("MEMBER_ID_REQUIRED", 79)  # as the broker sent
    assert ev["step"] == "member_id_required"
    model.observe(first)
    group = model.get("step-g")
    assert group is not None and group.last_error is None and not group.members
    model.observe(build.join("step-g", "m-1", 1, "m-1", members=["m-1"], request_member="m-1",
                             at=clock.tick()))
    model.observe(build.sync("step-g", "m-1", 1, {"t": [0]}, at=clock.tick()))
    assert (group.state, group.broker_state, len(group.members)) == ("stable", "STABLE", 1)
    assert group.summary()["last_error"] is None
    # Any other JoinGroup error still is one.
    assert event_fields(build.join("step-g", "m-1", 0, "", error=25))["step"] is None
    model.observe(build.heartbeat("step-g", "m-1", 1, error=27, at=clock.tick()))
    assert group.last_error is None  # REBALANCE_IN_PROGRESS from the broker: "rejoin"
    injected = Decision(action=ActionKind.ERROR, rule_id="r1", error_code=27)
    model.observe(build.heartbeat("step-g", "m-1", 1, error=27, at=clock.tick(),
                                  decision=injected, outcome="error_injected"))
    assert group.last_error == "REBALANCE_IN_PROGRESS"  # a fault's error always shows
    model.observe(build.heartbeat("step-g", "m-1", 1, error=25, at=clock.tick()))
    assert group.last_error == "UNKNOWN_MEMBER_ID"


def test_leave_v1_single_and_v3_batch(build: SimpleNamespace) -> None:
    model = GroupStateModel()
    model.listeners.append(GroupMetrics())
    clock = build.Clock()
    _stable_pair(model, build, "leave-g", clock)
    model.observe(build.exchange(13, 1, {"group_id": "leave-g", "member_id": "m-2"},
                                 {"throttle_time_ms": 0, "error_code": 0}, at=clock.tick()))
    group = model.get("leave-g")
    assert set(group.members) == {"m-1"} and group.state == "rebalancing"
    assert group.broker_state == "PREPARING_REBALANCE"
    assert _members_gauge("leave-g") == 1

    _stable_pair(model, build, "batch-g", clock)
    request = {"group_id": "batch-g", "members": [
        {"member_id": m, "group_instance_id": None} for m in ("m-1", "m-2")]}
    response = {"error_code": 0, "members": [
        {"member_id": m, "group_instance_id": None, "error_code": 0} for m in ("m-1", "m-2")]}
    model.observe(build.exchange(13, 5, request, response, at=clock.tick()))
    batch = model.get("batch-g")
    assert (batch.state, batch.broker_state, batch.summary()["member_count"]) == (
        "empty", "EMPTY", 0)
    assert _members_gauge("batch-g") == 0


def test_sessions_expire_lazily(build: SimpleNamespace) -> None:
    mono = Monotonic()
    model = GroupStateModel(monotonic=mono)
    model.listeners.append(GroupMetrics())
    clock = build.Clock()
    _stable_pair(model, build, "exp-g", clock)
    # m-1 keeps heartbeating; m-2 went silent (killed, no LeaveGroup).
    for _ in range(7):
        model.observe(build.heartbeat("exp-g", "m-1", 1, at=clock.tick(1.0)))
    group = model.get("exp-g")
    assert set(group.members) == {"m-1"}, "expired on an observed exchange"
    assert group.state == "rebalancing"
    # Then m-1 goes silent too: nothing more is observed, the read expires it.
    mono.t += 5.0
    assert len(model.get("exp-g").members) == 1
    mono.t += 2.0
    group = model.get("exp-g")
    assert (group.state, group.summary()["member_count"]) == ("empty", 0)
    assert _members_gauge("exp-g") == 0


def test_waiting_in_a_rebalance_lasts_the_rebalance_timeout(build: SimpleNamespace) -> None:
    mono = Monotonic()
    model = GroupStateModel(monotonic=mono)
    clock = build.Clock()
    _stable_pair(model, build, "rb-g", clock)
    model.observe(build.heartbeat("rb-g", "m-1", 1, error=27, at=clock.tick()))
    model.observe(build.heartbeat("rb-g", "m-2", 1, error=27, at=clock.tick()))
    group = model.get("rb-g")
    assert group.state == "rebalancing"
    group.members["m-1"].rebalance_timeout_s = 30.0  # a JoinGroup held up to 30 s
    mono.t += 10.0
    assert set(model.get("rb-g").members) == {"m-1"}


def test_unanswered_exchanges_do_not_bring_members_back(build: SimpleNamespace) -> None:
    model = GroupStateModel()
    clock = build.Clock()
    _stable_pair(model, build, "late-g", clock)
    # Both leave; a rejoin of m-1 was still in flight and ended when its connection closed.
    model.observe(build.leave("late-g", "m-2", at=clock.tick(), connection=2))
    late = build.join("late-g", "m-1", 2, "m-1", request_member="m-1", at=clock.tick())
    model.observe(build.leave("late-g", "m-1", at=clock.tick()))
    late.response_body, late.outcome = None, "closed"
    model.observe(late)
    group = model.get("late-g")
    assert (group.state, len(group.members)) == ("empty", 0)


def test_unanswered_leave_counts_once_its_connection_closes(build: SimpleNamespace) -> None:
    model = GroupStateModel()
    assert isinstance(model, ConnectionObserver) and not isinstance(EventLog(), ConnectionObserver)
    clock = build.Clock()
    _stable_pair(model, build, "close-g", clock)
    lost = build.leave("close-g", "m-2", at=clock.tick(), connection=2)
    lost.response_body, lost.outcome, lost.upstream_latency_s = None, "closed", 0.001
    model.observe(lost)
    group = model.get("close-g")
    assert "m-2" in group.members  # the broker may not have answered yet
    model.connection_closed(1)  # m-1's connection: m-1 sent no LeaveGroup, it stays
    model.connection_closed(2)
    assert set(model.get("close-g").members) == {"m-1"}
    # A leave dropped before it was forwarded never reached the broker: the member stays.
    dropped = build.leave("close-g", "m-1", at=clock.tick())
    dropped.response_body, dropped.outcome, dropped.upstream_latency_s = None, "dropped", None
    dropped.decision = Decision(action=ActionKind.DROP_REQUEST, rule_id="r1")
    model.observe(dropped)
    model.connection_closed(1)
    assert set(model.get("close-g").members) == {"m-1"}


def test_kip848_unanswered_leave(build: SimpleNamespace) -> None:
    model = GroupStateModel()

    def hb(member: str, epoch: int, answered: bool = True) -> None:
        request = {"group_id": "k848", "member_id": member, "member_epoch": epoch,
                   "subscribed_topic_names": ["a"], "topic_partitions": []}
        response = {"error_code": 0, "member_id": member, "member_epoch": max(epoch, 0) + 1,
                    "heartbeat_interval_ms": 1000, "assignment": None}
        ex = build.exchange(68, 0, request, response if answered else None, connection=5,
                            outcome="ok" if answered else "closed")
        ex.upstream_latency_s = 0.001  # forwarded, whether answered or not
        model.observe(ex)

    hb("a", 0)
    hb("a", -1, answered=False)
    assert set(model.get("k848").members) == {"a"}
    model.connection_closed(5)
    assert (model.get("k848").state, len(model.get("k848").members)) == ("empty", 0)


def test_the_last_member_reported_gone_empties_the_group(build: SimpleNamespace) -> None:
    model = GroupStateModel()
    clock = build.Clock()
    _stable_pair(model, build, "gone-g", clock)
    model.observe(build.heartbeat("gone-g", "m-2", 1, error=25, at=clock.tick()))
    assert model.get("gone-g").state == "rebalancing"  # the broker rebalances m-1
    model.observe(build.heartbeat("gone-g", "m-1", 1, error=25, at=clock.tick()))
    assert (model.get("gone-g").state, len(model.get("gone-g").members)) == ("empty", 0)
    model.observe(build.heartbeat("gone-g", "m-9", 1, error=25, at=clock.tick()))
    assert model.get("gone-g").state == "empty"  # a stranger's answer changes nothing
