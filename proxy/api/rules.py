"""Typed fault rules: `chaos.fault(api=..., group=...).error("NOT_COORDINATOR", times=1)`.

A `FaultBuilder` holds a rule's match (and its `when`, `chain`, id, description); each of its
action methods adds one action of the rule model (`faults.actions`: error,
error_after_forward, delay, drop_request, drop_response, close, throttle, hold) with a dosage,
checks the rule with `faults.model.FaultRule` (so a mistake fails here, before any request,
as a `RuleRejected` naming the field, worded as the admin API words it) and installs it. The
rule sent is the JSON a user would write, so the proxy validates exactly what was checked.

The builder does not know how a rule is installed: it is handed an `install` callable, so the
sync API's builder returns a `Fault` and the async API's an awaitable of an `AsyncFault`,
from one definition of every action.

`Fault` is the handle of an installed rule: its id, `remove()`, its statistics
(`injections()`, `matched()`), `release()` for the requests a hold rule parked, `wait()` for
the first event it touched; as a context manager it removes the rule on exit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, Literal, TypedDict, TypeVar, Unpack

from pydantic import BaseModel, ValidationError

from kafka_chaos_proxy.faults.model import FaultRule, validation_problems
from kafka_chaos_proxy.proxy.api.events import DEFAULT_TIMEOUT_S, Event, EventQuery, Events
from kafka_chaos_proxy.proxy.client import AdminClient, RuleRejected

R = TypeVar("R")
ApiName = str | int


class Dosage(TypedDict, total=False):
    """How much of the matching traffic gets the fault (the rule model's `dosage`)."""

    times: int  # at most this many injections (max_injections)
    probability: float  # chance per eligible match, 0..1 (seeded by the proxy's --seed)
    skip_first: int  # let this many matches through first
    start_after_ms: int  # inactive for this long after the rule is installed
    active_for_ms: int  # active for this long once started


_DOSAGE_FIELDS = {"times": "max_injections", "probability": "probability",
                  "skip_first": "skip_first", "start_after_ms": "start_after_ms",
                  "active_for_ms": "active_for_ms"}


class FaultArgs(TypedDict, total=False):
    """Which requests a rule applies to, besides `api` (the rule model's `match`), and the
    rule's own fields (id, description, when, chain)."""

    group: str  # group_id
    member: str  # member_id
    instance: str  # group_instance_id
    client_id: str  # glob on the whole client id
    client_id_regex: str
    generation: int  # generation_id
    member_epoch: int  # KIP-848
    versions: Sequence[int]
    broker: int  # upstream node id; -1 the bootstrap listener
    connection: int  # proxy connection id
    any: bool  # every request (needs nothing else named)
    # The rule itself:
    id: str
    description: str
    when: Mapping[str, Any] | BaseModel  # triggers: {"after": {...}, "until": ..., "group": ...}
    chain: bool  # later rules may act on the same request too


_MATCH_FIELDS = {"group": "group_id", "member": "member_id", "instance": "group_instance_id",
                 "client_id": "client_id", "client_id_regex": "client_id_regex",
                 "generation": "generation_id", "member_epoch": "member_epoch",
                 "versions": "versions", "broker": "broker", "connection": "connection",
                 "any": "any"}
_RULE_FIELDS = ("id", "description", "when", "chain")


def check_rule(rule: Mapping[str, Any]) -> FaultRule:
    """The rule as the proxy will read it; `RuleRejected` with the proxy's wording if not."""
    try:
        return FaultRule.model_validate(dict(rule))
    except ValidationError as exc:
        raise RuleRejected.from_problems(validation_problems(exc.errors())) from None


def rule_json(rule: Mapping[str, Any] | FaultRule) -> dict[str, Any]:
    """A rule to send: a model as its JSON (without defaults), a mapping checked as it is."""
    if isinstance(rule, FaultRule):
        return rule.model_dump(mode="json", exclude_defaults=True)
    check_rule(rule)
    return dict(rule)


def _json(value: Any) -> Any:
    return value.model_dump(mode="json", exclude_none=True) if isinstance(value, BaseModel) \
        else value


class FaultBuilder(Generic[R]):
    """A rule's match; each action method completes the rule and installs it.

    `api` is one API (name or key) or several; the other keywords are `FaultArgs`.
    """

    def __init__(self, install: Callable[[dict[str, Any]], R],
                 api: ApiName | Sequence[ApiName] | None = None,
                 **match: Unpack[FaultArgs]) -> None:
        unknown = set(match) - set(FaultArgs.__annotations__)
        if unknown:
            raise TypeError(f"unknown fault() argument(s) {', '.join(sorted(unknown))}; use "
                            f"api, {', '.join(FaultArgs.__annotations__)}")
        self._install = install
        fields: dict[str, Any] = {}
        if api is not None:
            fields["apis"] = [api] if isinstance(api, str | int) else list(api)
        given: dict[str, Any] = dict(match)
        for key, name in _MATCH_FIELDS.items():
            if given.get(key) is not None:
                value = given[key]
                fields[name] = list(value) if key == "versions" else value
        self._match = fields
        self._rule = {key: _json(given[key]) for key in _RULE_FIELDS
                      if given.get(key) is not None}

    def rule(self, action: Mapping[str, Any], **dosage: Unpack[Dosage]) -> dict[str, Any]:
        """The complete rule JSON for `action` (checked, not installed)."""
        unknown = set(dosage) - set(_DOSAGE_FIELDS)
        if unknown:
            raise TypeError(f"unknown dosage argument(s) {', '.join(sorted(unknown))}; use "
                            f"{', '.join(_DOSAGE_FIELDS)}")
        out: dict[str, Any] = {**self._rule, "match": dict(self._match), "action": dict(action)}
        given: dict[str, Any] = dict(dosage)
        amounts = {_DOSAGE_FIELDS[k]: v for k, v in given.items() if v is not None}
        if amounts:
            out["dosage"] = amounts
        check_rule(out)
        return out

    def action(self, action: Mapping[str, Any], **dosage: Unpack[Dosage]) -> R:
        """Install the rule with any registered action, given as its JSON ({"type": ...})."""
        return self._install(self.rule(action, **dosage))

    def _act(self, kind: str, fields: Mapping[str, Any], dosage: Dosage) -> R:
        action = {"type": kind, **{k: _json(v) for k, v in fields.items() if v is not None}}
        return self.action(action, **dosage)

    def error(self, error: str | int, *, broker_consistent: bool | None = None,
              **dosage: Unpack[Dosage]) -> R:
        """Answer with a synthesized error response; the broker never sees the request.
        `broker_consistent` (UNKNOWN_MEMBER_ID only) removes the member at the broker first."""
        return self._act("error", {"error": error, "broker_consistent": broker_consistent},
                         dosage)

    def error_after_forward(self, error: str | int, **dosage: Unpack[Dosage]) -> R:
        """Forward the request (the broker acts on it), but tell the client it failed."""
        return self._act("error_after_forward", {"error": error}, dosage)

    def delay(self, fixed_ms: int = 0, *, jitter_ms: int | None = None,
              distribution: Literal["uniform", "normal", "exponential"] | None = None,
              side: Literal["request", "response"] | None = None,
              **dosage: Unpack[Dosage]) -> R:
        """Hold the request (or, side="response", its answer) for fixed_ms + jitter."""
        return self._act("delay", {"fixed_ms": fixed_ms or None, "jitter_ms": jitter_ms,
                                   "distribution": distribution, "side": side}, dosage)

    def drop_request(self, *, close_after_ms: int | None = None,
                     **dosage: Unpack[Dosage]) -> R:
        """Swallow the request; the connection is closed `close_after_ms` later if given."""
        return self._act("drop_request", {"close_after_ms": close_after_ms}, dosage)

    def drop_response(self, *, close_after_ms: int | None = None,
                      **dosage: Unpack[Dosage]) -> R:
        """Forward the request, swallow the broker's answer."""
        return self._act("drop_response", {"close_after_ms": close_after_ms}, dosage)

    def close(self, *, when: Literal["before", "after"] | None = None,
              mode: Literal["graceful", "reset"] | None = None,
              **dosage: Unpack[Dosage]) -> R:
        """Close the client connection before forwarding (or when the answer arrives)."""
        return self._act("close", {"when": when, "mode": mode}, dosage)

    def throttle(self, bytes_per_s: int, **dosage: Unpack[Dosage]) -> R:
        """Limit the connection's bandwidth while matching requests keep coming."""
        return self._act("throttle", {"bytes_per_s": bytes_per_s}, dosage)

    def hold(self, *, timeout_ms: int, until: Mapping[str, Any] | BaseModel | None = None,
             count: int | None = None, side: Literal["request", "response"] | None = None,
             on_timeout: Literal["release", "drop", "error", "close"] | None = None,
             error: str | int | None = None, **dosage: Unpack[Dosage]) -> R:
        """Park the request (or its answer) until `until` happened `count` times, a
        `Fault.release()`, or `timeout_ms` (then `on_timeout`)."""
        return self._act("hold", {"timeout_ms": timeout_ms, "until": until, "count": count,
                                  "side": side, "on_timeout": on_timeout, "error": error},
                         dosage)


class Fault:
    """An installed rule. A context manager: the rule is removed on exit."""

    def __init__(self, admin: AdminClient, stored: Mapping[str, Any], baseline: int) -> None:
        self._admin = admin
        self.rule: dict[str, Any] = dict(stored)
        self.id: str = str(stored["id"])
        #: The newest event before the rule was installed: `wait` reads on from here.
        self.baseline = baseline

    def __repr__(self) -> str:
        return f"Fault({self.id!r})"

    def state(self) -> dict[str, Any]:
        """The rule as the proxy holds it now, with `stats` (and `trigger` state)."""
        return self._admin.rule(self.id)

    def injections(self) -> int:
        """Faults this rule applied so far."""
        return int(self.state()["stats"]["injected"])

    def matched(self) -> int:
        """Requests this rule matched so far (while enabled)."""
        return int(self.state()["stats"]["matched"])

    def enable(self) -> None:
        self._admin.set_enabled(self.id, True)

    def disable(self) -> None:
        self._admin.set_enabled(self.id, False)

    def release(self) -> int:
        """Continue every request or response this (hold) rule parked; how many there were."""
        return int(self._admin.release_rule_holds(self.id).get("released", 0))

    def remove(self) -> None:
        """Delete the rule (nothing happens if it is gone already)."""
        self._admin.remove_rule(self.id, missing_ok=True)

    def wait(self, timeout: float = DEFAULT_TIMEOUT_S, **query: Unpack[EventQuery]) -> Event:
        """The first event this rule touched since it was installed (`EventTimeout` if none
        within `timeout`); `query` narrows it further."""
        query["rule"] = self.id
        return Events(self._admin, self.baseline).wait(timeout=timeout, **query)

    def __enter__(self) -> Fault:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def install(admin: AdminClient, rule: Mapping[str, Any] | FaultRule) -> Fault:
    """Check and store a rule; its `Fault`."""
    body = rule_json(rule)
    baseline = admin.last_seq()
    return Fault(admin, admin.add_rule(body), baseline)
