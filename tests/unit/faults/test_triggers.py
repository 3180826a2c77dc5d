"""Triggers as users write them (`when`, event patterns, group conditions), as the engine keeps
them (armed, disarmed, counted) and the checks on rule sets they need."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from kafka_chaos_proxy.faults.engine import FaultEngine, TriggerError
from kafka_chaos_proxy.faults.model import FaultRule, describe_errors
from kafka_chaos_proxy.faults.triggers import EventPattern, compile_pattern, request_event

HB = {"apis": ["Heartbeat"]}
ERR = {"type": "error", "error": "NOT_COORDINATOR"}


class View:
    connection_id = 3
    client_host = "127.0.0.1"
    broker_node = 1
    api_version = 4
    correlation_id = 9

    def __init__(self, api_key: int = 12, client_id: str = "app-m0",
                 body: dict[str, Any] | None = None) -> None:
        self.api_key = api_key
        self.client_id = client_id
        self._body = body if body is not None else {
            "group_id": "g", "generation_id": 3, "member_id": "m0"}

    def body(self) -> dict[str, Any] | None:
        return self._body


def problems(rule: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as info:
        FaultRule.model_validate(rule)
    return describe_errors(info.value)


def test_a_hold_needs_a_timeout_and_says_so() -> None:
    (line,) = problems({"match": HB, "action": {"type": "hold"}})
    assert line.startswith("action.timeout_ms: a hold needs timeout_ms")


def test_on_timeout_error_needs_its_error_and_only_then() -> None:
    assert "on_timeout: error needs error" in problems(
        {"match": HB, "action": {"type": "hold", "timeout_ms": 10, "on_timeout": "error"}})[0]
    assert "only used with on_timeout: error" in problems(
        {"match": HB, "action": {"type": "hold", "timeout_ms": 10, "error": "NOT_COORDINATOR"}})[0]


@pytest.mark.parametrize(("when", "says"), [
    ({}, "when needs after, until or group"),
    ({"count": 2, "group": {"join_pending": True}}, "count counts the events of after"),
    ({"after": {}}, "an event pattern needs at least one field"),
    ({"after": {"rule": "x", "phase": "request"}}, "phase must be injected"),
    ({"after": {"api": "Heartbeat", "phase": "request", "error": "NONE"}}, "phase request has"),
    ({"after": {"api": "SyncGrup"}}, "SyncGroup"),
    ({"after": {"rule": "not an id"}}, "is not a rule id"),
    ({"group": {}}, "a group condition needs one of"),
    ({"group": {"rebalance": 0}}, "rebalance must be >= 1"),
])
def test_trigger_mistakes_name_their_field(when: dict[str, Any], says: str) -> None:
    lines = problems({"match": HB, "action": ERR, "when": when})
    assert any(line.startswith("when") and says in line for line in lines), lines


def test_a_trigger_naming_an_unknown_rule_is_refused() -> None:
    engine = FaultEngine()
    with pytest.raises(TriggerError) as info:
        engine.add({"id": "b", "match": HB, "action": ERR, "when": {"after": {"rule": "a"}}})
    assert info.value.field == "when.after.rule" and "'a', which does not exist" in str(info.value)
    with pytest.raises(TriggerError) as info:
        engine.add({"id": "h", "match": HB, "action": {
            "type": "hold", "timeout_ms": 10, "until": {"rule": "zz"}}})
    assert info.value.field == "action.until.rule"
    assert engine.list() == []


def test_rules_arming_each_other_in_a_cycle_are_refused_all_or_nothing() -> None:
    engine = FaultEngine()
    engine.add({"id": "a", "match": HB, "action": ERR})
    with pytest.raises(TriggerError, match=r"cycle \(b -> c -> b\)"):
        engine.load([
            {"id": "b", "match": HB, "action": ERR, "when": {"after": {"rule": "c"}}},
            {"id": "c", "match": HB, "action": ERR, "when": {"after": {"rule": "b"}}},
        ])
    with pytest.raises(TriggerError, match="cycle"):
        engine.patch("a", {"when": {"after": {"rule": "a"}}})
    assert [r.id for r in engine.list()] == ["a"] and engine.get("a").when is None


def test_a_rule_arms_after_count_events_and_disarms_for_good() -> None:
    engine = FaultEngine()
    engine.add({"id": "r", "match": HB, "action": ERR, "when": {
        "after": {"api": "JoinGroup", "phase": "request"}, "count": 2,
        "until": {"api": "SyncGroup", "error": "NONE"}}})
    join = {"phase": "request", "api": "JoinGroup"}
    assert not engine.on_request(View()).is_fault
    engine.notify(join)
    engine.notify({**join, "phase": "response"})  # another phase does not count
    assert not engine.on_request(View()).is_fault
    engine.notify(join)
    assert engine.on_request(View()).rule_id == "r"
    engine.notify({"phase": "response", "api": "SyncGroup", "error": "UNKNOWN_MEMBER_ID"})
    assert engine.on_request(View()).is_fault  # an error is not NONE
    engine.notify({"phase": "response", "api": "SyncGroup", "error": None})
    assert not engine.on_request(View()).is_fault
    engine.notify(join)
    engine.notify(join)
    assert not engine.on_request(View()).is_fault  # disarmed for good...
    engine.set_enabled("r", False)
    engine.set_enabled("r", True)
    assert engine.rule_json("r")["trigger"] == {"armed": False, "disarmed": False,
                                                "trigger_events": 0}  # ...until re-enabled


def test_an_injection_is_an_event_with_the_requests_facts() -> None:
    engine = FaultEngine()
    seen: list[dict[str, Any]] = []
    engine.event_sinks.append(lambda ev: seen.append(dict(ev)))
    engine.load([
        {"id": "first", "match": HB, "action": ERR, "dosage": {"max_injections": 1}},
        {"id": "second", "match": HB, "action": {"type": "drop_request"},
         "when": {"after": {"rule": "first", "client_id": "*-m0"}}},
    ])
    decision = engine.on_request(View())
    assert decision.rule_id == "first" and not engine.on_request(View()).is_fault
    assert decision.on_applied is not None
    decision.on_applied()  # the data plane confirms the injection
    assert seen == [{"phase": "injected", "rule": "first", "api": "Heartbeat",
                     "connection": 3, "correlation_id": 9, "broker": 1, "client_id": "app-m0",
                     "group": "g", "member_id": "m0", "instance_id": None, "generation": 3}]
    assert engine.on_request(View()).rule_id == "second"


def test_chained_rules_become_one_sequence_in_rule_order() -> None:
    engine = FaultEngine(seed=1)
    engine.load([
        {"id": "slow", "chain": True, "match": HB,
         "action": {"type": "delay", "fixed_ms": 5}},
        {"id": "skipped", "match": {"apis": ["SyncGroup"]}, "action": ERR},
        {"id": "fail", "match": HB, "action": ERR},
        {"id": "never", "match": HB, "action": {"type": "drop_request"}},
    ])
    decision = engine.on_request(View())
    assert decision.action == "sequence" and decision.rule_id == "slow"
    assert [d.rule_id for d in decision.plan] == ["slow", "fail"]  # stops at a non-chain rule


class Live:
    def __init__(self, pending: bool = False, generation: int | None = None) -> None:
        self.pending, self.generation = pending, generation

    def join_pending(self, group_id: str) -> bool:
        return self.pending

    def unassigned(self, group_id: str, client_id: Any) -> bool:
        return client_id.fullmatch("app-m1") is not None

    def rebalance_number(self, group_id: str) -> int:
        return 2

    def round_generation(self, group_id: str) -> int | None:
        return self.generation


@pytest.mark.parametrize(("condition", "live", "api_key", "acts"), [
    ({"join_pending": True}, Live(pending=True), 12, True),
    ({"join_pending": True}, Live(pending=False), 12, False),
    ({"join_pending": False}, Live(pending=False), 12, True),
    ({"unassigned": "*-m1"}, Live(), 12, True),
    ({"unassigned": "*-m2"}, Live(), 12, False),
    ({"rebalance": 2}, Live(), 12, True),
    ({"rebalance": 1}, Live(), 12, False),
    ({"creates_generation": 4}, Live(generation=4), 11, True),
    ({"creates_generation": 4}, Live(generation=4), 12, False),  # only JoinGroup requests
    ({"creates_generation": 4}, Live(generation=3), 11, False),
])
def test_group_conditions_ask_the_live_state(condition: dict[str, Any], live: Live,
                                             api_key: int, acts: bool) -> None:
    engine = FaultEngine()
    engine.group_view = live
    engine.add({"id": "c", "match": {"apis": ["Heartbeat", "JoinGroup"]}, "action": ERR,
                "when": {"group": condition}})
    assert engine.on_request(View(api_key=api_key)).is_fault is acts


def test_a_group_condition_without_a_group_view_never_acts() -> None:
    engine = FaultEngine()
    engine.add({"id": "c", "match": HB, "action": ERR, "when": {"group": {"rebalance": 1}}})
    assert not engine.on_request(View()).is_fault


def test_patterns_match_the_event_logs_keys() -> None:
    def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
        return compile_pattern(EventPattern.model_validate(pattern)).matches(event)

    event = request_event(View(), "request")
    assert matches({"api": 12, "phase": "request", "client_id": "app-*", "group_id": "g",
                    "member_id": "m0", "generation_id": 3, "broker": 1}, event)
    assert not matches({"api": "Heartbeat"}, event)  # phase response by default
    assert not matches({"api": "Heartbeat", "phase": "request", "generation_id": 4}, event)
    response = {"phase": "response", "api": "SyncGroup", "error": None, "outcome": "ok",
                "fault": None}
    assert matches({"api": "SyncGroup", "error": "NONE", "injected": False}, response)
    assert matches({"rule": "r2", "phase": "response"},
                   {"phase": "response", "rule": "r1", "rules": ["r1", "r2"]})
