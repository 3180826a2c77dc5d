"""`drop_response`: the broker acts on the request, its answer is lost on the way back."""

from __future__ import annotations

from typing import ClassVar, Literal

from kafka_chaos_proxy.faults.actions._base import ActionSpec
from kafka_chaos_proxy.faults.actions._shared import DropActionBase, decide_drop
from kafka_chaos_proxy.faults.decision import ActionKind


class DropResponseAction(DropActionBase):
    """Forward the request but swallow the broker's response."""

    _what: ClassVar[str] = "action of type 'drop_response'"
    type: Literal["drop_response"]


ACTION = ActionSpec(ActionKind.DROP_RESPONSE, DropResponseAction, decide_drop,
                    {"type": "drop_response"})
