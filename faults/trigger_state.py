"""A rule's trigger at run time (armed? how many events seen?) and the checks on rule sets
that triggers make necessary: a trigger naming a rule that does not exist, and rules arming
each other in a cycle (none of them could ever act).

Separate from `faults.triggers` (what users write) because this is the engine's state; the
engine owns one `TriggerState` per rule with `when.after` or `when.until`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kafka_chaos_proxy.faults.triggers import CompiledPattern, When, compile_pattern

if TYPE_CHECKING:
    from kafka_chaos_proxy.faults.model import FaultRule


class TriggerError(ValueError):
    """A rule set whose triggers cannot work (the admin API answers 422). `field` is the
    path of the field to fix, e.g. ``when.after.rule``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass
class TriggerState:
    after: CompiledPattern | None
    until: CompiledPattern | None
    count: int
    seen: int = 0
    armed: bool = False
    disarmed: bool = False
    armed_at: float | None = None

    @classmethod
    def of(cls, when: When) -> TriggerState:
        return cls(
            after=compile_pattern(when.after) if when.after is not None else None,
            until=compile_pattern(when.until) if when.until is not None else None,
            count=when.count,
            armed=when.after is None,
        )

    def saw(self, event: Mapping[str, Any], now: float) -> None:
        if self.disarmed:
            return
        if self.armed:
            if self.until is not None and self.until.matches(event):
                self.armed = False
                self.disarmed = True
            return
        if self.after is not None and self.after.matches(event):
            self.seen += 1
            if self.seen >= self.count:
                self.armed = True
                self.armed_at = now

    def to_json(self) -> dict[str, Any]:
        return {"armed": self.armed, "disarmed": self.disarmed, "trigger_events": self.seen}


def _edges(rule: FaultRule) -> list[tuple[str, str]]:
    """(field, rule id) for every rule the given rule's triggers and holds name."""
    out: list[tuple[str, str]] = []
    when = rule.when
    if when is not None:
        for name, pattern in (("after", when.after), ("until", when.until)):
            if pattern is not None and pattern.rule is not None:
                out.append((f"when.{name}.rule", pattern.rule))
    until = getattr(rule.action, "until", None)
    rule_named = getattr(until, "rule", None)
    if isinstance(rule_named, str):
        out.append(("action.until.rule", rule_named))
    return out


def check_references(rules: Iterable[FaultRule]) -> None:
    """Raise `TriggerError` when a rule's trigger names no rule of the set, or when rules arm
    each other (`when.after.rule`) in a cycle."""
    rules = list(rules)
    ids = {rule.id for rule in rules if rule.id is not None}
    arms: dict[str, str] = {}
    for rule in rules:
        for field, named in _edges(rule):
            if named not in ids:
                known = ", ".join(sorted(i for i in ids if i != rule.id)) or "none"
                raise TriggerError(
                    field, f"rule {rule.id!r} waits for rule {named!r}, which does not exist "
                    f"(rules: {known}); add it first, or in the same file")
        if rule.id is not None and rule.when is not None and rule.when.after is not None \
                and rule.when.after.rule is not None:
            arms[rule.id] = rule.when.after.rule
    for start in arms:
        path = [start]
        node = arms.get(start)
        while node is not None and node not in path:
            path.append(node)
            node = arms.get(node)
        if node == start:
            cycle = " -> ".join([*path, start])
            raise TriggerError(
                "when.after.rule", f"rules arm each other in a cycle ({cycle}): none of them "
                "could ever act; let one of them be armed by an event instead")
