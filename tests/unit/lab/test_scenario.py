"""Scenario loading and validation: the shipped catalog loads, and mistakes are named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kafka_chaos_proxy.lab.scenario import (
    ScenarioError,
    load_catalog,
    load_scenario,
    parse_scenario,
)

ANY = {"any": True}  # a rule that names nothing else to match says so

CATALOG = Path(__file__).resolve().parents[3] / "scenarios"


def minimal(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": "demo",
        "version": 1,
        "description": "d",
        "steps": [{"add": [{"id": "r1", "match": {"apis": ["SyncGroup"]},
                            "action": {"type": "error", "error": "NOT_COORDINATOR"},
                            "dosage": {"max_injections": 1}}]}],
    }
    doc.update(overrides)
    return doc


def test_catalog_loads_and_covers_the_required_families() -> None:
    catalog = load_catalog(CATALOG)
    assert len(catalog) >= 20
    tags = {t for s in catalog.values() for t in s.tags}
    for needed in ("handshake", "stable", "OffsetCommit", "static", "kip848", "latency",
                   "FENCED_INSTANCE_ID", "NOT_COORDINATOR", "COORDINATOR_LOAD_IN_PROGRESS"):
        assert needed in tags, needed
    for scenario in catalog.values():
        scenario.rules()  # every rule is a valid FaultRule


def test_yaml_on_key_and_when_block_are_both_accepted(tmp_path: Path) -> None:
    text = """
name: trig
version: 2
description: triggered
steps:
  - on: {api: sync_group, generation_id: 2, occurrence: 1}
    produce: 5
  - when: {on: {harness_event: assigned, count: 2}}
    produce: 5
  - when: {at: 3.5}
    produce: 1
"""
    path = tmp_path / "trig.yaml"
    path.write_text(text)
    s = load_scenario(path)
    assert s.steps[0].on is not None and s.steps[0].on.api == "SyncGroup"
    assert s.steps[0].on.kind == "proxy"
    assert s.steps[1].on is not None and s.steps[1].on.harness_event == "assigned"
    assert s.steps[2].at == 3.5
    assert s.total_records == 60 + 11


def test_defaults() -> None:
    s = parse_scenario(minimal())
    assert s.setup.members.count == 1 and s.setup.members.protocol == "classic"
    assert s.applicable_protocols == ["classic"]
    assert s.steps[0].before_start
    assert s.outcome.expect_injection


@pytest.mark.parametrize(("doc", "message"), [
    (minimal(name="Bad Name"), "name"),
    (minimal(version=0), "version"),
    (minimal(steps=[{"add": [{"match": {"apis": ["SyncGroup"]},
                              "action": {"type": "error", "error": "NOT_COORDINATOR"}}]}]),
     "give every scenario rule an id"),
    (minimal(steps=[{"add": [{"id": "r", "match": {"apis": ["SyncGroupp"]},
                              "action": {"type": "error", "error": "NOT_COORDINATOR"}}]}]),
     "SyncGroup"),
    (minimal(steps=[{"add": [{"match": ANY, "id": "r",
                              "action": {"type": "error", "error": "NOPE"}}]}]),
     "unknown error"),
    (minimal(steps=[{"remove": ["ghost"]}]), "no earlier step adds"),
    (minimal(steps=[{"at": 1, "on": {"api": "Heartbeat"}, "produce": 1}]), "not both"),
    (minimal(steps=[{"at": 1}]), "must add, remove"),
    (minimal(steps=[{"on": {"api": "Heartbeat", "harness_event": "assigned"}, "produce": 1}]),
     "exactly one"),
    (minimal(steps=[{"on": {"harness_event": "teleported"}, "produce": 1}]), "harness_event"),
    (minimal(steps=[{"stop_members": [3], "at": 1}]), "not a member"),
    (minimal(setup={"members": {"heartbeat_interval_ms": 7000}}), "below"),
    (minimal(typo=1), "typo"),
    (minimal(outcome={"stall_bound_s": 90, "max_duration_s": 60}), "stall_bound_s"),
])
def test_invalid_scenarios_are_rejected_with_the_field(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(doc, "x.yaml")
    assert message in str(info.value)
    assert str(info.value).startswith("x.yaml: ")


def test_file_name_must_match_scenario_name(tmp_path: Path) -> None:
    path = tmp_path / "other.yaml"
    path.write_text("name: demo\nversion: 1\ndescription: d\n")
    with pytest.raises(ScenarioError, match=r"demo\.yaml"):
        load_scenario(path)


def test_bad_yaml_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load_scenario(path)
