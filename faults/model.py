"""The fault rule as users write it: match + action + dosage.

This model is the admin API's request body and the schema of rule files, so its validators are
the project's user interface for mistakes: every rejection names the field, says what was wrong
and lists (or points to) the allowed values. Names are normalised on the way in (API names to
Kafka's message names, error names to the protocol's upper-case names), so what the API returns
and what `export` writes is canonical and round-trips.

Each action's model lives in its own module under `faults.actions`; the `Action` union here is
built from that package's registry, so this module never changes when an action is added.
"""

from __future__ import annotations

import difflib
import functools
import operator
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import (
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.faults.actions import ACTIONS, ActionModel
from kafka_chaos_proxy.faults.actions.close import CloseAction
from kafka_chaos_proxy.faults.actions.delay import DelayAction
from kafka_chaos_proxy.faults.actions.drop_request import DropRequestAction
from kafka_chaos_proxy.faults.actions.drop_response import DropResponseAction
from kafka_chaos_proxy.faults.actions.error import ErrorAction
from kafka_chaos_proxy.faults.actions.error_after_forward import ErrorAfterForwardAction
from kafka_chaos_proxy.faults.actions.throttle import ThrottleAction
from kafka_chaos_proxy.faults.body_fields import BODY_FIELDS, apis_carrying
from kafka_chaos_proxy.faults.model_base import NAME_OR_NUMBER, RULE_ID_PATTERN, StrictModel
from kafka_chaos_proxy.faults.names import (
    api_hint,
    api_keys,
    api_names,
    error_code_of,
    resolve_api,
    resolve_error,
    show,
)
from kafka_chaos_proxy.faults.patterns import checked, compile_glob, compile_regex
from kafka_chaos_proxy.faults.triggers import When

# The names callers imported from here before actions and codec names had modules of their own.
__all__ = [
    "ACTION_TYPES",
    "RULE_ID_PATTERN",
    "Action",
    "CloseAction",
    "DelayAction",
    "Dosage",
    "DropRequestAction",
    "DropResponseAction",
    "ErrorAction",
    "ErrorAfterForwardAction",
    "FaultRule",
    "Match",
    "ThrottleAction",
    "api_keys",
    "api_names",
    "describe_errors",
    "error_code_of",
    "field_path",
    "problem_message",
    "resolve_api",
    "resolve_error",
    "validation_problems",
]

# Bounds on what a rule may carry, so that rules stay small whatever a caller sends.
MAX_ID_CHARS = 1024  # group, member and instance ids
MAX_DESCRIPTION_CHARS = 1024


# --------------------------------------------------------------------------- match


class Match(StrictModel):
    """Which requests a rule applies to. Every field is optional; absent means "any"."""

    _what: ClassVar[str] = "match"

    apis: list[Annotated[str, NAME_OR_NUMBER]] | None = Field(
        default=None,
        description="API names or keys (JoinGroup, 14, sync_group); stored as Kafka names.",
    )
    versions: (
        list[Annotated[int, Field(json_schema_extra={"minimum": 0, "maximum": 32767})]] | None
    ) = Field(default=None, description="Request API versions.")
    client_id: str | None = Field(
        default=None, description="Glob on the whole client id (fnmatch; a null id is '')."
    )
    client_id_regex: str | None = Field(
        default=None, description="Regular expression searched in the client id."
    )
    principal: str | None = Field(
        default=None,
        description="Glob on the whole principal the client authenticated as (fnmatch; the "
        "SASL user, or the TLS client certificate's subject; a connection without one is '').",
    )
    group_id: str | None = None
    member_id: str | None = None
    group_instance_id: str | None = None
    generation_id: StrictInt | None = None
    member_epoch: StrictInt | None = Field(default=None, description="KIP-848 member epoch.")
    broker: StrictInt | None = Field(
        default=None, description="Upstream broker node id; -1 is the bootstrap listener."
    )
    connection: StrictInt | None = Field(default=None, description="Proxy connection id.")
    any: StrictBool = Field(
        default=False,
        description="Match every request (still never ApiVersions, Metadata, SASL or "
        "FindCoordinator unless named in apis). Required for a rule that names nothing else.",
    )

    @field_validator("apis", mode="before")
    @classmethod
    def _resolve_apis(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, list | tuple):
            raise ValueError(
                f'apis must be a list of API names or keys (e.g. ["SyncGroup"]), '
                f"got {show(value)}; {api_hint()}"
            )
        if not value:
            raise ValueError("apis is empty and would match nothing; omit it to match every API")
        out: list[str] = []
        for i, item in enumerate(value):
            try:
                name = resolve_api(item)
            except ValueError as exc:
                raise ValueError(f"apis[{i}]: {exc}") from None
            if name not in out:
                out.append(name)
        return out

    @field_validator("versions", mode="before")
    @classmethod
    def _check_versions(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, list | tuple):
            raise ValueError(
                f"versions must be a list of API versions (integers >= 0, e.g. [3, 4]), "
                f"got {show(value)}"
            )
        if not value:
            raise ValueError(
                "versions is empty and would match nothing; omit it to match every version"
            )
        out: list[int] = []
        for i, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item <= 32767:
                raise ValueError(
                    f"versions[{i}] must be an integer between 0 and 32767, got {show(item)}"
                )
            if item not in out:
                out.append(item)
        return out

    @field_validator("client_id_regex")
    @classmethod
    def _check_regex(cls, value: str | None) -> str | None:
        return checked(value, "client_id_regex", compile_regex)

    @field_validator("client_id")
    @classmethod
    def _check_glob(cls, value: str | None) -> str | None:
        return checked(value, "client_id", compile_glob)

    @field_validator("principal")
    @classmethod
    def _check_principal_glob(cls, value: str | None) -> str | None:
        return checked(value, "principal", compile_glob)

    @field_validator("group_id", "member_id", "group_instance_id")
    @classmethod
    def _check_id_length(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and len(value) > MAX_ID_CHARS:
            raise ValueError(
                f"{info.field_name} is {len(value)} characters; at most {MAX_ID_CHARS}")
        return value

    @field_validator("broker")
    @classmethod
    def _check_broker(cls, value: int | None) -> int | None:
        if value is not None and value < -1:
            raise ValueError(
                f"broker must be a broker node id (>= 0) or -1 for the bootstrap listener, "
                f"got {value}"
            )
        return value

    @field_validator("connection")
    @classmethod
    def _check_connection(cls, value: int | None) -> int | None:
        if value is not None and value < 0:
            raise ValueError(f"connection must be a proxy connection id (>= 0), got {value}")
        return value

    # Field validators (not a model validator) so that the error's path names the field to fix;
    # `apis` is declared first, so it is already validated (or absent) in `info.data`.
    @field_validator("versions")
    @classmethod
    def _versions_exist(cls, value: list[int] | None, info: ValidationInfo) -> list[int] | None:
        apis = info.data.get("apis")
        if value is None or not apis:
            return value
        ranges = {name: codec.supported_versions(api_keys()[name]) for name in apis}
        for version in value:
            if not any(lo <= version <= hi for lo, hi in ranges.values()):
                known = ", ".join(f"{name} {lo}-{hi}" for name, (lo, hi) in ranges.items())
                raise ValueError(f"no listed API has version {version}; versions known: {known}")
        return value

    @field_validator(*BODY_FIELDS)
    @classmethod
    def _api_carries_field(cls, value: object, info: ValidationInfo) -> object:
        apis = info.data.get("apis")
        name = str(info.field_name)
        if value is None or not apis:
            return value
        missing = [api for api in apis if api not in BODY_FIELDS[name]]
        if missing:
            them = "it" if len(missing) == 1 else "them"
            raise ValueError(
                f"{', '.join(missing)} requests carry no {name}; drop {them} from apis or drop "
                f"{name}; APIs whose requests carry {name}: "
                f"{', '.join(apis_carrying(name))}"
            )
        return value

    @model_validator(mode="after")
    def _some_api_carries_all_body_fields(self) -> Match:
        # Without `apis` the rule is limited to the APIs carrying every body field it names.
        fields = [name for name, _ in self.body_fields()]
        if (
            self.apis is None
            and fields
            and not set.intersection(*(set(BODY_FIELDS[name]) for name in fields))
        ):
            raise ValueError(f"no API's requests carry all of {', '.join(fields)}")
        return self

    @model_validator(mode="after")
    def _any_stands_alone(self) -> Match:
        if self.any and self.names_something():
            raise ValueError(
                "any: true matches every request; drop it, or drop the other fields")
        return self

    def names_something(self) -> bool:
        """True when some field narrows the match (anything but `any`)."""
        return any(getattr(self, name) is not None
                   for name in type(self).model_fields if name != "any")

    def body_fields(self) -> list[tuple[str, object]]:
        """The set fields that need the decoded body, in BODY_FIELDS order."""
        return [
            (name, getattr(self, name)) for name in BODY_FIELDS if getattr(self, name) is not None
        ]


# --------------------------------------------------------------------------- actions

# Every registered action, in registry order (built-ins first, as messages have always listed
# them); `faults.actions` is the single place an action is declared.
ACTION_TYPES: tuple[str, ...] = tuple(ACTIONS)

if TYPE_CHECKING:
    # mypy cannot follow a union built at import time; to it an action is the common base.
    Action = ActionModel
else:
    Action = Annotated[
        functools.reduce(operator.or_, (spec.model for spec in ACTIONS.values())),
        Field(discriminator="type"),
    ]


def _check_action_type(value: Any) -> Any:
    """Turn pydantic's discriminator errors into one that lists the action types."""
    if isinstance(value, str) and value in ACTION_TYPES:
        raise ValueError(f'action must be an object, e.g. {{"type": "{value}"}}')
    if isinstance(value, Mapping):
        kind = value.get("type")
        if kind is None:
            raise ValueError(f"action needs a 'type', one of: {', '.join(ACTION_TYPES)}")
        if kind not in ACTION_TYPES:
            close = difflib.get_close_matches(str(kind), ACTION_TYPES, n=1, cutoff=0.6)
            did_you_mean = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(
                f"unknown action type {show(kind)}; {did_you_mean}"
                f"allowed: {', '.join(ACTION_TYPES)}"
            )
    return value


# --------------------------------------------------------------------------- dosage


class Dosage(StrictModel):
    """How much of the matching traffic gets the fault. Times count from when the rule was
    added or (re-)enabled, so a rule file loaded at start-up means "N ms after start"."""

    _what: ClassVar[str] = "dosage"

    probability: StrictFloat = Field(
        default=1.0,
        description="Chance in [0, 1] per eligible match.",
        json_schema_extra={"minimum": 0, "maximum": 1},
    )
    skip_first: StrictInt = Field(
        default=0,
        description="Let this many matches through first.",
        json_schema_extra={"minimum": 0},
    )
    max_injections: StrictInt | None = Field(
        default=None,
        description="Stop after this many faults.",
        json_schema_extra={"minimum": 1},
    )
    start_after_ms: StrictInt = Field(
        default=0,
        description="Inactive for this long after enable.",
        json_schema_extra={"minimum": 0},
    )
    active_for_ms: StrictInt | None = Field(
        json_schema_extra={"minimum": 1},
        default=None,
        description="Active for this long once started; null = no end.",
    )

    @field_validator("probability")
    @classmethod
    def _check_probability(cls, value: float) -> float:
        if not 0.0 <= value <= 1.0:
            raise ValueError(
                f"probability must be between 0.0 and 1.0, got {value} "
                "(0.25 = a quarter of matching requests)"
            )
        return value

    @field_validator("skip_first")
    @classmethod
    def _check_skip(cls, value: int) -> int:
        if value < 0:
            raise ValueError(f"skip_first must be >= 0, got {value}")
        return value

    @field_validator("max_injections")
    @classmethod
    def _check_max(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError(
                f"max_injections must be >= 1 or null (no limit), got {value}; "
                "to pause a rule set enabled: false"
            )
        return value

    @field_validator("start_after_ms")
    @classmethod
    def _check_start(cls, value: int) -> int:
        if value < 0:
            raise ValueError(f"start_after_ms must be >= 0 milliseconds, got {value}")
        return value

    @field_validator("active_for_ms")
    @classmethod
    def _check_active(cls, value: int | None) -> int | None:
        if value is not None and value <= 0:
            raise ValueError(
                f"active_for_ms must be > 0 milliseconds or null (no end), got {value}"
            )
        return value


# --------------------------------------------------------------------------- rule


_READ_ONLY = frozenset({"stats", "trigger", "warnings"})


class FaultRule(StrictModel):
    """One rule. `id` is assigned by the engine when absent."""

    _what: ClassVar[str] = "rule"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "match": {"apis": ["SyncGroup"], "group_id": "orders"},
                    "action": {"type": "error", "error": "NOT_COORDINATOR"},
                    "dosage": {"max_injections": 1},
                },
                {
                    "match": {"apis": ["Heartbeat"], "client_id": "py-*"},
                    "action": {"type": "delay", "side": "response", "fixed_ms": 200,
                               "jitter_ms": 300, "distribution": "exponential"},
                    "dosage": {"probability": 0.5},
                },
            ]
        }
    )  # fmt: skip

    id: str | None = Field(default=None, description="Unique; letters, digits, _ . : -")
    description: str = Field(default="", max_length=MAX_DESCRIPTION_CHARS)
    enabled: StrictBool = True
    match: Match = Field(default_factory=Match, validate_default=True)
    action: Action
    dosage: Dosage = Field(default_factory=Dosage)
    when: When | None = Field(
        default=None, description="Triggers evaluated in the proxy: armed after an event or "
        "another rule's injection, disarmed by another, under a condition on the group's live "
        "state. Absent: armed from the start.")
    chain: StrictBool = Field(
        default=False, description="After this rule acts, later rules may act on the same "
        "request too, in rule order (e.g. a delay, then an error).")

    @model_validator(mode="before")
    @classmethod
    def _drop_stats(cls, data: Any) -> Any:
        # A rule as the API returns it carries read-only stats, trigger state and warnings;
        # accept it back unchanged.
        if isinstance(data, Mapping) and not _READ_ONLY.isdisjoint(data):
            data = {k: v for k, v in data.items() if k not in _READ_ONLY}
        return data

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str | None) -> str | None:
        if value is not None and not RULE_ID_PATTERN.match(value):
            raise ValueError(
                f"id {show(value)} is not usable in a URL; use 1-64 letters, digits, '_', '.', "
                "':' or '-', starting with a letter or digit (or omit it to get one assigned)"
            )
        return value

    @field_validator("action", mode="before")
    @classmethod
    def _check_action(cls, value: Any) -> Any:
        return _check_action_type(value)

    @field_validator("match")
    @classmethod
    def _match_says_what(cls, value: Match) -> Match:
        # A rule without a match used to hit every request, ApiVersions and Metadata
        # included, and no client could even bootstrap: saying so must be deliberate.
        if not value.any and not value.names_something():
            raise ValueError(
                'a rule needs a match: name apis (e.g. ["SyncGroup"]) or another field, or '
                "write match: {any: true} to hit every request (ApiVersions, Metadata, SASL "
                "and FindCoordinator are left alone unless named in apis)"
            )
        return value

    def to_json(self) -> dict[str, Any]:
        """The rule as the admin API returns it (without stats)."""
        return self.model_dump(mode="json")


def field_path(loc: Iterable[Any]) -> str:
    """The dotted path of the field a pydantic error is about, as the caller wrote it: the
    discriminator tag pydantic puts into an action's path is dropped
    (``action.delay.fixed_ms`` -> ``action.fixed_ms``)."""
    parts = [str(part) for part in loc]
    if len(parts) >= 2 and parts[0] == "action" and parts[1] in ACTION_TYPES:
        del parts[1]
    return ".".join(parts)


def problem_message(msg: object) -> str:
    """A validator's message without pydantic's prefixes: ours already phrase the fix."""
    return str(msg).removeprefix("Value error, ").removeprefix("Assertion failed, ")


def validation_problems(errors: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(field path, message) per pydantic error of a rule. One definition for every place a
    rule is checked (rule files, the admin API's 422 answers, the Python API's local check),
    so the same mistake reads the same wherever it is made."""
    return [(field_path(err.get("loc", ())), problem_message(err.get("msg", "invalid")))
            for err in errors]


def describe_errors(exc: ValidationError) -> list[str]:
    """One "field.path: message" line per problem, for people rather than programs."""
    return [f"{where}: {msg}" if where else msg
            for where, msg in validation_problems(exc.errors())]
