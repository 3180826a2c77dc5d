"""The typed fault builders against a real admin API (the whole control plane, served by
uvicorn: tests/support/live_admin.py): every action of the rule model has a builder, a built
rule is stored as the JSON a user would write, and a bad rule fails before it is sent,
naming the field exactly as the proxy names it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from kafka_chaos_proxy.faults.actions import ACTIONS
from kafka_chaos_proxy.faults.model import FaultRule
from kafka_chaos_proxy.proxy.api import ChaosProxy, Fault, FaultBuilder, RuleRejected
from tests.support.live_admin import LiveAdmin


@pytest.fixture(scope="module")
def live() -> Iterator[LiveAdmin]:
    admin = LiveAdmin()
    try:
        yield admin
    finally:
        admin.close()


@pytest.fixture
def chaos(live: LiveAdmin) -> Iterator[ChaosProxy]:
    with ChaosProxy.attach(live.url) as chaos:
        chaos.clear()
        yield chaos
        chaos.clear()


def test_every_action_of_the_rule_model_has_a_builder_method() -> None:
    missing = [kind for kind in ACTIONS if not callable(getattr(FaultBuilder, kind, None))]
    assert missing == []


# (builder call, the action the proxy stores: the fields that call sets)
BUILDS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("error", {"error": "NOT_COORDINATOR"}, {"type": "error", "error": "NOT_COORDINATOR"}),
    ("error", {"error": 25, "broker_consistent": True},
     {"type": "error", "error": "UNKNOWN_MEMBER_ID", "broker_consistent": True}),
    ("error_after_forward", {"error": "REBALANCE_IN_PROGRESS"},
     {"type": "error_after_forward", "error": "REBALANCE_IN_PROGRESS"}),
    ("delay", {"fixed_ms": 200, "jitter_ms": 50, "side": "response"},
     {"type": "delay", "fixed_ms": 200, "jitter_ms": 50, "side": "response"}),
    ("drop_request", {"close_after_ms": 5000}, {"type": "drop_request", "close_after_ms": 5000}),
    ("drop_response", {}, {"type": "drop_response"}),
    ("close", {"when": "after", "mode": "reset"},
     {"type": "close", "when": "after", "mode": "reset"}),
    ("throttle", {"bytes_per_s": 1024}, {"type": "throttle", "bytes_per_s": 1024}),
    ("hold", {"timeout_ms": 3000, "until": {"api": "JoinGroup", "phase": "request"},
              "on_timeout": "error", "error": "REBALANCE_IN_PROGRESS"},
     {"type": "hold", "timeout_ms": 3000, "until": {"api": "JoinGroup", "phase": "request"},
      "on_timeout": "error", "error": "REBALANCE_IN_PROGRESS"}),
]


@pytest.mark.parametrize(("method", "args", "stored"), BUILDS,
                         ids=[f"{m}-{i}" for i, (m, _, _) in enumerate(BUILDS)])
def test_each_builder_installs_its_action(chaos: ChaosProxy, method: str, args: dict[str, Any],
                                          stored: dict[str, Any]) -> None:
    api = "Heartbeat" if method == "error" and args.get("broker_consistent") else "SyncGroup"
    fault = getattr(chaos.fault(api=api, group="orders"), method)(**args)
    assert isinstance(fault, Fault)
    rule = chaos.admin.rule(fault.id)
    assert {k: _set(rule["action"].get(k)) for k in stored} == _set(stored)
    assert rule["match"]["apis"] == [api] and rule["match"]["group_id"] == "orders"


def _set(value: Any) -> Any:
    """What is set: null fields (the stored rule lists every field) left out."""
    if isinstance(value, dict):
        return {k: _set(v) for k, v in value.items() if v is not None}
    return value


def test_match_keywords_and_dosage_become_the_rule_models_fields(chaos: ChaosProxy) -> None:
    fault = chaos.fault(
        api=["SyncGroup", 12], group="g", member="m-1", instance="i-1", client_id="py-*",
        generation=3, broker=1, id="mine", description="why", chain=True,
        when={"after": {"api": "JoinGroup", "phase": "request"}},
    ).error("NOT_COORDINATOR", times=2, skip_first=1, probability=0.5)
    rule = chaos.admin.rule(fault.id)
    assert fault.id == "mine" and rule["description"] == "why" and rule["chain"] is True
    assert {k: rule["match"][k] for k in ("apis", "group_id", "member_id", "group_instance_id",
                                          "client_id", "generation_id", "broker")} == {
        "apis": ["SyncGroup", "Heartbeat"], "group_id": "g", "member_id": "m-1",
        "group_instance_id": "i-1", "client_id": "py-*", "generation_id": 3, "broker": 1}
    assert {k: rule["dosage"][k] for k in ("max_injections", "skip_first", "probability")} == {
        "max_injections": 2, "skip_first": 1, "probability": 0.5}
    assert rule["when"]["after"]["api"] == "JoinGroup"


def test_a_bad_rule_fails_before_it_is_sent_naming_the_field() -> None:
    sent: list[dict[str, Any]] = []
    builder = FaultBuilder(sent.append, api="SyncGroup", group="orders")
    with pytest.raises(RuleRejected) as info:
        builder.error("NOT_AN_ERROR", times=1)
    assert sent == []
    assert info.value.field == "action.error"
    assert info.value.status is None  # checked here, not by a proxy
    assert "unknown error 'NOT_AN_ERROR'" in str(info.value)


# Rules with one mistake each: what the builders cannot express is written as JSON.
BAD_RULES: list[dict[str, Any]] = [
    {"match": {"apis": ["SyncGroup"]}, "action": {"type": "error", "error": "NOT_AN_ERROR"}},
    {"match": {"apis": ["SyncGrup"]}, "action": {"type": "error", "error": 16}},
    {"match": {"apis": ["Heartbeat"]}, "action": {"type": "delay"}},
    {"match": {"apis": ["OffsetCommit"]}, "action": {"type": "hold"}},
    {"match": {"apis": ["Heartbeat"]}, "action": {"type": "drop_request"},
     "dosage": {"probability": 2.0}},
    {"match": {"apis": ["Heartbeat"], "group": "g"}, "action": {"type": "drop_request"}},
    {"match": {"apis": ["Heartbeat"]}, "action": {"type": "eror"}},
    {"action": {"type": "close"}},
]


@pytest.mark.parametrize("rule", BAD_RULES, ids=[str(i) for i in range(len(BAD_RULES))])
def test_the_local_check_and_the_proxy_word_a_mistake_alike(chaos: ChaosProxy,
                                                             rule: dict[str, Any]) -> None:
    with pytest.raises(RuleRejected) as local:
        chaos.add_rule(rule)  # checked here: never sent
    with pytest.raises(RuleRejected) as remote:
        chaos.admin.add_rule(rule)  # sent as it is: the proxy's 422
    assert remote.value.status == 422
    assert local.value.problems == remote.value.problems
    assert local.value.field == remote.value.field
    assert chaos.rules() == []


def test_the_proxy_refuses_what_only_it_can_check(chaos: ChaosProxy) -> None:
    chaos.fault(api="Heartbeat", id="once").drop_request()
    with pytest.raises(RuleRejected) as duplicate:
        chaos.fault(api="Heartbeat", id="once").drop_response()
    assert duplicate.value.status == 409 and "once" in str(duplicate.value)
    with pytest.raises(RuleRejected) as trigger:
        chaos.fault(api="SyncGroup", when={"after": {"rule": "no-such-rule"}}).error(16)
    assert trigger.value.status == 422 and trigger.value.field == "when.after.rule"


def test_a_fault_used_as_a_context_manager_is_removed_on_exit(chaos: ChaosProxy) -> None:
    with chaos.fault(api="SyncGroup", group="orders").error("NOT_COORDINATOR", times=1) as f:
        assert [r["id"] for r in chaos.rules()] == [f.id]
    assert chaos.rules() == []
    f.remove()  # gone already: nothing happens


def test_the_fault_handle_reads_the_rules_state(chaos: ChaosProxy) -> None:
    fault = chaos.fault(api="OffsetCommit", group="g").hold(timeout_ms=1000)
    assert (fault.injections(), fault.matched(), fault.release()) == (0, 0, 0)
    fault.disable()
    assert fault.state()["enabled"] is False
    fault.enable()
    assert fault.state()["enabled"] is True


def test_add_rule_takes_the_json_or_the_model(chaos: ChaosProxy) -> None:
    from_json = chaos.add_rule({"id": "j", "match": {"apis": ["Heartbeat"]},
                                "action": {"type": "error", "error": "NOT_COORDINATOR"}})
    model = FaultRule.model_validate({"id": "m", "match": {"apis": ["JoinGroup"]},
                                      "action": {"type": "delay", "fixed_ms": 10}})
    from_model = chaos.add_rule(model)
    assert [r["id"] for r in chaos.rules()] == [from_json.id, from_model.id] == ["j", "m"]
    assert chaos.clear() == 2 and chaos.rules() == []


def test_unknown_keywords_are_type_errors(chaos: ChaosProxy) -> None:
    with pytest.raises(TypeError, match="grup"):
        chaos.fault(api="SyncGroup", grup="orders")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="max"):
        chaos.fault(api="SyncGroup").error(16, max=1)  # type: ignore[call-arg]
