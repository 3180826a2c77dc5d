"""Scenarios: named, versioned scripts of fault rules that reproduce one coordination race.

A scenario says how to set the group up (members, protocol, commit mode, timeouts, partitions,
records), which rules to add or remove and when, and what a correct client does (`expect:`, one
typed expectation a line, judged by `lab.matrix.verdict`; without it a default set built from
the recovery and stall bounds). The same file drives `kafka-chaos-proxy scenario run` against
any proxy and one column of the client matrix, so a race found in the matrix is reproducible by
hand.

Why rules that match deterministically are preferred over timed steps: "the SyncGroup of
generation 2" is a property of the request (match.generation_id, dosage.skip_first and
max_injections), so the fault lands on exactly that request however fast the client is. A timed
step ("at 5 s") races the client and reproduces only some of the time. Timed and event-triggered
steps exist for what a rule cannot express: starting a member to force a rebalance, producing
records after a fault so that a consumer that silently stopped is visible as missing records,
or arming a rule only after the group is stable.

Beyond rules, a step can change what the group runs on and who is in it: the topology
(`setup.brokers: 3`, then `move_coordinator`, `stop_broker`, `restart_broker`: a real
coordinator failover, not a synthesized NOT_COORDINATOR), member processes (`kill_members`,
`pause_members`, `resume_members`: SIGKILL, SIGSTOP/SIGCONT of the harness) and continuous
production in the background (`produce_rate`). docs/scenarios.md documents every key.

Pure: parses and validates, never talks to a proxy. Imports only `faults.model`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, cast

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from kafka_chaos_proxy.faults.model import FaultRule, resolve_api, resolve_error

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")
HARNESS_EVENTS = ("started", "assigned", "revoked", "lost", "record", "commit", "error",
                  "consume_returned", "exited")
MAX_MEMBERS = 8
MAX_RECORDS = 100_000
#: Bounds of one `produce_rate` step. The product is bounded too: every record becomes an
#: event line per consuming member, and the runner keeps them in memory for the verdict.
MAX_RATE_PER_S = 10_000
MAX_RATE_DURATION_S = 600
MAX_RATE_RECORDS = 1_000_000
MAX_PAUSE_MS = 600_000
BROKER_COUNTS = (1, 3)
#: Kafka's legal characters for a group.instance.id (and its length bound).
INSTANCE_ID_PATTERN = r"^[A-Za-z0-9._-]{1,249}$"


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: Values of the harness options (docs/scenarios.md says which clients support which).
CommitMode = Literal["auto", "manual", "both"]
Assignor = Literal["range", "roundrobin", "sticky", "cooperative-sticky"]
ConsumeMode = Literal["loop", "once"]
MAX_PROCESSING_DELAY_MS = 60_000


class MemberOverride(_Strict):
    """Settings of one member that differ from the group's (`setup.members.overrides`).

    Every key of `Members` that describes one consumer can be overridden. An absent key (or
    null) keeps the group's setting, except `group_instance_id`: null makes this member
    dynamic in a static group, a string makes it static with exactly that id (two members
    given the same id is how a scenario stages a fenced instance), and `assignor` /
    `request_timeout_ms`, where null is the library's default.
    """

    session_timeout_ms: int | None = Field(default=None, ge=1000, le=300_000)
    heartbeat_interval_ms: int | None = Field(default=None, ge=100, le=60_000)
    rebalance_timeout_ms: int | None = Field(default=None, ge=1000, le=300_000)
    request_timeout_ms: int | None = Field(default=None, ge=1000, le=300_000)
    commit: CommitMode | None = None
    commit_in_revoke: bool | None = None
    assignor: Assignor | None = None
    processing_delay_ms: int | None = Field(default=None, ge=0, le=MAX_PROCESSING_DELAY_MS)
    async_processing: bool | None = None
    consume_mode: ConsumeMode | None = None
    sarama_return_errors: bool | None = None
    group_instance_id: str | None = Field(default=None, pattern=INSTANCE_ID_PATTERN)


#: Override keys where an explicit null means "the library's default", not "the group's".
_NULL_IS_LIBRARY_DEFAULT = ("assignor", "request_timeout_ms")


class Members(_Strict):
    """The consumers of the group at the start of the scenario (more can join in steps).

    Besides the group's shape (count, membership, protocol), these are the harness options
    every member runs with unless `overrides` says otherwise. Unset optional ones
    (`request_timeout_ms`, `assignor`) leave the library's default; the others default to
    what the libraries do by default (sarama's Return.Errors false) or to the plain
    application (a consume loop, no processing delay).
    """

    count: int = Field(default=1, ge=1, le=MAX_MEMBERS)
    membership: Literal["dynamic", "static"] = "dynamic"
    protocol: Literal["classic", "consumer"] = "classic"
    #: auto: the library's auto-commit; manual: explicit commits after each poll/batch;
    #: both: auto-commit on AND the explicit commits.
    commit: CommitMode = "auto"
    #: Commit the processed offsets in the revoke callback (on top of `commit`).
    commit_in_revoke: bool = False
    session_timeout_ms: int = Field(default=6000, ge=1000, le=300_000)
    heartbeat_interval_ms: int = Field(default=1000, ge=100, le=60_000)
    rebalance_timeout_ms: int = Field(default=10000, ge=1000, le=300_000)
    #: The client's request timeout (the library setting per client: docs/scenarios.md).
    request_timeout_ms: int | None = Field(default=None, ge=1000, le=300_000)
    #: The client-side partition assignor (classic protocol only); None: library default.
    assignor: Assignor | None = None
    #: Time the application spends on each record before it counts as processed.
    processing_delay_ms: int = Field(default=0, ge=0, le=MAX_PROCESSING_DELAY_MS)
    #: sarama: a goroutine per message, MarkMessage when each finishes (out of order).
    async_processing: bool = False
    #: sarama: `loop` calls Consume again after each return, `once` calls it a single time.
    consume_mode: ConsumeMode = "loop"
    #: sarama's Consumer.Return.Errors (the library default is false).
    sarama_return_errors: bool = False
    #: Seconds between starting consecutive initial members, so joins happen in a known order.
    start_stagger_s: float = Field(default=0.0, ge=0.0, le=30.0)
    #: Per-member settings by member index (initial members and those started by steps).
    overrides: dict[int, MemberOverride] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _heartbeat_below_session(self) -> Members:
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            raise ValueError(
                f"heartbeat_interval_ms ({self.heartbeat_interval_ms}) must be below "
                f"session_timeout_ms ({self.session_timeout_ms}); clients reject it otherwise"
            )
        self._check_member("", self._merge({}))
        for index in sorted(self.overrides):
            if not 0 <= index < MAX_MEMBERS * 2:
                raise ValueError(f"overrides: {index} is not a member index")
            settings = self.settings(index)
            if settings.heartbeat_interval_ms >= settings.session_timeout_ms:
                raise ValueError(
                    f"overrides.{index}: heartbeat_interval_ms "
                    f"({settings.heartbeat_interval_ms}) must be below session_timeout_ms "
                    f"({settings.session_timeout_ms})")
            self._check_member(f"overrides.{index}: ", settings)
        return self

    def _check_member(self, where: str, m: MemberSettings) -> None:
        if m.assignor is not None and self.protocol == "consumer":
            raise ValueError(f"{where}assignor: a client-side assignor is a classic-protocol "
                             "setting; under protocol consumer (KIP-848) the broker assigns")

    def settings(self, index: int) -> MemberSettings:
        """What member `index` runs with: the group's settings, then its override."""
        override = self.overrides.get(index)
        return self._merge(override.model_dump(exclude_unset=True) if override is not None
                           else {})

    def _merge(self, given: dict[str, Any]) -> MemberSettings:
        def pick(key: str) -> Any:
            if key in _NULL_IS_LIBRARY_DEFAULT and key in given:
                return given[key]
            value = given.get(key)
            return getattr(self, key) if value is None else value

        static = given["group_instance_id"] is not None if "group_instance_id" in given \
            else self.membership == "static"
        return MemberSettings(
            **{key: pick(key) for key in _MEMBER_KEYS},
            static=static,
            group_instance_id=given.get("group_instance_id"),
        )


class MemberSettings(BaseModel):
    """One member's effective settings (`Members.settings`). `group_instance_id` None with
    `static` set means "the runner names the instance", as for the group's static members."""

    model_config = ConfigDict(frozen=True)

    session_timeout_ms: int
    heartbeat_interval_ms: int
    rebalance_timeout_ms: int
    request_timeout_ms: int | None = None
    commit: CommitMode
    commit_in_revoke: bool = False
    assignor: Assignor | None = None
    processing_delay_ms: int = 0
    async_processing: bool = False
    consume_mode: ConsumeMode = "loop"
    sarama_return_errors: bool = False
    static: bool
    group_instance_id: str | None = None


#: The per-member settings `Members` carries as group defaults (all but the instance id).
_MEMBER_KEYS = tuple(k for k in MemberOverride.model_fields if k != "group_instance_id")


class Setup(_Strict):
    members: Members = Field(default_factory=Members)
    #: Brokers the scenario runs on: 1, or 3 (a KRaft cluster where topics are replicated
    #: three times with min.insync.replicas 2, so one broker can go away without losing
    #: acknowledged records). Topology steps need 3.
    brokers: Literal[1, 3] = 1
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


def _node_ref(value: Any, word: str) -> Any:
    """A node id (an int >= 0) or the one word the key allows, or an error that says so."""
    if value == word or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        return value
    raise ValueError(f"{value!r} is neither a node id nor {word!r}")


class StopBroker(_Strict):
    """Stop one broker: `node` is a node id or `coordinator` (the group's coordinator at that
    moment, asked of the brokers); `graceful` is a controlled shutdown (SIGTERM), `kill` a
    SIGKILL."""

    node: Literal["coordinator"] | int
    mode: Literal["graceful", "kill"] = "graceful"

    @field_validator("node", mode="before")
    @classmethod
    def _node_ref(cls, value: Any) -> Any:
        return _node_ref(value, "coordinator")


class RestartBroker(_Strict):
    """Start a stopped broker again: a node id, or `stopped` (every broker this run stopped
    that is not running)."""

    node: Literal["stopped"] | int

    @field_validator("node", mode="before")
    @classmethod
    def _node_ref(cls, value: Any) -> Any:
        return _node_ref(value, "stopped")


class PauseMembers(_Strict):
    """SIGSTOP the members' harness processes, SIGCONT them `ms` later: a GC pause or a poll
    loop that is too slow, as the group sees it."""

    members: list[int] = Field(min_length=1, max_length=MAX_MEMBERS * 2)
    ms: int = Field(ge=1, le=MAX_PAUSE_MS)


class ProduceRate(_Strict):
    """Produce continuously in the background: `records_per_s` for `duration_s`, with
    sequence numbers continuing those already produced."""

    records_per_s: float = Field(gt=0, le=MAX_RATE_PER_S)
    duration_s: float = Field(gt=0, le=MAX_RATE_DURATION_S)

    @model_validator(mode="after")
    def _bounded_total(self) -> ProduceRate:
        if self.records > MAX_RATE_RECORDS:
            raise ValueError(f"records_per_s x duration_s is {self.records} records; at most "
                             f"{MAX_RATE_RECORDS} per step")
        if self.records < 1:
            raise ValueError("records_per_s x duration_s is less than one record")
        return self

    @property
    def records(self) -> int:
        return int(self.records_per_s * self.duration_s)


#: The step keys that change the brokers, in the order a step applies them.
TOPOLOGY_KEYS = ("move_coordinator", "stop_broker", "restart_broker")


class Step(_Strict):
    """When (`at` seconds after the members start, or `on` an event; neither means before the
    members start) and what: add rules, remove rules by id, produce records (at once or at a
    rate), start, stop, kill, pause or resume members, move the coordinator, stop or restart
    a broker."""

    description: str = ""
    at: float | None = Field(default=None, ge=0.0, le=3600.0)
    on: Trigger | None = None
    #: With `on`: fire this long after the trigger, e.g. "7 s after member 0 consumed record
    #: 60", so that periodic auto-commits of what came before have happened.
    after_s: float = Field(default=0.0, ge=0.0, le=600.0)
    add: list[dict[str, Any]] = Field(default_factory=list)
    remove: list[str] = Field(default_factory=list)
    #: Release every hold these rules have parked now (a step as a hold's gate).
    release: list[str] = Field(default_factory=list)
    produce: int = Field(default=0, ge=0, le=MAX_RECORDS)
    start_members: int = Field(default=0, ge=0, le=MAX_MEMBERS)
    stop_members: list[int] = Field(default_factory=list)
    #: SIGKILL these members' harness processes (the evidence says the scenario killed them).
    kill_members: list[int] = Field(default_factory=list)
    pause_members: PauseMembers | None = None
    #: SIGCONT now (ends a pause early).
    resume_members: list[int] = Field(default_factory=list)
    produce_rate: ProduceRate | None = None
    #: Move the group coordinator to another broker for real (needs setup.brokers: 3).
    move_coordinator: bool = False
    stop_broker: StopBroker | None = None
    restart_broker: RestartBroker | None = None

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
        if not (self.add or self.remove or self.release or self.produce or self.start_members
                or self.stop_members or self.member_control or self.produce_rate
                or self.topology):
            raise ValueError("a step must add, remove, release, produce, produce_rate, "
                             "start_members, "
                             "stop_members, kill_members, pause_members, resume_members, "
                             "move_coordinator, stop_broker or restart_broker")
        return self

    @property
    def member_control(self) -> bool:
        return bool(self.kill_members or self.pause_members or self.resume_members)

    @property
    def topology(self) -> list[str]:
        """The topology keys this step uses, in the order it applies them."""
        return [key for key in TOPOLOGY_KEYS if getattr(self, key)]

    def member_indexes(self) -> list[tuple[str, int]]:
        """(field, index) of every member this step names, for validation."""
        named = [("stop_members", i) for i in self.stop_members]
        named += [("kill_members", i) for i in self.kill_members]
        if self.pause_members is not None:
            named += [("pause_members.members", i) for i in self.pause_members.members]
        named += [("resume_members", i) for i in self.resume_members]
        return named

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


#: Expectations that are a yes/no property of the run (`- no_loss: true`).
FLAG_EXPECTATIONS = ("no_loss", "no_app_errors", "duplicates_within_bound",
                     "no_offset_regression", "no_invalid_commits", "no_processing_loss",
                     "no_zombie_fetch")
#: Expectations that are a bound in seconds (`- max_silence_s: 15`).
BOUND_EXPECTATIONS = ("recovers_within_s", "max_silence_s", "max_unassigned_s")
#: Expectations with options (`- terminal_error: {kinds: [...], member_stops: true}`).
OPTION_EXPECTATIONS = ("terminal_error", "rejoins")
EXPECTATION_NAMES = FLAG_EXPECTATIONS + BOUND_EXPECTATIONS + OPTION_EXPECTATIONS
MAX_BOUND_S = 600.0


ExpectationName = Literal["no_loss", "no_app_errors", "duplicates_within_bound",
                          "no_offset_regression", "no_invalid_commits", "no_processing_loss",
                          "no_zombie_fetch", "recovers_within_s",
                          "max_silence_s", "max_unassigned_s", "terminal_error", "rejoins"]


class TerminalError(_Strict):
    """`terminal_error`: a distinct error reaches the application and (`member_stops`) the
    member then stops consuming. `kinds`: Kafka error names, one of which it must be (empty:
    any error); `members`: the members that must show it (empty: at least one member)."""

    kinds: list[str] = Field(default_factory=list, max_length=8)
    member_stops: bool = True
    members: list[int] = Field(default_factory=list, max_length=MAX_MEMBERS * 2)

    @field_validator("kinds")
    @classmethod
    def _kafka_errors(cls, kinds: list[str]) -> list[str]:
        out = []
        for i, kind in enumerate(kinds):
            try:
                out.append(resolve_error(kind))
            except ValueError as exc:
                raise ValueError(f"[{i}]: {exc}") from None
        return out


class Rejoins(_Strict):
    """`rejoins`: the member joins the group again after the fault (`new_member_id`: with a
    member id the broker newly handed out); `members` as for `terminal_error`."""

    new_member_id: bool = False
    members: list[int] = Field(default_factory=list, max_length=MAX_MEMBERS * 2)


class Expectation(_Strict):
    """One line of `expect:`, e.g. `- max_silence_s: 15`. Written and dumped as that one-key
    mapping; `bound_s` holds a bound, `terminal`/`rejoin` the options."""

    name: ExpectationName
    bound_s: float | None = None
    terminal: TerminalError | None = None
    rejoin: Rejoins | None = None

    @model_serializer
    def _as_written(self) -> dict[str, Any]:
        if self.bound_s is not None:
            return {self.name: self.bound_s}
        if self.terminal is not None:
            return {self.name: self.terminal.model_dump()}
        if self.rejoin is not None:
            return {self.name: self.rejoin.model_dump()}
        return {self.name: True}

    def describe(self) -> str:
        """As a reader would say it: `max_silence_s 15`, `terminal_error FENCED_INSTANCE_ID,
        member stops`."""
        if self.bound_s is not None:
            return f"{self.name} {self.bound_s:g}"
        scope: list[int] = []
        extra: list[str] = []
        if self.terminal is not None:
            extra = ["/".join(self.terminal.kinds) or "any error"]
            extra += ["member stops"] if self.terminal.member_stops else []
            scope = self.terminal.members
        if self.rejoin is not None:
            extra = ["new member id"] if self.rejoin.new_member_id else []
            scope = self.rejoin.members
        if scope:
            extra.append(f"members {scope}")
        return " ".join([self.name, ", ".join(extra)]).strip()

    @property
    def members(self) -> list[int]:
        option = self.terminal or self.rejoin
        return list(option.members) if option is not None else []

    @classmethod
    def parse(cls, item: Any, where: str) -> Expectation:
        """One `expect:` entry; a mistake is a ValueError that starts with `where`."""
        if isinstance(item, Expectation):
            return item
        if isinstance(item, str):  # `- no_loss` alone means `- no_loss: true`
            item = {item: True}
        if not isinstance(item, Mapping) or len(item) != 1:
            raise ValueError(f"{where}: an expectation is one key with its value, e.g. "
                             "`- no_loss: true` or `- max_silence_s: 15`")
        ((name, value),) = item.items()
        if name not in EXPECTATION_NAMES:
            raise ValueError(f"{where}: unknown expectation {name!r}; one of "
                             f"{', '.join(EXPECTATION_NAMES)}")
        return cls._parse_value(cast(ExpectationName, name), value, f"{where}.{name}")

    @classmethod
    def _parse_value(cls, name: ExpectationName, value: Any, here: str) -> Expectation:
        if name in FLAG_EXPECTATIONS:
            if value is not True:
                raise ValueError(f"{here}: the only value is true (leave the line out "
                                 f"rather than expect the opposite), not {_yaml(value)}")
            return cls(name=name)
        if name in BOUND_EXPECTATIONS:
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not 0 < value <= MAX_BOUND_S:
                raise ValueError(f"{here}: a number of seconds above 0 and at most "
                                 f"{MAX_BOUND_S:g}, not {_yaml(value)}")
            return cls(name=name, bound_s=float(value))
        option: type[TerminalError] | type[Rejoins] = (
            TerminalError if name == "terminal_error" else Rejoins)
        if value is True or value is None:
            value = {}
        if not isinstance(value, Mapping):
            raise ValueError(f"{here}: a mapping of options ({', '.join(option.model_fields)})"
                             f", or true for the defaults, not {_yaml(value)}")
        try:
            parsed = option.model_validate(value)
        except ValidationError as exc:
            raise ValueError(f"{here}.{_first_error(exc)}") from None
        if isinstance(parsed, TerminalError):
            return cls(name=name, terminal=parsed)
        return cls(name=name, rejoin=parsed)


def _yaml(value: Any) -> str:
    """A value as the scenario file spells it (`false`, not Python's `False`)."""
    try:
        return json.dumps(value)[:60]
    except (TypeError, ValueError):
        return repr(value)[:60]


def default_expectations(outcome: OutcomeCriteria) -> list[Expectation]:
    """What a scenario without `expect:` is judged against: nothing lost, every record within
    `recovery_bound_s` of the first injection, no member silent longer than `stall_bound_s`,
    duplicates within the at-least-once bound (docs/scenarios.md, expect)."""
    return [Expectation(name="no_loss"),
            Expectation(name="recovers_within_s", bound_s=outcome.recovery_bound_s),
            Expectation(name="max_silence_s", bound_s=outcome.stall_bound_s),
            Expectation(name="duplicates_within_bound")]


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
    #: What a correct client does, one typed expectation a line; None: the default set
    #: (`default_expectations`). Use `expectations` for the effective list.
    expect: list[Expectation] | None = None

    @field_validator("expect", mode="before")
    @classmethod
    def _expectations(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, list):
            raise ValueError("a list of expectations, one a line, e.g. `- no_loss: true`")
        if not value:
            raise ValueError("an empty list judges nothing; leave expect out for the "
                             "default set")
        out: list[Expectation] = []
        for i, item in enumerate(value):
            parsed = Expectation.parse(item, f"[{i}]")
            if any(e.name == parsed.name for e in out):
                raise ValueError(f"[{i}]: {parsed.name} is given twice")
            out.append(parsed)
        return out

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError(f"name {value!r} must be lower-case letters, digits and '-' "
                             "(it names artifact directories and matrix columns)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        self._check_rule_ids()
        total_members = self.total_members
        for i, step in enumerate(self.steps):
            self._check_members(i, step)
            self._check_topology(i, step)
            if step.produce_rate is not None and step.at is not None and \
                    step.at + step.produce_rate.duration_s > self.outcome.max_duration_s:
                raise ValueError(
                    f"steps[{i}].produce_rate: produces until "
                    f"{step.at + step.produce_rate.duration_s:g} s, past "
                    f"outcome.max_duration_s ({self.outcome.max_duration_s:g})")
        for index in self.setup.members.overrides:
            if index >= total_members:
                raise ValueError(f"setup.members.overrides: {index} is not a member "
                                 f"(0..{total_members - 1})")
        if self.outcome.stall_bound_s >= self.outcome.max_duration_s:
            raise ValueError("outcome.stall_bound_s must be below outcome.max_duration_s")
        self._check_expectations()
        return self

    def _check_rule_ids(self) -> None:
        """Every rule id is added once, and removed or released only after it was added."""
        ids: set[str] = set()
        for i, step in enumerate(self.steps):
            for rule in step.add:
                rid = str(rule["id"])
                if rid in ids:
                    raise ValueError(f"steps[{i}]: rule id {rid!r} is added twice")
                ids.add(rid)
            for verb, named in (("removes", step.remove), ("releases the holds of",
                                                           step.release)):
                for rid in named:
                    if rid not in ids:
                        raise ValueError(f"steps[{i}]: {verb} {rid!r}, which no earlier step "
                                         "adds")

    def _check_expectations(self) -> None:
        total_members = self.total_members
        for i, expectation in enumerate(self.expect or []):
            for index in expectation.members:
                if not 0 <= index < total_members:
                    raise ValueError(f"expect[{i}].{expectation.name}.members: {index} is "
                                     f"not a member (0..{total_members - 1})")

    @property
    def expectations(self) -> list[Expectation]:
        """The expectations the runs are judged against: `expect:`, else the default set."""
        if self.expect is not None:
            return list(self.expect)
        return default_expectations(self.outcome)

    @property
    def member_timeout_s(self) -> float:
        """The longest session or rebalance timeout of any member: how long a run must go on
        after the last injection for every member to have shown its own timeout."""
        m = self.setup.members
        longest = max(max(s.session_timeout_ms, s.rebalance_timeout_ms)
                      for s in (m.settings(i) for i in range(self.total_members)))
        return longest / 1000.0

    def _check_members(self, i: int, step: Step) -> None:
        total_members = self.total_members
        for key, idx in step.member_indexes():
            if not 0 <= idx < total_members:
                raise ValueError(f"steps[{i}]: {key} index {idx} is not a member "
                                 f"(0..{total_members - 1})")
        if step.on is not None and step.on.member is not None and \
                step.on.member >= total_members:
            raise ValueError(f"steps[{i}]: trigger member {step.on.member} does not exist")

    def _check_topology(self, i: int, step: Step) -> None:
        brokers = self.setup.brokers
        for key in step.topology:
            if brokers == 1:
                raise ValueError(f"steps[{i}].{key}: needs setup.brokers: 3 (this scenario "
                                 "runs on 1 broker)")
        for key, ref in (("stop_broker", step.stop_broker), ("restart_broker",
                                                             step.restart_broker)):
            node = ref.node if ref is not None else None
            if isinstance(node, int) and not 1 <= node <= brokers:
                raise ValueError(f"steps[{i}].{key}.node: {node} is not a broker; the "
                                 f"brokers are nodes 1..{brokers}")
        if step.restart_broker is not None and step.restart_broker.node == "stopped" and \
                not any(s.stop_broker for s in self.steps):
            raise ValueError(f"steps[{i}].restart_broker.node: 'stopped', but no step has "
                             "a stop_broker")

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
        """Records the scenario means to produce (`produce_rate` steps at their nominal count;
        the run's evidence counts what was delivered)."""
        return self.setup.records + sum(
            s.produce + (s.produce_rate.records if s.produce_rate is not None else 0)
            for s in self.steps)

    @property
    def changes_topology(self) -> bool:
        return any(s.topology for s in self.steps)

    def rules(self) -> list[FaultRule]:
        return [FaultRule.model_validate(r) for s in self.steps for r in s.add]


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__")
    msg = str(err.get("msg", "")).removeprefix("Value error, ")
    if loc and msg.startswith("["):  # a list validator naming the item: expect[2].max_...
        return f"{loc}{msg}"
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
