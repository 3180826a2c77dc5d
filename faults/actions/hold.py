"""`hold`: park a request or its response until something happens, or until released.

The gate that makes "a commit lands between JoinGroup and SyncGroup" reproducible: the
OffsetCommit is parked (its slot keeps its place, so the client still gets its answers in
order, exactly as behind a dropped request), later requests on the connection go on, and the
commit continues when `until` happens (another member's JoinGroup arrived, a rule injected),
when someone releases it (admin API `POST /holds/{id}/release`), or when `timeout_ms` runs out,
in which case `on_timeout` says what happens to it. A hold never waits forever: the timeout is
required.

Continuing means: a parked request is forwarded (or, in a `chain` of rules, handed to the next
rule's action, e.g. an error); a parked response is delivered.

What a hold cannot do: let the client hear anything else on that connection meanwhile. Kafka
answers a connection's requests in order, so every answer behind the held one waits, a
Heartbeat's REBALANCE_IN_PROGRESS included: a member whose heartbeats share the connection with a
held commit cannot learn of a rebalance until the hold ends. Wait for events of *other*
connections (another member's JoinGroup), or arm the hold only once the member already knows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, PrivateAttr, StrictInt, field_validator, model_validator

from kafka_chaos_proxy.faults.actions._base import ActionModel, ActionSpec, DecideContext
from kafka_chaos_proxy.faults.decision import Decision, Side
from kafka_chaos_proxy.faults.distributions import MAX_DELAY_MS
from kafka_chaos_proxy.faults.model_base import NAME_OR_NUMBER
from kafka_chaos_proxy.faults.names import error_code_of, resolve_error
from kafka_chaos_proxy.faults.triggers import (
    MAX_COUNT,
    CompiledPattern,
    EventPattern,
    check_count,
    compile_pattern,
)

KIND = "hold"
OnTimeout = Literal["release", "drop", "error", "close"]


class HoldAction(ActionModel):
    """Park the request (before it is forwarded) or the broker's response (before delivery)."""

    _what: ClassVar[str] = "action of type 'hold'"
    type: Literal["hold"]
    side: Side = Field(default=Side.REQUEST, description="request: park it before forwarding; "
                       "response: park the broker's answer.")
    until: EventPattern | None = Field(
        default=None, description="Continue once this has happened `count` times after the "
        "hold began; without it only a release or the timeout ends the hold.")
    count: StrictInt = Field(default=1, json_schema_extra={"minimum": 1, "maximum": MAX_COUNT})
    timeout_ms: StrictInt | None = Field(
        default=None, validate_default=True,
        json_schema_extra={"minimum": 1, "maximum": MAX_DELAY_MS},
        description="Required: the longest a hold lasts; then on_timeout applies.")
    on_timeout: OnTimeout = Field(
        default="release", description="release: continue as if `until` happened; drop: the "
        "request/response is lost; error: answer with `error`; close: close the connection.")
    error: Annotated[str, NAME_OR_NUMBER] | None = Field(
        default=None, description="The error to answer with when on_timeout is error.")

    _until: CompiledPattern | None = PrivateAttr(default=None)

    @field_validator("timeout_ms")
    @classmethod
    def _check_timeout(cls, value: int | None) -> int:
        if value is None:
            raise ValueError("a hold needs timeout_ms: how long at most to hold before "
                             "on_timeout applies (e.g. 10000); a hold never waits forever")
        if not 1 <= value <= MAX_DELAY_MS:
            raise ValueError(f"timeout_ms must be between 1 and {MAX_DELAY_MS} ms, got {value}")
        return value

    @field_validator("count")
    @classmethod
    def _check_count(cls, value: int) -> int:
        return check_count(value)

    @field_validator("error", mode="before")
    @classmethod
    def _resolve(cls, value: Any) -> Any:
        return None if value is None else resolve_error(value)

    @model_validator(mode="after")
    def _error_iff_error(self) -> HoldAction:
        if self.on_timeout == "error" and self.error is None:
            raise ValueError("on_timeout: error needs error (e.g. error: REBALANCE_IN_PROGRESS)")
        if self.on_timeout != "error" and self.error is not None:
            raise ValueError(f"error is only used with on_timeout: error (on_timeout is "
                             f"{self.on_timeout!r}); drop error or set on_timeout: error")
        if self.count != 1 and self.until is None:
            raise ValueError("count counts the events of until; set until or drop count")
        return self

    def model_post_init(self, context: Any) -> None:
        # Compiled once, when the rule is stored: never on the data path.
        self._until = compile_pattern(self.until) if self.until is not None else None


@dataclass(frozen=True, slots=True)
class HoldPlan:
    """What the data plane needs to park and continue."""

    side: Side
    until: CompiledPattern | None
    count: int
    timeout_s: float
    on_timeout: OnTimeout
    error_code: int | None


def decide(action: HoldAction, ctx: DecideContext) -> Decision:
    assert action.timeout_ms is not None  # the validator makes it required
    plan = HoldPlan(action.side, action._until, action.count, action.timeout_ms / 1000.0,
                    action.on_timeout,
                    error_code_of(action.error) if action.error is not None else None)
    return ctx.decision(KIND, side=action.side, error_code=plan.error_code, plan=plan)


ACTION = ActionSpec(KIND, HoldAction, decide,
                    {"type": "hold", "until": {"api": "JoinGroup", "phase": "request"},
                     "timeout_ms": 10000})
