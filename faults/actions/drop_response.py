"""`drop_response`: the broker acts on the request, its answer is lost on the way back."""

from __future__ import annotations

from typing import ClassVar, Literal

from faults.actions._base import ActionSpec, DecideContext
from faults.actions._shared import DropActionBase, ms_to_s
from faults.decision import ActionKind, Decision


class DropResponseAction(DropActionBase):
    """Forward the request but swallow the broker's response."""

    _what: ClassVar[str] = "action of type 'drop_response'"
    type: Literal["drop_response"]


def decide(action: DropResponseAction, ctx: DecideContext) -> Decision:
    """Milliseconds (what users type) become seconds (what the data plane's timers take)."""
    return Decision(
        ActionKind.DROP_RESPONSE,
        ctx.rule_id,
        close_after_s=ms_to_s(action.close_after_ms),
        on_applied=ctx.on_applied,
    )


ACTION = ActionSpec(
    kind=ActionKind.DROP_RESPONSE,
    model=DropResponseAction,
    decide=decide,
    example={"type": "drop_response"},
)
