"""`throttle`: a slow link, for as long as matching requests keep coming."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, StrictInt, field_validator

from kafka_chaos_proxy.faults.actions._base import ActionModel, ActionSpec, DecideContext
from kafka_chaos_proxy.faults.decision import ActionKind, Decision


class ThrottleAction(ActionModel):
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


def decide(action: ThrottleAction, ctx: DecideContext) -> Decision:
    """The rate passes through; the data plane keeps it for the connection."""
    return ctx.decision(ActionKind.THROTTLE, throttle_bytes_per_s=action.bytes_per_s)


ACTION = ActionSpec(ActionKind.THROTTLE, ThrottleAction, decide,
                    {"type": "throttle", "bytes_per_s": 1024})
