"""Rule validation: good rules normalise, bad ones say which field and what is allowed.

The admin API returns these messages verbatim as 422s, so each test pins the field path and a
piece of the advice, not just "it failed".
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from kafka_chaos_proxy.faults.actions.close import CloseAction
from kafka_chaos_proxy.faults.actions.delay import DelayAction
from kafka_chaos_proxy.faults.actions.error import ErrorAction
from kafka_chaos_proxy.faults.decision import CloseMode, CloseWhen, Side
from kafka_chaos_proxy.faults.model import FaultRule, describe_errors
from kafka_chaos_proxy.faults.names import resolve_api, resolve_error

ANY = {"any": True}  # a rule that names nothing else to match says so


def rule(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"match": ANY, "action": {"type": "drop_request"}}
    base.update(overrides)
    return base


def problems(data: dict[str, Any]) -> list[str]:
    data = {"match": ANY, **data}  # problems elsewhere than a missing match
    with pytest.raises(ValidationError) as info:
        FaultRule.model_validate(data)
    return describe_errors(info.value)


def one_problem(data: dict[str, Any]) -> str:
    found = problems(data)
    assert len(found) == 1, found
    return found[0]


# ------------------------------------------------------------------ good rules


def test_minimal_rule_gets_defaults() -> None:
    r = FaultRule.model_validate({"match": ANY, "action": {"type": "drop_request"}})
    assert r.id is None and r.enabled and r.description == ""
    assert r.match.apis is None and r.dosage.probability == 1.0
    assert r.dosage.skip_first == 0 and r.dosage.max_injections is None


def test_api_names_and_keys_are_normalised_and_deduplicated() -> None:
    r = FaultRule.model_validate(
        rule(match={"apis": ["SyncGroup", 14, "join_group", "JOIN_GROUP", "HeartbeatRequest"]})
    )
    assert r.match.apis == ["SyncGroup", "JoinGroup", "Heartbeat"]


def test_single_api_and_single_version_must_be_lists() -> None:
    assert one_problem(rule(match={"apis": "Heartbeat"})).startswith(
        'match.apis: apis must be a list of API names or keys (e.g. ["SyncGroup"])'
    )
    assert one_problem(rule(match={"versions": 3})).startswith(
        "match.versions: versions must be a list of API versions"
    )


@pytest.mark.parametrize(
    ("data", "where"),
    [(rule(enabled="yes"), "enabled"), (rule(enabled=1), "enabled"),
     (rule(dosage={"probability": True}), "dosage.probability"),
     (rule(dosage={"probability": "0.5"}), "dosage.probability"),
     (rule(dosage={"skip_first": False}), "dosage.skip_first"),
     (rule(dosage={"max_injections": "1"}), "dosage.max_injections"),
     (rule(dosage={"start_after_ms": 1.5}), "dosage.start_after_ms"),
     (rule(match={"generation_id": "3"}), "match.generation_id"),
     (rule(match={"broker": True}), "match.broker"),
     ({"match": ANY, "action": {"type": "delay", "fixed_ms": "100"}}, "action.fixed_ms"),
     ({"match": ANY, "action": {"type": "throttle", "bytes_per_s": 10.5}}, "action.bytes_per_s")],
)  # fmt: skip
def test_numbers_and_flags_are_not_coerced(data: dict[str, Any], where: str) -> None:
    """What the JSON schema calls an integer or a boolean must be one: "1", 1.5 and true are
    mistakes in a rule file, not values to guess at."""
    assert one_problem(data).startswith(f"{where}: Input should be a valid")


def test_integral_probability_is_fine() -> None:
    assert FaultRule.model_validate(rule(dosage={"probability": 0})).dosage.probability == 0.0


@pytest.mark.parametrize(
    ("given", "name"),
    [("NOT_COORDINATOR", "NOT_COORDINATOR"), ("not_coordinator", "NOT_COORDINATOR"),
     ("NotCoordinator", "NOT_COORDINATOR"), (16, "NOT_COORDINATOR"), ("16", "NOT_COORDINATOR"),
     ("rebalance-in-progress", "REBALANCE_IN_PROGRESS")],
)  # fmt: skip
def test_error_names_and_codes_are_normalised(given: object, name: str) -> None:
    r = FaultRule.model_validate({"match": ANY, "action": {"type": "error", "error": given}})
    assert isinstance(r.action, ErrorAction)
    assert r.action.error == name
    assert r.action.error_code == (16 if name == "NOT_COORDINATOR" else 27)


def test_every_action_type_parses() -> None:
    actions: list[dict[str, Any]] = [
        {"type": "error", "error": "NOT_COORDINATOR"},
        {"type": "error_after_forward", "error": "REBALANCE_IN_PROGRESS"},
        {"type": "drop_request", "close_after_ms": None},
        {"type": "drop_response", "close_after_ms": 5000},
        {"type": "delay", "side": "response", "fixed_ms": 100, "jitter_ms": 50,
         "distribution": "normal"},
        {"type": "close", "when": "after", "mode": "reset"},
        {"type": "throttle", "bytes_per_s": 10000},
    ]  # fmt: skip
    for action in actions:
        r = FaultRule.model_validate({"match": ANY, "action": action})
        dumped = r.to_json()["action"]
        assert dumped["type"] == action["type"]
        assert next(iter(dumped)) == "type"  # the discriminator leads every serialized action
    delay = FaultRule.model_validate({"match": ANY, "action": actions[4]}).action
    assert isinstance(delay, DelayAction) and delay.side is Side.RESPONSE
    close = FaultRule.model_validate({"match": ANY, "action": actions[5]}).action
    assert isinstance(close, CloseAction)
    assert close.when is CloseWhen.AFTER and close.mode is CloseMode.RESET


def test_action_must_be_an_object() -> None:
    assert one_problem({"action": "drop_response"}) == (
        'action: action must be an object, e.g. {"type": "drop_response"}'
    )


def test_rule_as_returned_by_the_api_is_accepted_back() -> None:
    r = FaultRule.model_validate(rule(id="r7"))
    echoed = {**r.to_json(), "stats": {"matched": 3, "injected": 1}}
    assert FaultRule.model_validate(echoed) == r


def test_full_match_parses() -> None:
    r = FaultRule.model_validate(
        rule(
            match={
                "apis": ["SyncGroup", "Heartbeat"],
                "versions": [3, 4],
                "client_id": "py-*",
                "client_id_regex": "^py-.*",
                "group_id": "g1",
                "member_id": "m-1",
                "group_instance_id": "i-1",
                "generation_id": 2,
                "broker": -1,
                "connection": 17,
            }
        )
    )
    assert r.match.body_fields() == [
        ("group_id", "g1"),
        ("member_id", "m-1"),
        ("group_instance_id", "i-1"),
        ("generation_id", 2),
    ]


def test_json_schema_is_generated() -> None:
    schema = FaultRule.model_json_schema()
    assert "action" in schema["required"]


# ------------------------------------------------------------------ bad rules


def test_unknown_api_suggests_close_names_and_lists_common_ones() -> None:
    msg = one_problem(rule(match={"apis": ["SyncGrup"]}))
    assert msg.startswith("match.apis: apis[0]: unknown API 'SyncGrup'")
    assert "did you mean 'SyncGroup'" in msg
    assert "JoinGroup" in msg and "Heartbeat" in msg


def test_unknown_api_key_is_rejected() -> None:
    msg = one_problem(rule(match={"apis": ["JoinGroup", 9999]}))
    assert "apis[1]: unknown API key 9999" in msg and "keys 0-" in msg


def test_empty_api_list_is_rejected() -> None:
    assert "omit it to match every API" in one_problem(rule(match={"apis": []}))


def test_unknown_error_suggests_close_names() -> None:
    msg = one_problem({"action": {"type": "error", "error": "NOT_CORDINATOR"}})
    assert msg.startswith("action.error: unknown error 'NOT_CORDINATOR'")
    assert "did you mean NOT_COORDINATOR" in msg


def test_unknown_error_code_is_rejected() -> None:
    msg = one_problem({"action": {"type": "error_after_forward", "error": 31337}})
    assert "unknown error code 31337" in msg and "codes -1.." in msg


def test_error_none_is_not_a_fault() -> None:
    for value in ("NONE", 0):
        assert "means success" in one_problem({"action": {"type": "error", "error": value}})


def test_error_action_needs_an_error() -> None:
    msg = one_problem({"action": {"type": "error"}})
    assert msg.startswith("action.error:")


def test_unknown_action_type_lists_types() -> None:
    msg = one_problem({"action": {"type": "delya"}})
    assert "did you mean 'delay'" in msg
    assert "error, error_after_forward, drop_request, drop_response, delay, close, throttle" in msg


def test_missing_action_type_lists_types() -> None:
    assert "action needs a 'type'" in one_problem({"action": {"fixed_ms": 3}})


def test_missing_action() -> None:
    assert one_problem({"match": ANY}).startswith("action:")


def test_a_rule_without_a_match_is_refused_unless_it_says_any() -> None:
    for match in ({}, None):
        data = {"action": {"type": "close"}} if match is None else {
            "match": match, "action": {"type": "close"}}
        with pytest.raises(ValidationError) as info:
            FaultRule.model_validate(data)
        (line,) = describe_errors(info.value)
        assert line.startswith("match: a rule needs a match") and "{any: true}" in line
    assert FaultRule.model_validate({"match": ANY, "action": {"type": "close"}})
    msg = one_problem({"match": {"any": True, "apis": ["SyncGroup"]}, "action": {"type": "close"}})
    assert "any: true matches every request; drop it, or drop the other fields" in msg


def test_bad_distribution_lists_allowed() -> None:
    msg = one_problem({"action": {"type": "delay", "fixed_ms": 5, "jitter_ms": 5,
                                  "distribution": "gauss"}})  # fmt: skip
    assert msg.startswith("action.distribution:")
    assert "'uniform', 'normal' or 'exponential'" in msg


def test_distribution_without_jitter_is_rejected() -> None:
    msg = one_problem({"action": {"type": "delay", "fixed_ms": 5, "distribution": "normal"}})
    assert "set jitter_ms > 0" in msg


def test_zero_delay_is_rejected() -> None:
    assert "does nothing" in one_problem({"action": {"type": "delay"}})


@pytest.mark.parametrize("field", ["fixed_ms", "jitter_ms"])
def test_negative_delay_is_rejected(field: str) -> None:
    msg = one_problem({"action": {"type": "delay", "fixed_ms": 10, field: -1}})
    assert msg == f"action.{field}: {field} must be >= 0 milliseconds, got -1"


def test_absurd_delay_is_rejected() -> None:
    assert "at most 3600000 ms" in one_problem({"action": {"type": "delay", "fixed_ms": 10**9}})


def test_negative_close_after_is_rejected() -> None:
    msg = one_problem({"action": {"type": "drop_response", "close_after_ms": -5}})
    assert msg.startswith("action.close_after_ms: close_after_ms must be >= 0")


def test_bad_side_when_mode_list_allowed() -> None:
    assert "'request' or 'response'" in one_problem(
        {"match": ANY, "action": {"type": "delay", "fixed_ms": 1, "side": "both"}}
    )
    assert "'before' or 'after'" in one_problem({"action": {"type": "close", "when": "now"}})
    assert "'graceful' or 'reset'" in one_problem({"action": {"type": "close", "mode": "rst"}})


def test_throttle_needs_positive_rate() -> None:
    assert "bytes_per_s must be > 0" in one_problem({"action": {"type": "throttle",
                                                                "bytes_per_s": 0}})  # fmt: skip


def test_field_of_another_action_type_is_named() -> None:
    msg = one_problem({"action": {"type": "drop_request", "error": "NOT_COORDINATOR"}})
    assert "unknown field 'error' in action of type 'drop_request'" in msg
    assert "allowed: close_after_ms, type" in msg


@pytest.mark.parametrize("probability", [-0.1, 1.5])
def test_probability_outside_unit_interval(probability: float) -> None:
    msg = one_problem(rule(dosage={"probability": probability}))
    assert msg.startswith("dosage.probability: probability must be between 0.0 and 1.0")


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [("skip_first", -1, "skip_first must be >= 0"),
     ("max_injections", 0, "max_injections must be >= 1 or null"),
     ("start_after_ms", -1, "start_after_ms must be >= 0"),
     ("active_for_ms", 0, "active_for_ms must be > 0")],
)  # fmt: skip
def test_bad_dosage_numbers(field: str, value: int, expected: str) -> None:
    msg = one_problem(rule(dosage={field: value}))
    assert msg.startswith(f"dosage.{field}: {expected}")


def test_typo_in_field_name_suggests_the_right_one() -> None:
    msg = one_problem(rule(match={"grup_id": "g1"}))
    assert "unknown field 'grup_id' in match; did you mean 'group_id'?" in msg
    assert "allowed: any, apis, broker" in msg
    msg = one_problem(rule(dosage={"max": 1}))
    assert "unknown field 'max' in dosage" in msg and "max_injections" in msg
    assert "unknown field 'enable' in rule" in one_problem(rule(enable=False))


def test_body_field_on_an_api_that_lacks_it() -> None:
    msg = one_problem(rule(match={"apis": ["Produce"], "group_id": "g1"}))
    assert msg.startswith("match.group_id: Produce requests carry no group_id")
    assert "drop it from apis or drop group_id" in msg
    assert "APIs whose requests carry group_id:" in msg and "SyncGroup" in msg


def test_generation_id_on_join_group_is_rejected() -> None:
    msg = one_problem(rule(match={"apis": ["JoinGroup", "SyncGroup"], "generation_id": 1}))
    assert msg.startswith("match.generation_id: JoinGroup requests carry no generation_id")


def test_body_field_check_waits_for_valid_apis() -> None:
    # A bad API name is the one problem reported, not a consequence of it.
    msg = one_problem(rule(match={"apis": ["Nope"], "group_id": "g1"}))
    assert msg.startswith("match.apis:")


def test_version_no_listed_api_has() -> None:
    msg = one_problem(rule(match={"apis": ["SyncGroup"], "versions": [99]}))
    assert msg.startswith("match.versions: no listed API has version 99")
    assert "SyncGroup 0-" in msg


def test_bad_version_values() -> None:
    assert "versions[1] must be an integer" in one_problem(rule(match={"versions": [1, -2]}))
    assert "versions is empty" in one_problem(rule(match={"versions": []}))


def test_invalid_regex() -> None:
    msg = one_problem(rule(match={"client_id_regex": "("}))
    assert msg.startswith("match.client_id_regex: client_id_regex '(': not a valid RE2 regular")


def test_bad_broker_and_connection() -> None:
    assert "-1 for the bootstrap listener" in one_problem(rule(match={"broker": -2}))
    assert "connection must be" in one_problem(rule(match={"connection": -1}))


@pytest.mark.parametrize("bad_id", ["", "a b", "x/y", "-lead", "x" * 65])
def test_bad_ids(bad_id: str) -> None:
    assert one_problem(rule(id=bad_id)).startswith("id: id ")


def test_several_mistakes_are_all_reported() -> None:
    found = problems(
        {"match": {"apis": ["Nope"]}, "action": {"type": "close"}, "dosage": {"probability": 2}}
    )
    assert [line.split(":")[0] for line in found] == ["match.apis", "dosage.probability"]


def test_resolvers_reject_non_values() -> None:
    for bad in (True, 1.5, None, ["JoinGroup"]):
        with pytest.raises(ValueError):
            resolve_api(bad)
        with pytest.raises(ValueError):
            resolve_error(bad)


def test_rules_are_immutable() -> None:
    r = FaultRule.model_validate(rule())
    with pytest.raises(ValidationError):
        r.enabled = False


def test_schema_examples_are_valid_rules() -> None:
    examples = FaultRule.model_json_schema()["examples"]
    assert examples
    for example in examples:
        FaultRule.model_validate(example)


def test_schema_documents_ranges_and_name_or_number_inputs() -> None:
    defs = FaultRule.model_json_schema()["$defs"]
    assert defs["Dosage"]["properties"]["probability"]["maximum"] == 1
    error = defs["ErrorAction"]["properties"]["error"]
    assert {"type": "integer"} in error["anyOf"]


@pytest.mark.parametrize("junk", ["9" * 5000, "x" * 5000, "²"])
def test_junk_values_give_short_messages(junk: str) -> None:
    for data in (rule(match={"apis": [junk]}), rule(action={"type": "error", "error": junk}),
                 rule(id=junk)):  # fmt: skip
        msg = one_problem(data)
        assert len(msg) < 700
        assert "..." in msg or len(junk) == 1
