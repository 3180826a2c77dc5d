"""Rule files: both formats, both top-level shapes, and errors that name file, rule and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from kafka_chaos_proxy.faults.loader import (
    RulesFileError,
    dump_rules,
    load_rules_file,
    load_rules_text,
)
from kafka_chaos_proxy.faults.model import FaultRule

ANY = {"any": True}  # a rule that names nothing else to match says so

YAML_RULES = """\
rules:
  - id: sync-moves
    match: {apis: [SyncGroup], group_id: orders}
    action: {type: error, error: not_coordinator}
    dosage: {max_injections: 1}
  - match: {apis: [14, heartbeat]}
    action: {type: delay, side: response, fixed_ms: 200, jitter_ms: 300,
             distribution: exponential}
"""


def test_yaml_file_with_rules_key(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(YAML_RULES)
    rules = load_rules_file(path)
    assert [r.id for r in rules] == ["sync-moves", None]
    assert rules[0].action.model_dump()["error"] == "NOT_COORDINATOR"
    assert rules[1].match.apis == ["SyncGroup", "Heartbeat"]


def test_json_file_with_a_bare_list(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps([{"match": ANY, "action": {"type": "drop_request"}}]))
    assert load_rules_file(path)[0].action.type == "drop_request"


def test_yml_extension_and_empty_documents(tmp_path: Path) -> None:
    path = tmp_path / "rules.yml"
    path.write_text("")
    assert load_rules_file(path) == []
    path.write_text("rules: []\n")
    assert load_rules_file(path) == []
    path.write_text("rules:\n")
    assert load_rules_file(path) == []


def test_errors_name_file_rule_index_id_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "- {match: {any: true}, action: {type: drop_request}}\n"
        "- id: second\n"
        "  match: {apis: [SyncGrup]}\n"
        "  action: {type: error, error: NOT_COORDINATOR}\n"
        "- {match: {any: true}, action: {type: delay, fixed_ms: -5}}\n"
    )
    with pytest.raises(RulesFileError) as info:
        load_rules_file(path)
    lines = str(info.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{path}: rule 1 (id 'second'): match.apis: apis[0]: unknown API")
    assert "did you mean 'SyncGroup'" in lines[0]
    expected = "rule 2: action.fixed_ms: fixed_ms must be >= 0 milliseconds, got -5"
    assert lines[1] == f"{path}: {expected}"


def test_duplicate_ids_in_a_file() -> None:
    text = ("- {id: a, match: {any: true}, action: {type: drop_request}}\n"
            "- {id: a, match: {any: true}, action: {type: close}}\n")
    expected = r"rule 1 \(id 'a'\): id 'a' is already used by rule 0"
    with pytest.raises(RulesFileError, match=expected):
        load_rules_text(text, "yaml", "f.yaml")


def test_syntax_errors_name_the_line(tmp_path: Path) -> None:
    bad_yaml = tmp_path / "r.yaml"
    bad_yaml.write_text("rules:\n  - action: {type: drop_request\n")
    with pytest.raises(RulesFileError, match=r"r\.yaml: invalid YAML at line \d+"):
        load_rules_file(bad_yaml)
    bad_json = tmp_path / "r.json"
    bad_json.write_text('{"rules": [}')
    with pytest.raises(RulesFileError, match=r"r\.json: invalid JSON at line 1 column 12"):
        load_rules_file(bad_json)


def test_wrong_top_level_shapes() -> None:
    with pytest.raises(RulesFileError, match=r"unknown top-level key\(s\) 'rule'"):
        load_rules_text("rule: []")
    with pytest.raises(RulesFileError, match=r"expected a list of rules.*got str"):
        load_rules_text("just text")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RulesFileError, match="cannot read rules file"):
        load_rules_file(tmp_path / "absent.yaml")


def test_dump_omits_defaults_and_round_trips() -> None:
    rules = load_rules_text(YAML_RULES)
    text = dump_rules(rules, "yaml")
    document = yaml.safe_load(text)
    assert document["rules"][0] == {
        "id": "sync-moves",
        "match": {"apis": ["SyncGroup"], "group_id": "orders"},
        "action": {"type": "error", "error": "NOT_COORDINATOR"},
        "dosage": {"max_injections": 1},
    }
    assert load_rules_text(text, "yaml") == rules
    assert load_rules_text(dump_rules(rules, "json"), "json") == rules


def test_dump_keeps_non_default_enabled() -> None:
    rule = FaultRule.model_validate({"match": ANY, "enabled": False, "action": {"type": "close"}})
    assert yaml.safe_load(dump_rules([rule]))["rules"][0] == {"match": ANY,
        "enabled": False,
        "action": {"type": "close"},
    }


def test_dump_rejects_unknown_format() -> None:
    with pytest.raises(ValueError, match="allowed: yaml, json"):
        dump_rules([], "toml")  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["\x85", "a\u2028b", "x\u2029 ", "grüße", "'q'", "yes", "1"])
def test_yaml_keeps_awkward_strings_exactly(text: str) -> None:
    rule = FaultRule.model_validate(
        {"description": text, "match": {"group_id": text}, "action": {"type": "close"}}
    )
    assert load_rules_text(dump_rules([rule], "yaml"), "yaml") == [rule]
