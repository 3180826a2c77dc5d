"""The scenario format's topology, member-control, continuous-load and per-member keys:
what they accept, and one-line errors that name the field."""

from __future__ import annotations

from typing import Any

import pytest

from kafka_chaos_proxy.lab.scenario import ScenarioError, parse_scenario


def doc(steps: list[dict[str, Any]], brokers: int = 3, **setup: Any) -> dict[str, Any]:
    return {"name": "t", "version": 1, "description": "t",
            "setup": {"brokers": brokers, **setup}, "steps": steps}


def test_brokers_default_to_one_and_three_is_accepted() -> None:
    assert parse_scenario({"name": "t", "version": 1, "description": "t"}).setup.brokers == 1
    s = parse_scenario(doc([{"at": 5, "move_coordinator": True},
                            {"at": 10, "stop_broker": {"node": "coordinator", "mode": "kill"}},
                            {"at": 20, "restart_broker": {"node": "stopped"}}]))
    assert s.setup.brokers == 3 and s.changes_topology
    assert s.steps[0].topology == ["move_coordinator"]
    assert s.steps[1].stop_broker is not None and s.steps[1].stop_broker.mode == "kill"
    assert s.steps[2].restart_broker is not None and s.steps[2].restart_broker.node == "stopped"
    stop = parse_scenario(doc([{"at": 1, "stop_broker": {"node": 2}}])).steps[0].stop_broker
    assert stop is not None and (stop.node, stop.mode) == (2, "graceful")


@pytest.mark.parametrize(("steps", "brokers", "message"), [
    ([{"at": 1, "move_coordinator": True}], 1, "steps[0].move_coordinator: needs setup.brokers: 3"),
    ([{"at": 1, "stop_broker": {"node": "coordinator"}}], 1,
     "steps[0].stop_broker: needs setup.brokers: 3"),
    ([{"at": 1, "stop_broker": {"node": 1}}, {"at": 2, "restart_broker": {"node": 1}}], 1,
     "steps[0].stop_broker: needs setup.brokers: 3"),
    ([{"at": 1, "stop_broker": {"node": 4}}], 3, "steps[0].stop_broker.node: 4 is not a broker"),
    ([{"at": 1, "stop_broker": {"node": "leader"}}], 3, "stop_broker.node"),
    ([{"at": 1, "stop_broker": {"node": 1, "mode": "nuke"}}], 3, "stop_broker.mode"),
    ([{"at": 1, "restart_broker": {"node": "stopped"}}], 3, "no step has a stop_broker"),
    ([{"at": 1, "move_coordinator": False}], 3, "a step must add, remove"),
])
def test_topology_mistakes_name_the_field(steps: list[dict[str, Any]], brokers: int,
                                          message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(doc(steps, brokers), "x.yaml")
    text = str(info.value)
    assert text.startswith("x.yaml: ") and message in text and "\n" not in text


def test_brokers_must_be_one_or_three() -> None:
    with pytest.raises(ScenarioError, match=r"setup\.brokers: Input should be 1 or 3"):
        parse_scenario(doc([], brokers=2))


def test_member_control_steps() -> None:
    s = parse_scenario(doc([
        {"at": 1, "kill_members": [1]},
        {"at": 2, "pause_members": {"members": [0], "ms": 7000}},
        {"at": 3, "resume_members": [0]},
    ], brokers=1, members={"count": 2}))
    assert s.steps[0].kill_members == [1]
    assert s.steps[1].pause_members is not None and s.steps[1].pause_members.ms == 7000
    assert s.steps[2].resume_members == [0]
    assert all(step.member_control for step in s.steps)


@pytest.mark.parametrize(("step", "message"), [
    ({"at": 1, "kill_members": [2]}, "steps[0]: kill_members index 2 is not a member"),
    ({"at": 1, "pause_members": {"members": [5], "ms": 10}},
     "pause_members.members index 5 is not a member"),
    ({"at": 1, "pause_members": {"members": [0], "ms": 0}}, "pause_members.ms"),
    ({"at": 1, "pause_members": {"members": [0], "ms": 600_001}}, "pause_members.ms"),
    ({"at": 1, "pause_members": {"members": [], "ms": 10}}, "pause_members.members"),
    ({"at": 1, "resume_members": [9]}, "resume_members index 9"),
])
def test_member_control_mistakes_name_the_field(step: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(doc([step], brokers=1, members={"count": 2}), "x.yaml")
    assert message in str(info.value)


def test_members_started_by_steps_can_be_controlled() -> None:
    s = parse_scenario(doc([{"at": 1, "start_members": 1}, {"at": 5, "kill_members": [1]}],
                           brokers=1))
    assert s.total_members == 2


def test_produce_rate_is_bounded_and_counted() -> None:
    s = parse_scenario(doc([{"on": {"harness_event": "assigned"},
                             "produce_rate": {"records_per_s": 50, "duration_s": 20}}],
                           brokers=1, records=10))
    rate = s.steps[0].produce_rate
    assert rate is not None and rate.records == 1000
    assert s.total_records == 10 + 1000


@pytest.mark.parametrize(("rate", "message"), [
    ({"records_per_s": 10_001, "duration_s": 1}, "produce_rate.records_per_s"),
    ({"records_per_s": 0, "duration_s": 1}, "produce_rate.records_per_s"),
    ({"records_per_s": 10, "duration_s": 601}, "produce_rate.duration_s"),
    ({"records_per_s": 10_000, "duration_s": 600}, "at most 1000000 per step"),
    ({"records_per_s": 0.5, "duration_s": 1}, "less than one record"),
    ({"records_per_s": 10}, "produce_rate.duration_s"),
])
def test_produce_rate_mistakes_name_the_field(rate: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(doc([{"at": 1, "produce_rate": rate}], brokers=1), "x.yaml")
    assert message in str(info.value)


def test_a_timed_produce_rate_must_end_within_the_run() -> None:
    with pytest.raises(ScenarioError, match=r"steps\[0\].produce_rate: produces until 70 s"):
        parse_scenario({**doc([{"at": 10, "produce_rate": {"records_per_s": 5,
                                                            "duration_s": 60}}], brokers=1),
                        "outcome": {"max_duration_s": 60}})


def test_member_overrides_merge_with_the_group_settings() -> None:
    s = parse_scenario(doc([], brokers=1, members={
        "count": 3, "membership": "static", "commit": "auto",
        "overrides": {1: {"session_timeout_ms": 30000, "heartbeat_interval_ms": 3000,
                          "commit": "manual", "sarama_return_errors": True},
                      2: {"group_instance_id": None}}}))
    m = s.setup.members
    zero, one, two = m.settings(0), m.settings(1), m.settings(2)
    assert (zero.session_timeout_ms, zero.commit, zero.static) == (6000, "auto", True)
    assert (one.session_timeout_ms, one.heartbeat_interval_ms, one.commit) == \
        (30000, 3000, "manual")
    assert one.static and one.group_instance_id is None and one.sarama_return_errors
    assert not zero.sarama_return_errors  # sarama's own default
    assert not two.static  # explicit null: this member is dynamic in a static group
    dyn = parse_scenario(doc([], brokers=1, members={
        "count": 2, "overrides": {0: {"group_instance_id": "shared"},
                                  1: {"group_instance_id": "shared"}}})).setup.members
    assert dyn.settings(0).group_instance_id == dyn.settings(1).group_instance_id == "shared"
    assert dyn.settings(0).static


@pytest.mark.parametrize(("members", "message"), [
    ({"count": 1, "overrides": {1: {"commit": "manual"}}},
     "setup.members.overrides: 1 is not a member"),
    ({"count": 1, "overrides": {0: {"heartbeat_interval_ms": 9000}}},
     "overrides.0: heartbeat_interval_ms (9000) must be below session_timeout_ms (6000)"),
    ({"count": 1, "overrides": {0: {"max_poll_records": 5}}}, "max_poll_records"),
    ({"count": 1, "overrides": {0: {"group_instance_id": "no spaces"}}}, "group_instance_id"),
    ({"count": 1, "overrides": {0: {"commit": "sometimes"}}}, "commit"),
])
def test_override_mistakes_name_the_field(members: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(doc([], brokers=1, members=members), "x.yaml")
    assert message in str(info.value) and "\n" not in str(info.value)
