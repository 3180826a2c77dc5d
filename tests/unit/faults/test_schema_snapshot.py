"""The rule's JSON schema is a published contract: rule files, the admin API's OpenAPI document
and generated clients all depend on it, so refactoring how actions are declared must not change
a byte of it. The snapshot was generated from the code before actions became a registry.

Regenerate (only for an intended schema change) with
``.venv/bin/python tests/unit/faults/test_schema_snapshot.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kafka_chaos_proxy.faults.engine import FaultEngine
from kafka_chaos_proxy.faults.model import FaultRule
from kafka_chaos_proxy.proxy.admin import AdminContext, create_app
from kafka_chaos_proxy.proxy.events import EventLog
from kafka_chaos_proxy.proxy.groups import GroupStateModel

SNAPSHOT = Path(__file__).parent / "snapshots" / "fault_rule_schema.json"
# The OpenAPI components that describe rules, and everything they reference.
_OPENAPI_ROOTS = ("FaultRule", "RuleOut")


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"].rsplit("/", 1)[-1]} if isinstance(node.get("$ref"), str) else set()
        for value in node.values():
            found |= _refs(value)
        return found
    if isinstance(node, list):
        return set().union(*(_refs(item) for item in node)) if node else set()
    return set()


def _openapi_rule_schemas() -> dict[str, Any]:
    ctx = AdminContext(engine=FaultEngine(seed=1), events=EventLog(capacity=1),
                       groups=GroupStateModel())  # fmt: skip
    components = create_app(ctx).openapi()["components"]["schemas"]
    wanted: set[str] = set()
    todo = list(_OPENAPI_ROOTS)
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo.extend(_refs(components[name]) - wanted)
    return {name: components[name] for name in sorted(wanted)}


def current_schemas() -> dict[str, Any]:
    return {
        "validation": FaultRule.model_json_schema(mode="validation"),
        "serialization": FaultRule.model_json_schema(mode="serialization"),
        "openapi": _openapi_rule_schemas(),
    }


def _dump(data: Any) -> str:
    # Key order is part of what is pinned (it is the order fields appear in docs and exports).
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def test_fault_rule_schema_is_unchanged() -> None:
    assert _dump(current_schemas()) == SNAPSHOT.read_text(encoding="utf-8")


if __name__ == "__main__":
    SNAPSHOT.write_text(_dump(current_schemas()), encoding="utf-8")
