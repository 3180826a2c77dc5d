"""Rule files: YAML or JSON in, YAML or JSON out.

A rules file is read at start-up, often by someone who has just typed it, so a mistake must be
reported as "which file, which rule, which field, what to write instead" and must stop start-up
rather than silently dropping a rule. Export writes the same shape back with defaults left out,
so a dumped file reads like a hand-written one and loads back to the same rules.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ValidationError

from kafka_chaos_proxy.faults.model import FaultRule, describe_errors

Format = Literal["yaml", "json"]
FORMATS: tuple[Format, ...] = ("yaml", "json")


class _Dumper(yaml.SafeDumper):
    """PyYAML writes NEL and the Unicode line/paragraph separators raw in plain and single-quoted
    scalars, where a reader folds them into spaces; double quotes escape them, so a group id or
    description with one of them still loads back exactly."""


_LINE_BREAKS = ("\x85", "\u2028", "\u2029")


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = '"' if any(ch in value for ch in _LINE_BREAKS) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


class RulesFileError(ValueError):
    """A rules document that cannot be loaded; the message says where and why."""


def format_for(path: Path) -> Format:
    """JSON for *.json, YAML otherwise (JSON is valid YAML, so YAML is the forgiving default)."""
    return "json" if path.suffix.lower() == ".json" else "yaml"


def parse_text(text: str, fmt: Format, source: str = "<rules>") -> Any:
    """Parse a document; syntax errors name the source and the line."""
    if fmt == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise RulesFileError(
                f"{source}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
            ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise RulesFileError(f"{source}: invalid YAML{where}: {problem}") from None


def rules_from_data(data: Any, source: str = "<rules>") -> list[FaultRule]:
    """Validate a parsed document: a list of rules, or a mapping with a `rules` list.

    All rules are checked before any error is raised, so one run reports every broken rule.
    """
    if data is None:
        return []
    if isinstance(data, dict):
        extra = sorted(set(data) - {"rules"})
        if extra:
            raise RulesFileError(
                f"{source}: unknown top-level key(s) {', '.join(map(repr, extra))}; "
                "expected a list of rules or a mapping with a single 'rules' list"
            )
        data = data.get("rules") or []
    if not isinstance(data, list):
        raise RulesFileError(
            f"{source}: expected a list of rules or a mapping with a 'rules' list, "
            f"got {type(data).__name__}"
        )
    rules: list[FaultRule] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(data):
        label = f"rule {index}"
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            label += f" (id {item['id']!r})"
        try:
            rule = FaultRule.model_validate(item)
        except ValidationError as exc:
            problems.extend(f"{source}: {label}: {line}" for line in describe_errors(exc))
            continue
        if rule.id is not None:
            if rule.id in seen:
                problems.append(
                    f"{source}: {label}: id {rule.id!r} is already used by rule {seen[rule.id]}"
                )
                continue
            seen[rule.id] = index
        rules.append(rule)
    if problems:
        raise RulesFileError("\n".join(problems))
    return rules


def load_rules_text(text: str, fmt: Format = "yaml", source: str = "<rules>") -> list[FaultRule]:
    return rules_from_data(parse_text(text, fmt, source), source)


def load_rules_file(path: str | Path) -> list[FaultRule]:
    """Rules from a YAML or JSON file (chosen by extension); RulesFileError on any problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesFileError(f"{path}: cannot read rules file: {exc.strerror or exc}") from None
    return load_rules_text(text, format_for(path), str(path))


def rule_to_document(rule: FaultRule) -> dict[str, Any]:
    """A rule as written to a file: defaults omitted (the action `type` is always kept)."""
    return rule.model_dump(mode="json", exclude_defaults=True)


def dump_rules(rules: Iterable[FaultRule], format: Format = "yaml") -> str:
    """`{"rules": [...]}` as YAML or JSON; load_rules_text reads it back to equal rules."""
    document = {"rules": [rule_to_document(rule) for rule in rules]}
    if format == "json":
        return json.dumps(document, indent=2) + "\n"
    if format == "yaml":
        return yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True)
    raise ValueError(f"unknown export format {format!r}; allowed: {', '.join(FORMATS)}")
