"""`delay`: hold the request or its response for a time drawn per request.

The draw happens in `decide`, from the engine's seeded generator, once per request the rule
hits: the data plane only sleeps, and a seeded run replays the same delays.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, StrictInt, field_validator, model_validator

from kafka_chaos_proxy.faults.actions._base import ActionModel, ActionSpec, DecideContext
from kafka_chaos_proxy.faults.decision import ActionKind, Decision, Side
from kafka_chaos_proxy.faults.distributions import Distribution, draw_delay_ms
from kafka_chaos_proxy.faults.model_base import MS_RANGE, non_negative_ms


class DelayAction(ActionModel):
    """Hold the request or its response; see `faults.distributions` for how jitter is drawn."""

    _what: ClassVar[str] = "action of type 'delay'"
    type: Literal["delay"]
    side: Side = Field(
        default=Side.REQUEST,
        description="request: hold it before forwarding; response: hold the broker's answer.",
    )
    fixed_ms: StrictInt = Field(
        default=0, json_schema_extra=MS_RANGE, description="Base delay (the mean for uniform "
        "and normal jitter, the minimum for exponential).",
    )  # fmt: skip
    jitter_ms: StrictInt = Field(
        default=0, json_schema_extra=MS_RANGE, description="uniform: ± this; normal: standard "
        "deviation; exponential: mean of the added tail.",
    )  # fmt: skip
    distribution: Distribution = Field(
        default="uniform", description="Shape of the jitter; draws are clipped at 0."
    )

    @field_validator("fixed_ms", "jitter_ms")
    @classmethod
    def _check_ms(cls, value: int, info: Any) -> int:
        non_negative_ms(value, info.field_name)
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


def decide(action: DelayAction, ctx: DecideContext) -> Decision:
    """Draws the delay now, from the engine's seeded generator: the data plane only sleeps."""
    delay_ms = draw_delay_ms(ctx.rng, action.fixed_ms, action.jitter_ms, action.distribution)
    return ctx.decision(ActionKind.DELAY, side=action.side, delay_s=delay_ms / 1000.0)


ACTION = ActionSpec(ActionKind.DELAY, DelayAction, decide,
                    {"type": "delay", "side": "response", "fixed_ms": 200, "jitter_ms": 100})
