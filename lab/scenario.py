"""Scenarios: named, versioned scripts of fault rules that reproduce one coordination race.

A scenario says how to set the group up (members, protocol, commit mode, timeouts, partitions,
records), which rules to add or remove and when, and what "the client coped" means (recovery
and stall bounds). The same file drives `kafka-chaos-proxy scenario run` against any proxy and
one column of the client matrix, so a race found in the matrix is reproducible by hand.

Why rules that match deterministically are preferred over timed steps: "the SyncGroup of
generation 2" is a property of the request (match.generation_id, dosage.skip_first and
max_injections), so the fault lands on exactly that request however fast the client is. A timed
step ("at 5 s") races the client and reproduces only some of the time. Timed and event-triggered
steps exist for what a rule cannot express: starting a member to force a rebalance, producing
records after a fault so that a consumer that silently stopped is visible as missing records,
or arming a rule only after the group is stable.

Pure: parses and validates, never talks to a proxy. Imports only `faults.model`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from faults.model import FaultRule, resolve_api

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")
HARNESS_EVENTS = ("started", "assigned", "revoked", "lost", "record", "commit", "error",
                  "consume_returned", "exited")
MAX_MEMBERS = 8
MAX_RECORDS = 100_000


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Members(_Strict):
    """The consumers of the group at the start of the scenario (more can join in steps)."""

    count: int = Field(default=1, ge=1, le=MAX_MEMBERS)
    membership: Literal["dynamic", "static"] = "dynamic"
    protocol: Literal["classic", "consumer"] = "classic"
    commit: Literal["auto", "manual"] = "auto"
    session_timeout_ms: int = Field(default=6000, ge=1000, le=300_000)
    heartbeat_interval_ms: int = Field(default=1000, ge=100, le=60_000)
    rebalance_timeout_ms: int = Field(default=10000, ge=1000, le=300_000)
    #: Seconds between starting consecutive initial members, so joins happen in a known order.
    start_stagger_s: float = Field(default=0.0, ge=0.0, le=30.0)

    @model_validator(mode="after")
    def _heartbeat_below_session(self) -> Members:
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            raise ValueError(
                f"heartbeat_interval_ms ({self.heartbeat_interval_ms}) must be below "
                f"session_timeout_ms ({self.session_timeout_ms}); clients reject it otherwise"
            )
        return self


class Setup(_Strict):
    members: Members = Field(default_factory=Members)
    partitions: int = Field(default=3, ge=1, le=64)
    #: Records produced before the members start (keys and values carry a sequence number).
    records: int = Field(default=60, ge=0, le=MAX_RECORDS)


class Trigger(_Strict):
    """An event that fires a step: a proxy coordination event or a harness event.

    Proxy events: `api` plus optional `generation_id`/`member_epoch`/`error`/`injected`, the
    step fires on the `occurrence`-th matching event. Harness events: `harness_event` (e.g.
    assigned), fired when `count` such events have been seen (from `member` only, if given).
    """

    api: str | None = None
    generation_id: int | None = None
    member_epoch: int | None = None
    error: str | None = None
    injected: bool | None = Field(default=None, description="only events a fault touched")
    occurrence: int = Field(default=1, ge=1, le=1000)
    harness_event: str | None = None
    count: int = Field(default=1, ge=1, le=100_000)
    member: int | None = Field(default=None, ge=0, lt=MAX_MEMBERS * 2)

    @field_validator("api")
    @classmethod
    def _canonical_api(cls, value: str | None) -> str | None:
        return resolve_api(value) if value is not None else None

    @field_validator("harness_event")
    @classmethod
    def _known_event(cls, value: str | None) -> str | None:
        if value is not None and value not in HARNESS_EVENTS:
            raise ValueError(f"unknown harness_event {value!r}; one of {', '.join(HARNESS_EVENTS)}")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> Trigger:
        if (self.api is None) == (self.harness_event is None):
            raise ValueError("a trigger needs exactly one of api (proxy event) or harness_event")
        proxy_only = (self.generation_id, self.member_epoch, self.error, self.injected)
        if self.harness_event is not None and any(v is not None for v in proxy_only):
            raise ValueError("generation_id/member_epoch/error/injected apply to api triggers")
        return self

    @property
    def kind(self) -> Literal["proxy", "harness"]:
        return "proxy" if self.api is not None else "harness"


class Step(_Strict):
    """When (`at` seconds after the members start, or `on` an event; neither means before the
    members start) and what: add rules, remove rules by id, produce records, start or stop
    members."""

    description: str = ""
    at: float | None = Field(default=None, ge=0.0, le=3600.0)
    on: Trigger | None = None
    #: With `on`: fire this long after the trigger, e.g. "7 s after member 0 consumed record
    #: 60", so that periodic auto-commits of what came before have happened.
    after_s: float = Field(default=0.0, ge=0.0, le=600.0)
    add: list[dict[str, Any]] = Field(default_factory=list)
    remove: list[str] = Field(default_factory=list)
    produce: int = Field(default=0, ge=0, le=MAX_RECORDS)
    start_members: int = Field(default=0, ge=0, le=MAX_MEMBERS)
    stop_members: list[int] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _flatten_when(cls, data: Any) -> Any:
        """Accept `when: {at: ..}` / `when: {on: ..}` as well as flat `at`/`on`; YAML 1.1
        reads a bare `on` key as the boolean True, which is mapped back here."""
        if not isinstance(data, Mapping):
            return data
        data = {("on" if k is True else k): v for k, v in data.items()}
        when = data.pop("when", None)
        if when is not None:
            if not isinstance(when, Mapping):
                raise ValueError("when must be a mapping with 'at' or 'on'")
            when = {("on" if k is True else k): v for k, v in when.items()}
            for key, value in when.items():
                if key not in ("at", "on"):
                    raise ValueError(f"unknown key {key!r} in when; use 'at' or 'on'")
                data[key] = value
        return data

    @field_validator("add")
    @classmethod
    def _rules_valid(cls, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for i, rule in enumerate(rules):
            try:
                parsed = FaultRule.model_validate(rule)
            except ValidationError as exc:
                raise ValueError(f"add[{i}]: {_first_error(exc)}") from None
            if parsed.id is None:
                raise ValueError(f"add[{i}]: give every scenario rule an id, so steps and "
                                 "evidence can name it")
        return rules

    @model_validator(mode="after")
    def _does_something(self) -> Step:
        if self.at is not None and self.on is not None:
            raise ValueError("a step has either 'at' or 'on', not both")
        if self.after_s and self.on is None:
            raise ValueError("after_s delays an 'on' step; for a timed step use 'at'")
        if not (self.add or self.remove or self.produce or self.start_members
                or self.stop_members):
            raise ValueError("a step must add, remove, produce, start_members or stop_members")
        return self

    @property
    def before_start(self) -> bool:
        """Installed before any member starts: the deterministic kind of step."""
        return self.at is None and self.on is None


class OutcomeCriteria(_Strict):
    """What the run is judged against; the classifier, not the scenario, names the outcome."""

    #: Every record must be consumed within this long after the first injected fault.
    recovery_bound_s: float = Field(default=30.0, gt=0, le=600)
    #: No new record for this long, with records outstanding, is a stall.
    stall_bound_s: float = Field(default=15.0, gt=0, le=600)
    #: After the last record, wait this long for late duplicates before ending the run.
    settle_s: float = Field(default=3.0, ge=0, le=60)
    #: Hard bound on one run (members are stopped after it).
    max_duration_s: float = Field(default=60.0, gt=0, le=1800)
    #: The scenario is meaningless if no rule ever injected a fault (e.g. an API the client
    #: never sends); such runs are reported as not exercised rather than as recovered.
    expect_injection: bool = True


class Scenario(_Strict):
    name: str
    version: int = Field(ge=1)
    description: str
    #: Group protocols the scenario is meaningful under (default: the setup's protocol). A
    #: scenario about OffsetCommit applies to both; one about SyncGroup only to classic, since a
    #: KIP-848 member never sends SyncGroup. The matrix runs a client under the first listed
    #: protocol it speaks.
    protocols: list[Literal["classic", "consumer"]] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    #: Where the race comes from (issue, bug report), for the matrix notes.
    references: list[str] = Field(default_factory=list)
    setup: Setup = Field(default_factory=Setup)
    steps: list[Step] = Field(default_factory=list)
    outcome: OutcomeCriteria = Field(default_factory=OutcomeCriteria)

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError(f"name {value!r} must be lower-case letters, digits and '-' "
                             "(it names artifact directories and matrix columns)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        ids: set[str] = set()
        for i, step in enumerate(self.steps):
            for rule in step.add:
                rid = str(rule["id"])
                if rid in ids:
                    raise ValueError(f"steps[{i}]: rule id {rid!r} is added twice")
                ids.add(rid)
            for rid in step.remove:
                if rid not in ids:
                    raise ValueError(f"steps[{i}]: removes {rid!r}, which no earlier step adds")
        total_members = self.setup.members.count + sum(s.start_members for s in self.steps)
        for i, step in enumerate(self.steps):
            for idx in step.stop_members:
                if not 0 <= idx < total_members:
                    raise ValueError(f"steps[{i}]: stop_members index {idx} is not a member "
                                     f"(0..{total_members - 1})")
            if step.on is not None and step.on.member is not None and \
                    step.on.member >= total_members:
                raise ValueError(f"steps[{i}]: trigger member {step.on.member} does not exist")
        if self.outcome.stall_bound_s >= self.outcome.max_duration_s:
            raise ValueError("outcome.stall_bound_s must be below outcome.max_duration_s")
        return self

    @property
    def protocol(self) -> str:
        return self.setup.members.protocol

    @property
    def applicable_protocols(self) -> list[str]:
        return list(self.protocols) or [self.setup.members.protocol]

    @property
    def total_members(self) -> int:
        return self.setup.members.count + sum(s.start_members for s in self.steps)

    @property
    def total_records(self) -> int:
        return self.setup.records + sum(s.produce for s in self.steps)

    def rules(self) -> list[FaultRule]:
        return [FaultRule.model_validate(r) for s in self.steps for r in s.add]


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__")
    msg = str(err.get("msg", "")).removeprefix("Value error, ")
    return f"{loc}: {msg}" if loc else msg


def parse_scenario(data: Any, source: str = "<scenario>") -> Scenario:
    """Validate parsed YAML/JSON; the error names the source and the first bad field."""
    if not isinstance(data, Mapping):
        raise ScenarioError(f"{source}: a scenario is a mapping with name, version, steps, ...")
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(f"{source}: {_first_error(exc)}") from None


def load_scenario(path: str | Path) -> Scenario:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    scenario = parse_scenario(data, str(path))
    if path.stem != scenario.name:
        raise ScenarioError(f"{path}: file name must be the scenario name ({scenario.name}.yaml)")
    return scenario


def load_catalog(directory: str | Path) -> dict[str, Scenario]:
    """Every `*.yaml` scenario in a directory, by name, in name order."""
    out: dict[str, Scenario] = {}
    for path in sorted(Path(directory).glob("*.yaml")):
        scenario = load_scenario(path)
        out[scenario.name] = scenario
    return out
