"""`drop_request`: swallow the request, as a lost packet or a hung broker would."""

from __future__ import annotations

from typing import ClassVar, Literal

from faults.actions._base import ActionSpec, DecideContext
from faults.actions._shared import DropActionBase, ms_to_s
from faults.decision import ActionKind, Decision


class DropRequestAction(DropActionBase):
    """Swallow the request; the client waits for a response that never comes."""

    _what: ClassVar[str] = "action of type 'drop_request'"
    type: Literal["drop_request"]


def decide(action: DropRequestAction, ctx: DecideContext) -> Decision:
    """Milliseconds (what users type) become seconds (what the data plane's timers take)."""
    return Decision(
        ActionKind.DROP_REQUEST,
        ctx.rule_id,
        close_after_s=ms_to_s(action.close_after_ms),
        on_applied=ctx.on_applied,
    )


ACTION = ActionSpec(
    kind=ActionKind.DROP_REQUEST,
    model=DropRequestAction,
    decide=decide,
    example={"type": "drop_request", "close_after_ms": 30000},
)
