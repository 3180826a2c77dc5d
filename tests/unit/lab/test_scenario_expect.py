"""`expect:` in the scenario format: typed one-line expectations, the default set for a scenario
without them, and one-line mistakes that name the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from kafka_chaos_proxy.lab.scenario import (
    ScenarioError,
    load_catalog,
    load_scenario,
    parse_scenario,
)

CATALOG = Path(__file__).resolve().parents[3] / "scenarios"


def doc(expect: Any = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": "demo", "version": 1, "description": "d", **extra}
    if expect is not None:
        out["expect"] = expect
    return out


def test_every_kind_parses_from_yaml_and_round_trips(tmp_path: Path) -> None:
    text = """
name: demo
version: 1
description: d
setup: {members: {count: 2}}
expect:
  - no_app_errors: true
  - terminal_error: {kinds: [fenced_instance_id], member_stops: true, members: [1]}
  - recovers_within_s: 35
  - max_silence_s: 15
  - duplicates_within_bound: true
  - no_offset_regression: true
  - no_loss
  - no_invalid_commits: true
  - max_unassigned_s: 20.5
  - rejoins: {new_member_id: true}
  - no_zombie_fetch: true
"""
    path = tmp_path / "demo.yaml"
    path.write_text(text)
    s = load_scenario(path)
    assert [e.describe() for e in s.expectations] == [
        "no_app_errors", "terminal_error FENCED_INSTANCE_ID, member stops, members [1]",
        "recovers_within_s 35", "max_silence_s 15", "duplicates_within_bound",
        "no_offset_regression", "no_loss", "no_invalid_commits", "max_unassigned_s 20.5",
        "rejoins new member id", "no_zombie_fetch"]
    terminal = s.expectations[1].terminal
    assert terminal is not None and terminal.kinds == ["FENCED_INSTANCE_ID"]
    assert s.expectations[2].bound_s == 35.0
    # Dumped (as the evidence's scenario.yaml is) in the form it is written, and read back.
    dumped = s.model_dump(mode="json")
    assert dumped["expect"][3] == {"max_silence_s": 15.0}
    assert dumped["expect"][6] == {"no_loss": True}
    again = parse_scenario(yaml.safe_load(yaml.safe_dump(dumped)))
    assert again == s


def test_without_expect_the_default_set_follows_the_outcome_bounds() -> None:
    s = parse_scenario(doc(outcome={"recovery_bound_s": 40, "stall_bound_s": 20}))
    assert s.expect is None
    assert [e.describe() for e in s.expectations] == [
        "no_loss", "recovers_within_s 40", "max_silence_s 20", "duplicates_within_bound"]
    assert s.model_dump(mode="json")["expect"] is None


def test_member_timeout_is_the_longest_session_or_rebalance_timeout() -> None:
    s = parse_scenario(doc(setup={"members": {
        "count": 2, "overrides": {1: {"session_timeout_ms": 45000,
                                      "heartbeat_interval_ms": 3000}}}}))
    assert s.member_timeout_s == 45.0
    assert parse_scenario(doc()).member_timeout_s == 10.0  # the default rebalance timeout


@pytest.mark.parametrize(("expect", "message"), [
    ([{"no_loss": False}],
     "expect[0].no_loss: the only value is true (leave the line out rather than expect the "
     "opposite), not false"),
    ([{"no_loss": True}, {"max_silence_s": "soon"}],
     "expect[1].max_silence_s: a number of seconds above 0 and at most 600, not \"soon\""),
    ([{"recovers_within_s": 0}], "expect[0].recovers_within_s: a number of seconds above 0"),
    ([{"max_unassigned_s": True}], "expect[0].max_unassigned_s: a number of seconds"),
    ([{"max_silence": 15}], "expect[0]: unknown expectation 'max_silence'; one of no_loss,"),
    ([{"no_loss": True, "max_silence_s": 15}], "expect[0]: an expectation is one key"),
    ([{"terminal_error": {"kinds": ["FENCED"]}}],
     "expect[0].terminal_error.kinds[0]: unknown error 'FENCED'"),
    ([{"terminal_error": {"member_stop": True}}],
     "expect[0].terminal_error.member_stop: Extra inputs are not permitted"),
    ([{"terminal_error": "yes"}], "expect[0].terminal_error: a mapping of options (kinds, "),
    ([{"terminal_error": {"members": [2]}}],
     "expect[0].terminal_error.members: 2 is not a member (0..0)"),
    ([{"no_loss": True}, "no_loss"], "expect[1]: no_loss is given twice"),
    ([], "expect: an empty list judges nothing"),
    ("no_loss", "expect: a list of expectations"),
])
def test_mistakes_are_one_line_naming_the_field(expect: Any, message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(doc(expect), "x.yaml")
    text = str(info.value)
    assert text.startswith(f"x.yaml: {message}"), text
    assert "\n" not in text


def test_catalog_expectations_follow_the_descriptions() -> None:
    catalog = load_catalog(CATALOG)
    for name in ("static-fenced-instance-id-heartbeat", "static-fenced-instance-id-joingroup",
                 "static-fenced-instance-id-syncgroup"):
        s = catalog[name]
        assert "must stop" in s.description and s.version >= 2
        assert [e.describe() for e in s.expectations] == [
            "terminal_error FENCED_INSTANCE_ID, member stops"]
    zombie = catalog["heartbeat-blackhole-zombie-fetch"]
    assert zombie.expectations[0].describe() == "no_zombie_fetch"
    assert "a real network produces" in " ".join(zombie.description.lower().split())
    umid = catalog["heartbeat-unknown-member-id"]
    assert {"no_app_errors", "rejoins new member id", "no_loss"} <= {
        e.describe() for e in umid.expectations}
    for s in catalog.values():
        if "retriable" in s.description.lower() and "or report it" not in s.description:
            assert "no_app_errors" in [e.name for e in s.expectations], s.name
        if ("must stop" not in s.description and s.expect is not None
                and "field-report" not in s.tags):
            # Every other explicit set keeps what the default set checks (a field report's
            # scenario expects exactly what its claim is about).
            assert {"no_loss", "max_silence_s", "duplicates_within_bound"} <= {
                e.name for e in s.expectations}, s.name
