"""`error`: answer with a synthesized error response; the broker never sees the request."""

from __future__ import annotations

from typing import ClassVar, Literal

from faults.actions._base import ActionSpec, DecideContext
from faults.actions._shared import ErrorActionBase
from faults.decision import ActionKind, Decision


class ErrorAction(ErrorActionBase):
    """Answer with a synthesized error response; the broker never sees the request."""

    _what: ClassVar[str] = "action of type 'error'"
    type: Literal["error"]


def decide(action: ErrorAction, ctx: DecideContext) -> Decision:
    """The code was resolved from the name when the rule was validated; nothing to draw."""
    return Decision(
        ActionKind.ERROR, ctx.rule_id, error_code=action.error_code, on_applied=ctx.on_applied
    )


ACTION = ActionSpec(
    kind=ActionKind.ERROR,
    model=ErrorAction,
    decide=decide,
    example={"type": "error", "error": "NOT_COORDINATOR"},
)
