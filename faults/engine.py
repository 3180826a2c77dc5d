"""The fault engine: the live rule set, and one `Decision` per request.

The data plane calls `on_request` for every request and the admin API calls the CRUD methods,
all on the same event loop, so nothing here locks. Rules are tried in insertion order and the
first one that matches *and* whose dosage admits the request wins: a rule that is dosed out
(skipped, exhausted, outside its window, unlucky draw) lets later rules have their turn. Only
the rules that could match the request's API (and group) are tried (`faults.rule_index`), so
rules aimed elsewhere cost a Produce or a Fetch nothing.

All randomness (probability draws, delay jitter) comes from one `random.Random(seed)`, and all
time from the injected clock, so tests and seeded runs replay exactly.
"""

from __future__ import annotations

import builtins
import itertools
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kafka_chaos_proxy.faults.actions import DecideContext, spec_for
from kafka_chaos_proxy.faults.decision import PASS, SEQUENCE, Decision, RequestView
from kafka_chaos_proxy.faults.dosage import DosageState, admit
from kafka_chaos_proxy.faults.loader import Format, dump_rules
from kafka_chaos_proxy.faults.match import CompiledMatch, compile_match
from kafka_chaos_proxy.faults.model import FaultRule, api_keys
from kafka_chaos_proxy.faults.realism import rule_warnings
from kafka_chaos_proxy.faults.rule_index import RuleIndex
from kafka_chaos_proxy.faults.trigger_state import TriggerError, TriggerState, check_references
from kafka_chaos_proxy.faults.triggers import (
    CompiledCondition,
    GroupView,
    compile_condition,
    request_event,
)

log = logging.getLogger(__name__)

InjectionObserver = Callable[[FaultRule, Decision], None]
EventSink = Callable[[Mapping[str, Any]], None]

__all__ = ["DuplicateRuleError", "FaultEngine", "RuleLimitError", "TriggerError",
           "UnknownRuleError"]


class DuplicateRuleError(ValueError):
    """A rule with this id exists already (the admin API answers 409)."""


class RuleLimitError(ValueError):
    """The engine holds `max_rules` rules already (the admin API answers 409)."""


# Bounded like Kafka's own quotas on what a client may create: a test suite needs a handful,
# a soak a few dozen. Rules are indexed by API and group, so the bound is memory (a rule and
# its compiled match, a few KiB), not per-request time.
DEFAULT_MAX_RULES = 1000


class UnknownRuleError(KeyError):
    """No rule has this id (the admin API answers 404). `args[0]` is the id."""

    def __init__(self, rule_id: str, known: Iterable[str] = ()) -> None:
        super().__init__(rule_id)
        self.rule_id = rule_id
        self.known = tuple(known)

    def __str__(self) -> str:  # KeyError would repr() the message, quotes and all
        known = ", ".join(self.known) or "none"
        return f"no fault rule with id {self.rule_id!r} (rules: {known})"


class RuleIdMismatchError(ValueError):
    """A replace/patch body names a different id than the rule being changed."""


@dataclass
class RuleStats:
    """`matched`: requests the rule's match accepted while enabled (whatever the dosage said).
    `injected`: faults the data plane confirmed through `Decision.on_applied`."""

    matched: int = 0
    injected: int = 0

    def to_json(self) -> dict[str, int]:
        return {"matched": self.matched, "injected": self.injected}




@dataclass
class _Entry:
    rule: FaultRule
    compiled: CompiledMatch
    stats: RuleStats
    dosage: DosageState
    trigger: TriggerState | None = None
    condition: CompiledCondition | None = None
    order: int = 0  # place in insertion order (`faults.rule_index` sorts candidates by it)


class FaultEngine:
    """Implements `faults.decision.FaultDecider` over a mutable, ordered set of rules."""

    def __init__(
        self, seed: int | None = None, clock: Callable[[], float] = time.monotonic,
        max_rules: int = DEFAULT_MAX_RULES,
    ) -> None:
        self.max_rules = max_rules
        self._rng = random.Random(seed)
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._index: RuleIndex[_Entry] = RuleIndex(api_keys())
        self._ids = itertools.count(1)
        self._orders = itertools.count()
        # Called (rule, decision) each time the data plane confirms an injection, e.g. to count
        # it in Prometheus. An observer that raises is logged and never breaks the data plane.
        self.on_injected: builtins.list[InjectionObserver] = []
        # Called with each injection as a trigger event (`faults.triggers.request_event`), after
        # the engine's own triggers saw it: the proxy's holds wait on such events too.
        self.event_sinks: builtins.list[EventSink] = []
        # The group's live state for `when.group` conditions; the proxy sets it. Without one,
        # a rule with a group condition never acts.
        self.group_view: GroupView | None = None
        self._triggered: builtins.list[_Entry] = []  # entries with `when.after`/`until`

    @property
    def wants_events(self) -> bool:
        """Whether `notify` can change anything (a rule waits for or on an event)."""
        return bool(self._triggered)

    # ------------------------------------------------------------------ data plane

    def quiet_api_keys(self, client_id: str | None = None) -> frozenset[int]:
        """API keys no stored rule can match for a request from `client_id` (None: from any
        client), `faults.rule_index`: the data plane forwards them without asking
        `on_request`, which would answer PASS. A rule that is disabled or waiting for its
        trigger still counts as one that can match."""
        return self._index.quiet_keys(client_id)

    def on_request(self, request: RequestView) -> Decision:
        """The first rule that acts decides, and rules with `chain` let later ones act too:
        several decisions become one SEQUENCE, carried out in rule order."""
        if not self._entries:
            return PASS
        now = self._clock()
        decisions: builtins.list[Decision] = []
        for entry in self._index.candidates(request):
            if not entry.rule.enabled:
                continue
            if entry.trigger is not None and not entry.trigger.armed:
                continue
            if not entry.compiled.matches(request):
                continue
            if entry.condition is not None and not entry.condition.holds(
                    request, self.group_view):
                continue
            entry.stats.matched += 1
            if admit(entry.rule.dosage, entry.dosage, now, self._rng):
                decisions.append(self._decide(entry, request))
                if not entry.rule.chain:
                    break
        if not decisions:
            return PASS
        if len(decisions) == 1:
            return decisions[0]
        return Decision(SEQUENCE, decisions[0].rule_id, plan=tuple(decisions))

    def notify(self, event: Mapping[str, Any]) -> None:
        """One trigger event (a coordination request arriving, an exchange ending, an
        injection): arm and disarm the rules waiting for it. Synchronous, on the data path,
        so the next request is decided with the new state: no slop."""
        for entry in builtins.list(self._triggered):
            if entry.rule.enabled and entry.trigger is not None:
                entry.trigger.saw(event, self._clock())

    def _injected(self, request: RequestView, rule_id: str) -> None:
        event = request_event(request, "injected", rule_id)
        self.notify(event)
        for sink in builtins.list(self.event_sinks):
            try:
                sink(event)
            except Exception:
                log.exception("trigger event sink failed for rule %s", rule_id)

    def _decide(self, entry: _Entry, request: RequestView) -> Decision:
        rule = entry.rule
        action = rule.action
        stats = entry.stats
        applied = False

        def on_applied() -> None:
            nonlocal applied
            if applied:  # idempotent: a fault counts once however often it is confirmed
                return
            applied = True
            stats.injected += 1
            for observer in builtins.list(self.on_injected):
                try:
                    observer(rule, decision)
                except Exception:
                    log.exception("fault injection observer failed for rule %s", rule.id)
            if self._triggered or self.event_sinks:
                self._injected(request, _id(rule))

        # The registry, not a type switch: an action module is the only place that knows how its
        # model becomes a Decision (and draws its delays from our seeded generator).
        context = DecideContext(rule.id, self._rng, on_applied)
        decision = spec_for(action.type).decide(action, context)
        return decision

    # ------------------------------------------------------------------ CRUD

    def add(self, rule: FaultRule | Mapping[str, Any]) -> FaultRule:
        """Store a rule at the end of the order; assigns an id (r1, r2, ...) when it has none."""
        rule = _as_rule(rule)
        if rule.id in self._entries:
            raise DuplicateRuleError(f"a rule with id {rule.id!r} exists already")
        rule = self._identified(rule)
        self._check_room(1)
        check_references([*self.list(), rule])
        entry = self._entry(rule)
        self._entries[_id(rule)] = entry
        self._index.append(entry)  # the last in order: no rebuild (adding many stays linear)
        if entry.trigger is not None:
            self._triggered.append(entry)
        return rule

    def _store(self, entry: _Entry) -> None:
        self._entries[_id(entry.rule)] = entry
        self._reindex()

    def _reindex(self) -> None:
        self._triggered = [e for e in self._entries.values() if e.trigger is not None]
        self._index.rebuild(self._entries.values())

    def _check_room(self, wanted: int, replacing: bool = False) -> None:
        held = 0 if replacing else len(self._entries)
        if held + wanted > self.max_rules:
            raise RuleLimitError(
                f"at most {self.max_rules} rules (--max-rules); {held} held, {wanted} more "
                "asked for: remove some first (DELETE /faults/ID or DELETE /faults)")

    def get(self, rule_id: str) -> FaultRule:
        return self._get(rule_id).rule

    def replace(self, rule_id: str, rule: FaultRule | Mapping[str, Any]) -> FaultRule:
        """Swap the rule in place (same position), with fresh stats and dosage counters."""
        self._get(rule_id)
        rule = _as_rule(rule)
        if rule.id is None:
            rule = rule.model_copy(update={"id": rule_id})
        elif rule.id != rule_id:
            raise RuleIdMismatchError(
                f"the body's id {rule.id!r} differs from the rule being replaced ({rule_id!r}); "
                "remove the id from the body or make them equal"
            )
        check_references([rule if r.id == rule_id else r for r in self.list()])
        entry = self._entry(rule)
        entry.order = self._entries[rule_id].order  # same place in order
        self._store(entry)
        return rule

    def patch(self, rule_id: str, changes: Mapping[str, Any]) -> FaultRule:
        """Merge `changes` into the rule (JSON merge patch: null resets a field to its default)
        and validate the result; stats and dosage counters are kept.

        Raises pydantic.ValidationError for an invalid result.
        """
        entry = self._get(rule_id)
        if "id" in changes and changes["id"] != rule_id:
            raise RuleIdMismatchError(
                f"a rule's id cannot be changed by a patch ({rule_id!r} -> {changes['id']!r}); "
                "add a new rule and remove this one instead"
            )
        current = entry.rule.model_dump(mode="json", exclude_defaults=True)
        changes = dict(changes)
        action = changes.get("action")
        if (
            isinstance(action, Mapping)
            and action.get("type", current["action"]["type"]) != (current["action"]["type"])
        ):
            # A different action type shares no fields with the old one: replace it whole.
            current.pop("action")
        merged = _merge_patch(current, changes)
        rule = FaultRule.model_validate(merged)
        check_references([rule if r.id == rule_id else r for r in self.list()])
        was_enabled = entry.rule.enabled
        old_when = entry.rule.when
        entry.rule = rule
        entry.compiled = compile_match(rule.match, api_keys())
        if rule.enabled and not was_enabled:
            entry.dosage = DosageState(activated_at=self._clock())
        if rule.when != old_when or (rule.enabled and not was_enabled):
            entry.trigger, entry.condition = _trigger_parts(rule)
        self._reindex()
        return rule

    def remove(self, rule_id: str) -> FaultRule:
        entry = self._get(rule_id)
        del self._entries[rule_id]
        self._index.remove(entry)  # removing many stays linear too
        if entry.trigger is not None:
            self._triggered = [e for e in self._triggered if e is not entry]
        return entry.rule

    def clear(self) -> int:
        """Remove every rule; returns how many there were."""
        count = len(self._entries)
        self._entries.clear()
        self._reindex()
        return count

    def list(self) -> builtins.list[FaultRule]:
        return [entry.rule for entry in self._entries.values()]

    def set_enabled(self, rule_id: str, enabled: bool) -> FaultRule:
        """Enabling a disabled rule restarts its dosage: windows and skip/max counts begin now."""
        entry = self._get(rule_id)
        if entry.rule.enabled == enabled:
            return entry.rule
        entry.rule = entry.rule.model_copy(update={"enabled": enabled})
        if enabled:
            entry.dosage = DosageState(activated_at=self._clock())
            entry.trigger, entry.condition = _trigger_parts(entry.rule)
            self._reindex()
        return entry.rule

    def stats(self, rule_id: str) -> RuleStats:
        stats = self._get(rule_id).stats
        return RuleStats(matched=stats.matched, injected=stats.injected)

    def rule_json(self, rule_id: str) -> dict[str, Any]:
        """The rule as the admin API returns it: every field, plus `stats`."""
        entry = self._get(rule_id)
        return {**entry.rule.to_json(), "stats": entry.stats.to_json(),
                "trigger": entry.trigger.to_json() if entry.trigger is not None else None,
                "warnings": rule_warnings(entry.rule)}

    def list_json(self) -> builtins.list[dict[str, Any]]:
        return [self.rule_json(rule_id) for rule_id in self._entries]

    def export(self, format: Format = "yaml") -> str:
        """The current rules as a rules file (no stats); `load` or `--faults` reads it back."""
        return dump_rules(self.list(), format)

    def load(
        self, rules: Iterable[FaultRule | Mapping[str, Any]], *, replace: bool = False
    ) -> builtins.list[FaultRule]:
        """Add many rules at once, all or nothing: a duplicate id anywhere adds none of them.

        With `replace=True` the current rules are dropped first (a rules file as the new truth).
        """
        incoming = [_as_rule(rule) for rule in rules]
        self._check_room(len(incoming), replacing=replace)
        taken = set() if replace else set(self._entries)
        for rule in incoming:
            if rule.id is not None:
                if rule.id in taken:
                    raise DuplicateRuleError(f"a rule with id {rule.id!r} exists already")
                taken.add(rule.id)
        # Rules of one file may name each other in any order: checked as one set, up front.
        check_references([*([] if replace else self.list()), *incoming])
        if replace:
            self.clear()
        added: builtins.list[FaultRule] = []
        for rule in map(self._identified, incoming):
            self._entries[_id(rule)] = self._entry(rule)
            added.append(rule)
        self._reindex()
        return added

    # ------------------------------------------------------------------ helpers

    def _get(self, rule_id: str) -> _Entry:
        try:
            return self._entries[rule_id]
        except KeyError:
            raise UnknownRuleError(rule_id, self._entries) from None

    def _entry(self, rule: FaultRule) -> _Entry:
        trigger, condition = _trigger_parts(rule)
        return _Entry(
            rule=rule,
            compiled=compile_match(rule.match, api_keys()),
            stats=RuleStats(),
            dosage=DosageState(activated_at=self._clock()),
            trigger=trigger,
            condition=condition,
            order=next(self._orders),
        )

    def _identified(self, rule: FaultRule) -> FaultRule:
        """The rule with its own id, or the next free one (r1, r2, ...) when it has none."""
        return rule if rule.id is not None else rule.model_copy(update={"id": self._next_id()})

    def _next_id(self) -> str:
        while True:
            candidate = f"r{next(self._ids)}"
            if candidate not in self._entries:
                return candidate


def _trigger_parts(rule: FaultRule) -> tuple[TriggerState | None, CompiledCondition | None]:
    """A rule's `when`, compiled: the event state (fresh) and the group condition."""
    when = rule.when
    if when is None:
        return None, None
    trigger = TriggerState.of(when) if (when.after or when.until) else None
    condition = compile_condition(when.group) if when.group is not None else None
    return trigger, condition


def _as_rule(rule: FaultRule | Mapping[str, Any]) -> FaultRule:
    return rule if isinstance(rule, FaultRule) else FaultRule.model_validate(rule)


def _id(rule: FaultRule) -> str:
    assert rule.id is not None
    return rule.id


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch."""
    if not isinstance(patch, Mapping):
        return patch
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result
