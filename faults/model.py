"""The fault rule as users write it: match + action + dosage.

This model is the admin API's request body and the schema of rule files, so its validators are
the project's user interface for mistakes: every rejection names the field, says what was wrong
and lists (or points to) the allowed values. Names are normalised on the way in (API names to
Kafka's message names, error names to the protocol's upper-case names), so what the API returns
and what `export` writes is canonical and round-trips.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

import codec
from faults.body_fields import BODY_FIELDS, apis_carrying
from faults.decision import CloseMode, CloseWhen, Side
from faults.distributions import MAX_DELAY_MS, Distribution

# APIs listed first when an unknown API name is reported: the ones rules are usually about.
_COMMON_APIS = (
    "JoinGroup",
    "SyncGroup",
    "Heartbeat",
    "LeaveGroup",
    "OffsetCommit",
    "OffsetFetch",
    "FindCoordinator",
    "ConsumerGroupHeartbeat",
    "Metadata",
    "Produce",
    "Fetch",
)

RULE_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


# --------------------------------------------------------------------------- codec names


# A key or code written as text ("14", "-1"); ASCII digits only, and short, so int() never fails.
_NUMBER = re.compile(r"-?[0-9]{1,9}")


def _show(value: object, limit: int = 60) -> str:
    """A user's value quoted in an error message, cut short: messages stay one readable line
    even when the input was a megabyte of junk."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _norm(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


@lru_cache(maxsize=1)
def api_names() -> dict[int, str]:
    """API key -> Kafka message name (without "Request"), as the codec knows them."""
    table = codec.API_NAMES
    out: dict[int, str] = {}
    for k, v in table.items():
        if isinstance(k, int):
            out[k] = str(v)
        else:
            out[int(v)] = str(k)
    return dict(sorted(out.items()))


@lru_cache(maxsize=1)
def api_keys() -> dict[str, int]:
    """Kafka message name -> API key."""
    return {name: key for key, name in api_names().items()}


@lru_cache(maxsize=1)
def _api_by_norm() -> dict[str, str]:
    return {_norm(name): name for name in api_names().values()}


def _api_hint() -> str:
    names = api_names().values()
    common = [n for n in _COMMON_APIS if n in names]
    return (
        f"use a Kafka API name or key, e.g. {', '.join(common)} "
        f"({len(api_names())} APIs in all, keys {min(api_names())}-{max(api_names())}; "
        "names are case-insensitive and snake_case works too)"
    )


def resolve_api(value: object) -> str:
    """An API name or key as a user wrote it -> the canonical Kafka name."""
    if isinstance(value, bool):
        raise ValueError(f"{_show(value)} is not an API; {_api_hint()}")
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        value = int(value.strip())
    if isinstance(value, int):
        name = api_names().get(value)
        if name is None:
            raise ValueError(f"unknown API key {value}; {_api_hint()}")
        return name
    if not isinstance(value, str):
        raise ValueError(f"{_show(value)} is not an API name or key; {_api_hint()}")
    key = _norm(value)
    if key.endswith("request") and key[: -len("request")] in _api_by_norm():
        key = key[: -len("request")]
    name = _api_by_norm().get(key)
    if name is not None:
        return name
    close = difflib.get_close_matches(key, list(_api_by_norm()), n=3, cutoff=0.6)
    did_you_mean = (
        f"did you mean {' or '.join(repr(_api_by_norm()[c]) for c in close)}? " if close else ""
    )
    raise ValueError(f"unknown API {_show(value)}; {did_you_mean}{_api_hint()}")


@lru_cache(maxsize=1)
def _error_codes() -> dict[str, int]:
    return {str(k).upper(): int(v) for k, v in codec.ERROR_CODES.items()}


@lru_cache(maxsize=1)
def _error_by_norm() -> dict[str, str]:
    return {_norm(name): name for name in _error_codes()}


def resolve_error(value: object) -> str:
    """An error name or code as a user wrote it -> the canonical protocol error name."""
    codes = _error_codes()
    by_code = {code: name for name, code in codes.items()}
    hint = (
        "use a Kafka protocol error name or code, e.g. NOT_COORDINATOR (16), "
        "REBALANCE_IN_PROGRESS (27), UNKNOWN_MEMBER_ID (25), ILLEGAL_GENERATION (22), "
        "COORDINATOR_NOT_AVAILABLE (15), FENCED_MEMBER_EPOCH (110); "
        f"codes {min(by_code)}..{max(by_code)} are known"
    )
    if isinstance(value, bool):
        raise ValueError(f"{_show(value)} is not an error; {hint}")
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        value = int(value.strip())
    if isinstance(value, int):
        name = by_code.get(value)
        if name is None:
            raise ValueError(f"unknown error code {value}; {hint}")
    elif isinstance(value, str):
        found = _error_by_norm().get(_norm(value))
        if found is None:
            wanted = value.strip().upper().replace("-", "_").replace(" ", "_")
            close = difflib.get_close_matches(wanted, list(codes), n=3, cutoff=0.6)
            did_you_mean = f"did you mean {' or '.join(close)}? " if close else ""
            raise ValueError(f"unknown error {_show(value)}; {did_you_mean}{hint}")
        name = found
    else:
        raise ValueError(f"{_show(value)} is not an error name or code; {hint}")
    if codes[name] == 0:
        raise ValueError(f"{name} (0) means success, not a fault; {hint}")
    return name


def error_code_of(name: str) -> int:
    return _error_codes()[name]


# --------------------------------------------------------------------------- base

# JSON-schema hints only: the validators below enforce these ranges with messages that say what
# to write instead, so the schema documents them without pydantic's generic wording winning.
_NAME_OR_NUMBER = WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "integer"}]})
_MS_RANGE: dict[str, Any] = {"minimum": 0, "maximum": MAX_DELAY_MS}


def _unknown_field_message(field: str, allowed: Iterable[str], what: str) -> str:
    allowed = sorted(allowed)
    close = difflib.get_close_matches(field, allowed, n=1, cutoff=0.6)
    did_you_mean = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown field {_show(field)} in {what}; {did_you_mean}allowed: {', '.join(allowed)}"


class _Model(BaseModel):
    """Strict, immutable: a typo in a field name is an error, never a silently ignored key."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    _what: ClassVar[str] = "rule"

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_fields(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            for key in data:
                if key not in cls.model_fields:
                    raise ValueError(_unknown_field_message(str(key), cls.model_fields, cls._what))
        return data


def _non_negative_ms(value: int | None, field: str) -> int | None:
    if value is None:
        return None
    if value < 0:
        raise ValueError(f"{field} must be >= 0 milliseconds, got {value}")
    if value > MAX_DELAY_MS:
        raise ValueError(f"{field} must be at most {MAX_DELAY_MS} ms (one hour), got {value}")
    return value


# --------------------------------------------------------------------------- match


class Match(_Model):
    """Which requests a rule applies to. Every field is optional; absent means "any"."""

    _what: ClassVar[str] = "match"

    apis: list[Annotated[str, _NAME_OR_NUMBER]] | None = Field(
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
    group_id: str | None = None
    member_id: str | None = None
    group_instance_id: str | None = None
    generation_id: StrictInt | None = None
    member_epoch: StrictInt | None = Field(default=None, description="KIP-848 member epoch.")
    broker: StrictInt | None = Field(
        default=None, description="Upstream broker node id; -1 is the bootstrap listener."
    )
    connection: StrictInt | None = Field(default=None, description="Proxy connection id.")

    @field_validator("apis", mode="before")
    @classmethod
    def _resolve_apis(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, list | tuple):
            raise ValueError(
                f'apis must be a list of API names or keys (e.g. ["SyncGroup"]), '
                f"got {_show(value)}; {_api_hint()}"
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
                f"got {_show(value)}"
            )
        if not value:
            raise ValueError(
                "versions is empty and would match nothing; omit it to match every version"
            )
        out: list[int] = []
        for i, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item <= 32767:
                raise ValueError(
                    f"versions[{i}] must be an integer between 0 and 32767, got {_show(item)}"
                )
            if item not in out:
                out.append(item)
        return out

    @field_validator("client_id_regex")
    @classmethod
    def _check_regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(
                    f"client_id_regex {_show(value)} is not a valid regular expression: {exc}"
                ) from None
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

    def body_fields(self) -> list[tuple[str, object]]:
        """The set fields that need the decoded body, in BODY_FIELDS order."""
        return [
            (name, getattr(self, name)) for name in BODY_FIELDS if getattr(self, name) is not None
        ]


# --------------------------------------------------------------------------- actions


class _Action(_Model):
    _what: ClassVar[str] = "action"
    # Declared here so that `type` comes first in every serialized action; each subclass
    # narrows it to its own literal (the discriminator).
    type: str


class _ErrorActionBase(_Action):
    error: Annotated[str, _NAME_OR_NUMBER] = Field(
        description="Kafka error name or code, e.g. NOT_COORDINATOR or 16."
    )

    @field_validator("error", mode="before")
    @classmethod
    def _resolve(cls, value: Any) -> str:
        return resolve_error(value)

    @property
    def error_code(self) -> int:
        return error_code_of(self.error)


class ErrorAction(_ErrorActionBase):
    """Answer with a synthesized error response; the broker never sees the request."""

    _what: ClassVar[str] = "action of type 'error'"
    type: Literal["error"]


class ErrorAfterForwardAction(_ErrorActionBase):
    """Forward the request (the broker acts on it) but give the client an error response."""

    _what: ClassVar[str] = "action of type 'error_after_forward'"
    type: Literal["error_after_forward"]


class _DropAction(_Action):
    close_after_ms: StrictInt | None = Field(
        default=None,
        json_schema_extra=_MS_RANGE,
        description="Close the client connection this long after the drop; null keeps it open.",
    )

    @field_validator("close_after_ms")
    @classmethod
    def _check(cls, value: int | None) -> int | None:
        return _non_negative_ms(value, "close_after_ms")


class DropRequestAction(_DropAction):
    """Swallow the request; the client waits for a response that never comes."""

    _what: ClassVar[str] = "action of type 'drop_request'"
    type: Literal["drop_request"]


class DropResponseAction(_DropAction):
    """Forward the request but swallow the broker's response."""

    _what: ClassVar[str] = "action of type 'drop_response'"
    type: Literal["drop_response"]


class DelayAction(_Action):
    """Hold the request or its response; see `faults.distributions` for how jitter is drawn."""

    _what: ClassVar[str] = "action of type 'delay'"
    type: Literal["delay"]
    side: Side = Field(
        default=Side.REQUEST,
        description="request: hold it before forwarding; response: hold the broker's answer.",
    )
    fixed_ms: StrictInt = Field(
        default=0, json_schema_extra=_MS_RANGE, description="Base delay (the mean for uniform "
        "and normal jitter, the minimum for exponential).",
    )  # fmt: skip
    jitter_ms: StrictInt = Field(
        default=0, json_schema_extra=_MS_RANGE, description="uniform: ± this; normal: standard "
        "deviation; exponential: mean of the added tail.",
    )  # fmt: skip
    distribution: Distribution = Field(
        default="uniform", description="Shape of the jitter; draws are clipped at 0."
    )

    @field_validator("fixed_ms", "jitter_ms")
    @classmethod
    def _check_ms(cls, value: int, info: Any) -> int:
        _non_negative_ms(value, info.field_name)
        return value

    @model_validator(mode="after")
    def _check_shape(self) -> DelayAction:
        if self.fixed_ms == 0 and self.jitter_ms == 0:
            raise ValueError("a delay of 0 ms does nothing; set fixed_ms and/or jitter_ms (> 0)")
        if self.jitter_ms == 0 and self.distribution != "uniform":
            raise ValueError(
                f"distribution {self.distribution!r} shapes the jitter, but jitter_ms is 0 "
                "(a fixed delay); set jitter_ms > 0 or drop distribution"
            )
        return self


class CloseAction(_Action):
    """Close the client connection, before forwarding the request or when its response arrives."""

    _what: ClassVar[str] = "action of type 'close'"
    type: Literal["close"]
    when: CloseWhen = CloseWhen.BEFORE
    mode: CloseMode = CloseMode.GRACEFUL


class ThrottleAction(_Action):
    """Limit the connection's bandwidth while matching requests keep coming."""

    _what: ClassVar[str] = "action of type 'throttle'"
    type: Literal["throttle"]
    bytes_per_s: StrictInt = Field(json_schema_extra={"minimum": 1})

    @field_validator("bytes_per_s")
    @classmethod
    def _check(cls, value: int) -> int:
        if value <= 0:
            raise ValueError(
                f"bytes_per_s must be > 0, got {value}; to stop traffic use a drop_request action"
            )
        return value


Action = Annotated[
    ErrorAction
    | ErrorAfterForwardAction
    | DropRequestAction
    | DropResponseAction
    | DelayAction
    | CloseAction
    | ThrottleAction,
    Field(discriminator="type"),
]

ACTION_TYPES = (
    "error",
    "error_after_forward",
    "drop_request",
    "drop_response",
    "delay",
    "close",
    "throttle",
)


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
                f"unknown action type {_show(kind)}; {did_you_mean}"
                f"allowed: {', '.join(ACTION_TYPES)}"
            )
    return value


# --------------------------------------------------------------------------- dosage


class Dosage(_Model):
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


class FaultRule(_Model):
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
    description: str = ""
    enabled: StrictBool = True
    match: Match = Field(default_factory=Match)
    action: Action
    dosage: Dosage = Field(default_factory=Dosage)

    @model_validator(mode="before")
    @classmethod
    def _drop_stats(cls, data: Any) -> Any:
        # A rule as the API returns it carries read-only stats; accept it back unchanged.
        if isinstance(data, Mapping) and "stats" in data:
            data = {k: v for k, v in data.items() if k != "stats"}
        return data

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str | None) -> str | None:
        if value is not None and not RULE_ID_PATTERN.match(value):
            raise ValueError(
                f"id {_show(value)} is not usable in a URL; use 1-64 letters, digits, '_', '.', "
                "':' or '-', starting with a letter or digit (or omit it to get one assigned)"
            )
        return value

    @field_validator("action", mode="before")
    @classmethod
    def _check_action(cls, value: Any) -> Any:
        return _check_action_type(value)

    def to_json(self) -> dict[str, Any]:
        """The rule as the admin API returns it (without stats)."""
        return self.model_dump(mode="json")


def rule_from_json(data: Any) -> FaultRule:
    """Validate one rule from parsed JSON/YAML (raises pydantic.ValidationError)."""
    return FaultRule.model_validate(data)


def describe_errors(exc: ValidationError) -> list[str]:
    """One "field.path: message" line per problem, for people rather than programs.

    Drops pydantic's "Value error, " prefix and the discriminator tag it puts into the path
    (``action.delay.fixed_ms`` -> ``action.fixed_ms``).
    """
    lines: list[str] = []
    for err in exc.errors():
        loc = [str(part) for part in err["loc"]]
        if len(loc) >= 2 and loc[0] == "action" and loc[1] in ACTION_TYPES:
            del loc[1]
        msg = str(err["msg"]).removeprefix("Value error, ")
        lines.append(f"{'.'.join(loc)}: {msg}" if loc else msg)
    return lines
