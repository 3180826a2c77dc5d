"""`error_after_forward`: the broker acts on the request, the client is told it failed.

The nastiest kind of error for a client: a retry repeats something that already happened.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from faults.actions._base import ActionSpec, DecideContext
from faults.actions._shared import ErrorActionBase
from faults.decision import ActionKind, Decision


class ErrorAfterForwardAction(ErrorActionBase):
    """Forward the request (the broker acts on it) but give the client an error response."""

    _what: ClassVar[str] = "action of type 'error_after_forward'"
    type: Literal["error_after_forward"]


def decide(action: ErrorAfterForwardAction, ctx: DecideContext) -> Decision:
    """Like `error`; the data plane forwards first, then answers with the code."""
    return Decision(
        ActionKind.ERROR_AFTER_FORWARD,
        ctx.rule_id,
        error_code=action.error_code,
        on_applied=ctx.on_applied,
    )


ACTION = ActionSpec(
    kind=ActionKind.ERROR_AFTER_FORWARD,
    model=ErrorAfterForwardAction,
    decide=decide,
    example={"type": "error_after_forward", "error": "REBALANCE_IN_PROGRESS"},
)
