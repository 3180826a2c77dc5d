"""Triggers: what a rule (or a hold) waits for, evaluated inside the proxy on the data path.

A race inside one rebalance is an order of events, and the only place that sees that order
without slop is the proxy itself. So a rule can wait for something before it acts (`When`):

* an **event** (`EventPattern`): a coordination request arriving (`phase: request`), an
  exchange ending with its answer written, dropped or cut off (`phase: response`, the default),
  or another rule's injection (`rule: <id>`, phase `injected`); after `count` of them;
* until another event disarms it (`until`);
* and, per request, a condition on the group's live state (`GroupCondition`): a JoinGroup of
  the group pending, a member without partitions, the Nth rebalance since the group was first
  stable, the JoinGroup round that will create generation G. The proxy computes that state
  (`GroupView`, implemented in `proxy.group_live`); this package only asks.

Events are flat dicts with the keys of the proxy's event log (`api`, `group`, `member_id`,
`instance_id`, `client_id`, `generation`, `error`, `outcome`, `fault`, `broker`,
`connection`) plus `phase` and, for injections, `rule`. `request_event` builds one from a
`RequestView`, so a request-phase event and an injection event carry the same facts as the
event log would.

Pure: imports `faults.body_fields`, `faults.names`, `faults.patterns`, `faults.model_base`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, Protocol

from pydantic import Field, StrictBool, StrictInt, field_validator, model_validator

from kafka_chaos_proxy.faults.body_fields import BODY_FIELDS, body_values
from kafka_chaos_proxy.faults.decision import RequestView
from kafka_chaos_proxy.faults.model_base import NAME_OR_NUMBER, RULE_ID_PATTERN, StrictModel
from kafka_chaos_proxy.faults.names import api_names, resolve_api, resolve_error, show
from kafka_chaos_proxy.faults.patterns import ClientIdPattern, checked, compile_glob

Phase = Literal["request", "response", "injected"]
OUTCOMES = ("ok", "error_injected", "dropped", "closed", "upstream_closed")
MAX_COUNT = 100_000


def check_count(value: int) -> int:
    """A trigger's or a hold's `count`: 1..MAX_COUNT, or the validator's message."""
    if not 1 <= value <= MAX_COUNT:
        raise ValueError(f"count must be between 1 and {MAX_COUNT}, got {value}")
    return value


class EventPattern(StrictModel):
    """Which events count. Every field is optional; absent means "any"."""

    _what: ClassVar[str] = "event pattern"

    rule: str | None = Field(
        default=None, description="Another rule's id: its injections count (phase injected).")
    phase: Phase | None = Field(
        default=None,
        description="request: a coordination request reached the proxy; response (default): "
        "its exchange ended (answer written, dropped or cut off); injected: a rule injected.",
    )
    api: Annotated[str, NAME_OR_NUMBER] | None = Field(default=None, description="API name or key.")
    group_id: str | None = None
    member_id: str | None = None
    group_instance_id: str | None = None
    client_id: str | None = Field(default=None, description="Glob on the whole client id.")
    generation_id: StrictInt | None = Field(
        default=None, description="Generation (classic) or member epoch (KIP-848).")
    member_epoch: StrictInt | None = None
    error: str | None = Field(
        default=None, description="Error name the client got; NONE for no error.")
    outcome: Literal["ok", "error_injected", "dropped", "closed", "upstream_closed"] | None = None
    injected: StrictBool | None = Field(default=None, description="Only events a fault touched.")
    broker: StrictInt | None = None

    @field_validator("api", mode="before")
    @classmethod
    def _resolve_api(cls, value: Any) -> Any:
        return None if value is None else resolve_api(value)

    @field_validator("rule")
    @classmethod
    def _check_rule_id(cls, value: str | None) -> str | None:
        if value is not None and not RULE_ID_PATTERN.match(value):
            raise ValueError(f"rule {show(value)} is not a rule id (1-64 letters, digits, "
                             "'_', '.', ':' or '-')")
        return value

    @field_validator("error", mode="before")
    @classmethod
    def _resolve_error(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str) and value.upper() == "NONE":
            return "NONE"
        return resolve_error(value)

    @field_validator("client_id")
    @classmethod
    def _check_glob(cls, value: str | None) -> str | None:
        return checked(value, "client_id", compile_glob)

    @model_validator(mode="after")
    def _consistent(self) -> EventPattern:
        if self.rule is not None and self.phase not in (None, "injected", "response"):
            raise ValueError(
                f"rule {self.rule!r} names an injection: phase must be injected (the default "
                f"with rule) or response (the faulted exchange ended), not {self.phase!r}")
        if self.phase == "request" and (self.error is not None or self.outcome is not None):
            raise ValueError("phase request has no answer yet: drop error/outcome, or use "
                             "phase response")
        if not any(getattr(self, name) is not None for name in type(self).model_fields):
            raise ValueError("an event pattern needs at least one field, e.g. "
                             "{api: JoinGroup} or {rule: other-rule}")
        return self

    @property
    def effective_phase(self) -> Phase:
        if self.phase is not None:
            return self.phase
        return "injected" if self.rule is not None else "response"


class GroupCondition(StrictModel):
    """A condition on the group's live state, checked for every request the rule matches."""

    _what: ClassVar[str] = "group condition"

    group_id: str | None = Field(
        default=None, description="The group to look at; default: the request's own group.")
    join_pending: StrictBool | None = Field(
        default=None, description="true: a JoinGroup of the group is at the proxy or the "
        "broker, unanswered; false: none is.")
    unassigned: str | None = Field(
        default=None, description="Client-id glob of a member: true while it owns no "
        "partitions (never assigned, revoked, or gone).")
    rebalance: StrictInt | None = Field(
        default=None, description="Only in the Nth rebalance since the group was first stable "
        "(from its start until the next one starts).", json_schema_extra={"minimum": 1})
    creates_generation: StrictInt | None = Field(
        default=None, description="Only JoinGroup requests of the round that will create "
        "this generation (classic groups).", json_schema_extra={"minimum": 1})

    @field_validator("rebalance", "creates_generation")
    @classmethod
    def _positive(cls, value: int | None, info: Any) -> int | None:
        if value is not None and value < 1:
            raise ValueError(f"{info.field_name} must be >= 1, got {value}")
        return value

    @field_validator("unassigned")
    @classmethod
    def _check_unassigned(cls, value: str | None) -> str | None:
        return checked(value, "unassigned", compile_glob)

    @model_validator(mode="after")
    def _says_something(self) -> GroupCondition:
        names = ("join_pending", "unassigned", "rebalance", "creates_generation")
        if all(getattr(self, name) is None for name in names):
            raise ValueError(f"a group condition needs one of {', '.join(names)}")
        return self


class When(StrictModel):
    """When a rule acts: armed after an event, disarmed by another, under a group condition."""

    _what: ClassVar[str] = "when"

    after: EventPattern | None = Field(
        default=None, description="Armed once this has happened `count` times (counted from "
        "when the rule was added or enabled).")
    count: StrictInt = Field(default=1, json_schema_extra={"minimum": 1, "maximum": MAX_COUNT})
    until: EventPattern | None = Field(
        default=None, description="Disarmed for good (until re-enabled) once this happens.")
    group: GroupCondition | None = None

    @field_validator("count")
    @classmethod
    def _check_count(cls, value: int) -> int:
        return check_count(value)

    @model_validator(mode="after")
    def _says_something(self) -> When:
        if self.after is None and self.until is None and self.group is None:
            raise ValueError("when needs after, until or group (or drop it: the rule is "
                             "then armed from the start)")
        if self.count != 1 and self.after is None:
            raise ValueError("count counts the events of after; set after or drop count")
        return self

    def rules_named(self) -> list[str]:
        """Rule ids this trigger depends on (for unknown-rule and cycle checks)."""
        return [p.rule for p in (self.after, self.until) if p is not None and p.rule]


# --------------------------------------------------------------------------- evaluation


@dataclass(frozen=True, slots=True)
class CompiledPattern:
    """An `EventPattern` resolved once: the client-id glob compiled, the phase fixed."""

    pattern: EventPattern
    phase: Phase
    client_id: ClientIdPattern | None

    def matches(self, event: Mapping[str, Any]) -> bool:
        p = self.pattern
        if event.get("phase", "response") != self.phase:
            return False
        if p.rule is not None and event.get("rule") != p.rule and p.rule not in (
                event.get("rules") or ()):
            return False
        if p.api is not None and event.get("api") != p.api:
            return False
        return self._who_matches(event) and self._what_matches(event)

    def _who_matches(self, event: Mapping[str, Any]) -> bool:
        p = self.pattern
        if p.group_id is not None and event.get("group") != p.group_id:
            return False
        if p.member_id is not None and event.get("member_id") != p.member_id:
            return False
        if p.group_instance_id is not None and event.get("instance_id") != p.group_instance_id:
            return False
        if self.client_id is not None and not self.client_id.fullmatch(
                str(event.get("client_id") or "")):
            return False
        return p.broker is None or event.get("broker") == p.broker

    def _what_matches(self, event: Mapping[str, Any]) -> bool:
        p = self.pattern
        for wanted in (p.generation_id, p.member_epoch):
            if wanted is not None and event.get("generation") != wanted:
                return False
        if p.error is not None and (event.get("error") or "NONE") != p.error:
            return False
        if p.outcome is not None and event.get("outcome") != p.outcome:
            return False
        return p.injected is None or bool(event.get("fault") or event.get("rule")) == p.injected


def compile_pattern(pattern: EventPattern) -> CompiledPattern:
    return CompiledPattern(
        pattern, pattern.effective_phase,
        compile_glob(pattern.client_id) if pattern.client_id is not None else None)


class GroupView(Protocol):
    """The group's live state as the proxy folds it (`proxy.group_live.GroupLiveState`)."""

    def join_pending(self, group_id: str) -> bool:
        """A JoinGroup of the group has reached the proxy and its answer not the client."""
        ...

    def unassigned(self, group_id: str, client_id: ClientIdPattern) -> bool:
        """Some member whose client id matches owns no partitions (or none matches)."""
        ...

    def rebalance_number(self, group_id: str) -> int:
        """Rebalances started since the group was first stable (0: never rebalanced since)."""
        ...

    def round_generation(self, group_id: str) -> int | None:
        """The generation the open (or next) JoinGroup round will create; None: unknown."""
        ...


@dataclass(frozen=True, slots=True)
class CompiledCondition:
    condition: GroupCondition
    unassigned: ClientIdPattern | None

    def holds(self, request: RequestView, view: GroupView | None) -> bool:
        c = self.condition
        group_id = c.group_id or request_group(request)
        if view is None or not group_id:
            return False
        if c.join_pending is not None and view.join_pending(group_id) != c.join_pending:
            return False
        if self.unassigned is not None and not view.unassigned(group_id, self.unassigned):
            return False
        if c.rebalance is not None and view.rebalance_number(group_id) != c.rebalance:
            return False
        return c.creates_generation is None or (
            request.api_key == _JOIN_GROUP_KEY
            and view.round_generation(group_id) == c.creates_generation)


def compile_condition(condition: GroupCondition) -> CompiledCondition:
    return CompiledCondition(
        condition,
        compile_glob(condition.unassigned) if condition.unassigned is not None else None)


_JOIN_GROUP_KEY = 11


def request_group(request: RequestView) -> str | None:
    """The group a request names (the first one of a batched request), else None."""
    return _first(request, "group_id")


def _first(request: RequestView, field_name: str) -> Any:
    name = api_names().get(request.api_key)
    if name is None or name not in BODY_FIELDS[field_name]:
        return None
    body = request.body()
    if body is None:
        return None
    for value in body_values(body, name, field_name):
        if value not in (None, ""):
            return value
    return None


def request_event(request: RequestView, phase: Phase, rule: str | None = None) -> dict[str, Any]:
    """The trigger event for a request arriving (`request`) or a rule injecting on it
    (`injected`), with the keys the event log uses."""
    generation = _first(request, "generation_id")
    if generation is None:
        generation = _first(request, "member_epoch")
    return {
        "phase": phase,
        "rule": rule,
        "api": api_names().get(request.api_key),
        "connection": request.connection_id,
        "correlation_id": request.correlation_id,
        "broker": request.broker_node,
        "client_id": request.client_id,
        "group": request_group(request),
        "member_id": _first(request, "member_id"),
        "instance_id": _first(request, "group_instance_id"),
        "generation": generation,
    }
