"""Fields that more than one action carries, declared once so that the actions agree on them
(same validation, same message, same JSON schema)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StrictInt, field_validator

from kafka_chaos_proxy.faults.actions._base import ActionModel, DecideContext
from kafka_chaos_proxy.faults.decision import ActionKind, Decision
from kafka_chaos_proxy.faults.model_base import MS_RANGE, NAME_OR_NUMBER, non_negative_ms
from kafka_chaos_proxy.faults.names import error_code_of, resolve_error


class ErrorActionBase(ActionModel):
    """An action that answers with a Kafka error (error, error_after_forward)."""

    error: Annotated[str, NAME_OR_NUMBER] = Field(
        description="Kafka error name or code, e.g. NOT_COORDINATOR or 16."
    )

    @field_validator("error", mode="before")
    @classmethod
    def _resolve(cls, value: Any) -> str:
        return resolve_error(value)

    @property
    def error_code(self) -> int:
        return error_code_of(self.error)


class DropActionBase(ActionModel):
    """An action that swallows a message (drop_request, drop_response)."""

    close_after_ms: StrictInt | None = Field(
        default=None,
        json_schema_extra=MS_RANGE,
        description="Close the client connection this long after the drop; null keeps it open.",
    )

    @field_validator("close_after_ms")
    @classmethod
    def _check(cls, value: int | None) -> int | None:
        return non_negative_ms(value, "close_after_ms")


def decide_error(action: ErrorActionBase, ctx: DecideContext) -> Decision:
    """Either error action: its kind is its `type`; the code was resolved from the name when
    the rule was validated, so there is nothing to draw."""
    return ctx.decision(ActionKind(action.type), error_code=action.error_code)


def decide_drop(action: DropActionBase, ctx: DecideContext) -> Decision:
    """Either drop: its kind is its `type`; milliseconds (what users type) become seconds
    (what the data plane's timers take)."""
    return ctx.decision(ActionKind(action.type), close_after_s=ms_to_s(action.close_after_ms))


def ms_to_s(value: int | None) -> float | None:
    """Rules speak milliseconds (what people type), Decisions seconds (what asyncio sleeps)."""
    return None if value is None else value / 1000.0
