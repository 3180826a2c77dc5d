"""`close`: close the client connection, gracefully (FIN) or not (RST), before or after."""

from __future__ import annotations

from typing import ClassVar, Literal

from kafka_chaos_proxy.faults.actions._base import ActionModel, ActionSpec, DecideContext
from kafka_chaos_proxy.faults.decision import ActionKind, CloseMode, CloseWhen, Decision


class CloseAction(ActionModel):
    """Close the client connection, before forwarding the request or when its response arrives."""

    _what: ClassVar[str] = "action of type 'close'"
    type: Literal["close"]
    when: CloseWhen = CloseWhen.BEFORE
    mode: CloseMode = CloseMode.GRACEFUL


def decide(action: CloseAction, ctx: DecideContext) -> Decision:
    """Where and how to close pass through as they are; nothing to draw."""
    return ctx.decision(ActionKind.CLOSE, close_when=action.when, close_mode=action.mode)


ACTION = ActionSpec(ActionKind.CLOSE, CloseAction, decide,
                    {"type": "close", "when": "after", "mode": "reset"})
