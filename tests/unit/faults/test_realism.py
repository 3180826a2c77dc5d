"""Warnings for rules that inject errors no broker sends, and the event log's synthetic flag
(faults.realism)."""

from __future__ import annotations

from typing import Any

import pytest

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.faults.model import FaultRule
from kafka_chaos_proxy.faults.realism import is_synthetic, rule_warnings


def rule(match: dict[str, Any], action: dict[str, Any]) -> FaultRule:
    return FaultRule.model_validate({"match": match, "action": action})


def error(name: str, kind: str = "error") -> dict[str, Any]:
    return {"type": kind, "error": name}


def test_loading_error_on_heartbeat_is_flagged() -> None:
    warnings = rule_warnings(FaultRule.model_validate(
        {"match": {"apis": ["Heartbeat"]},
         "action": {"type": "error", "error": "COORDINATOR_LOAD_IN_PROGRESS"}}))
    assert len(warnings) == 1
    assert warnings[0].startswith("Heartbeat: a real broker never answers Heartbeat with "
                                  "COORDINATOR_LOAD_IN_PROGRESS")
    assert "robustness tests, not races" in warnings[0]


def test_error_after_forward_is_judged_too() -> None:
    warnings = rule_warnings(rule({"apis": ["FindCoordinator"]},
                                  error("NOT_COORDINATOR", "error_after_forward")))
    assert len(warnings) == 1 and warnings[0].startswith("FindCoordinator: ")


@pytest.mark.parametrize(("api", "name"), [
    ("Heartbeat", "REBALANCE_IN_PROGRESS"),
    ("SyncGroup", "NOT_COORDINATOR"),
    ("OffsetCommit", "REBALANCE_IN_PROGRESS"),
    ("JoinGroup", "MEMBER_ID_REQUIRED"),
    ("ConsumerGroupHeartbeat", "FENCED_MEMBER_EPOCH"),
])
def test_realistic_errors_get_no_warning(api: str, name: str) -> None:
    assert rule_warnings(rule({"apis": [api]}, error(name))) == []


def test_one_warning_per_api_where_the_broker_never_sends_it() -> None:
    warnings = rule_warnings(rule({"apis": ["Heartbeat", "JoinGroup", "FindCoordinator"]},
                                  error("COORDINATOR_LOAD_IN_PROGRESS")))
    assert [w.split(":")[0] for w in warnings] == ["Heartbeat", "FindCoordinator"]


def test_versions_of_the_rule_are_taken_into_account() -> None:
    old = rule_warnings(rule({"apis": ["JoinGroup"], "versions": [2, 3]},
                             error("MEMBER_ID_REQUIRED")))
    assert len(old) == 1 and "JoinGroup v2-3" in old[0] and "v4+" in old[0]
    assert rule_warnings(rule({"apis": ["JoinGroup"], "versions": [3, 4]},
                              error("MEMBER_ID_REQUIRED"))) == []


def test_versions_an_api_does_not_have_are_skipped() -> None:
    # Heartbeat stops at v4: v7 lands on OffsetCommit only, where the error is realistic.
    warnings = rule_warnings(rule({"apis": ["Heartbeat", "OffsetCommit"], "versions": [7]},
                                  error("FENCED_INSTANCE_ID")))
    assert warnings == []


def test_a_rule_without_apis_is_flagged_only_for_errors_no_group_api_gets() -> None:
    assert rule_warnings(rule({"group_id": "orders"}, error("REBALANCE_IN_PROGRESS"))) == []
    assert rule_warnings(rule({"any": True}, error("COORDINATOR_LOAD_IN_PROGRESS"))) == []
    warnings = rule_warnings(rule({"group_id": "orders"}, error("NOT_LEADER_OR_FOLLOWER")))
    assert len(warnings) == 1 and "no group-coordination API" in warnings[0]


def test_other_actions_get_no_warning() -> None:
    assert rule_warnings(rule({"apis": ["Heartbeat"]},
                              {"type": "drop_response"})) == []
    assert rule_warnings(rule({"apis": ["Heartbeat"]},
                              {"type": "delay", "fixed_ms": 10})) == []


def test_is_synthetic() -> None:
    load = codec.error_code("COORDINATOR_LOAD_IN_PROGRESS")
    assert is_synthetic("Heartbeat", 4, load)
    assert not is_synthetic("JoinGroup", 4, load)
    assert not is_synthetic("Heartbeat", 4, 0)
    assert is_synthetic("JoinGroup", 3, codec.error_code("MEMBER_ID_REQUIRED"))
    assert not is_synthetic("JoinGroup", 4, codec.error_code("MEMBER_ID_REQUIRED"))
    assert not is_synthetic("Produce", 9, load)  # not judged
    assert not is_synthetic("Heartbeat", 4, 32000)  # a code newer than the specs
