"""The `error` action's `broker_consistent`: allowed with UNKNOWN_MEMBER_ID only, and each
refusal says why the broker cannot agree and what to do instead (the admin API returns these
messages verbatim as 422s); the Decision carries it in `plan`, the plain case is unchanged."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from pydantic import ValidationError

from kafka_chaos_proxy.faults.actions import ACTIONS, DecideContext
from kafka_chaos_proxy.faults.actions.error import ErrorAction, ErrorPlan
from kafka_chaos_proxy.faults.decision import ActionKind, Decision
from kafka_chaos_proxy.faults.engine import FaultEngine
from kafka_chaos_proxy.faults.model import FaultRule, describe_errors
from tests.support.fault_fakes import FakeView


def _problem(action: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        FaultRule.model_validate({"match": {"apis": ["Heartbeat"]}, "action": action})
    (line,) = describe_errors(info.value)
    return line


def _decide(action: dict[str, Any]) -> Decision:
    spec = ACTIONS["error"]
    ctx = DecideContext(rule_id="r1", rng=random.Random(1), on_applied=lambda: None)
    return spec.decide(spec.model.model_validate(action), ctx)


@pytest.mark.parametrize("error", ["UNKNOWN_MEMBER_ID", 25, "unknown_member_id"])
def test_unknown_member_id_by_any_spelling_may_be_broker_consistent(error: Any) -> None:
    action = ErrorAction.model_validate({"type": "error", "error": error,
                                         "broker_consistent": True})
    assert action.error == "UNKNOWN_MEMBER_ID" and action.broker_consistent is True


@pytest.mark.parametrize("error", ["FENCED_INSTANCE_ID", 82])
def test_fenced_instance_id_needs_a_real_second_member(error: Any) -> None:
    line = _problem({"type": "error", "error": error, "broker_consistent": True})
    assert line.startswith("action: broker_consistent ")
    assert "FENCED_INSTANCE_ID" in line and "same group.instance.id" in line
    assert "start one in the scenario" in line and "drop broker_consistent" in line


def test_illegal_generation_needs_a_real_rebalance() -> None:
    line = _problem({"type": "error", "error": "ILLEGAL_GENERATION", "broker_consistent": True})
    assert line.startswith("action: broker_consistent ")
    assert "real rebalance" in line and "start or stop a member in the scenario" in line


@pytest.mark.parametrize("error", ["NOT_COORDINATOR", "REBALANCE_IN_PROGRESS", 15])
def test_any_other_error_is_told_it_applies_to_unknown_member_id_only(error: Any) -> None:
    line = _problem({"type": "error", "error": error, "broker_consistent": True})
    assert line.startswith("action: broker_consistent applies to error UNKNOWN_MEMBER_ID only")
    assert "write error: UNKNOWN_MEMBER_ID or drop broker_consistent" in line


def test_false_is_allowed_with_any_error() -> None:
    action = ErrorAction.model_validate({"type": "error", "error": "ILLEGAL_GENERATION",
                                         "broker_consistent": False})
    assert action.broker_consistent is False


def test_it_is_a_strict_bool() -> None:
    line = _problem({"type": "error", "error": "UNKNOWN_MEMBER_ID", "broker_consistent": "yes"})
    assert line.startswith("action.broker_consistent: ")


def test_error_after_forward_has_no_such_field() -> None:
    line = _problem({"type": "error_after_forward", "error": "UNKNOWN_MEMBER_ID",
                     "broker_consistent": True})
    assert "unknown field 'broker_consistent'" in line and "error_after_forward" in line


def test_the_decision_carries_it_in_plan_and_the_plain_case_is_unchanged() -> None:
    consistent = _decide({"type": "error", "error": "UNKNOWN_MEMBER_ID",
                          "broker_consistent": True})
    assert consistent == Decision(ActionKind.ERROR, "r1", error_code=25,
                                  plan=ErrorPlan(broker_consistent=True))
    assert consistent.action is ActionKind.ERROR
    plain = _decide({"type": "error", "error": "UNKNOWN_MEMBER_ID"})
    assert plain == Decision(ActionKind.ERROR, "r1", error_code=25) and plain.plan is None


def test_the_engine_hands_the_plan_to_the_data_plane_and_exports_only_what_was_said() -> None:
    engine = FaultEngine(seed=1)
    engine.add({"id": "c", "match": {"apis": ["Heartbeat"]},
                "action": {"type": "error", "error": 25, "broker_consistent": True}})
    engine.add({"id": "p", "match": {"apis": ["JoinGroup"]},
                "action": {"type": "error", "error": 25}})
    assert engine.on_request(FakeView(api_key=12)).plan == ErrorPlan(broker_consistent=True)
    assert engine.on_request(FakeView(api_key=11)).plan is None
    exported = json.loads(engine.export("json"))
    rules = exported["rules"] if isinstance(exported, dict) else exported
    actions = {rule["id"]: rule["action"] for rule in rules}
    assert actions == {
        "c": {"type": "error", "error": "UNKNOWN_MEMBER_ID", "broker_consistent": True},
        "p": {"type": "error", "error": "UNKNOWN_MEMBER_ID"},
    }
