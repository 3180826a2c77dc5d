"""`drop_request`: swallow the request, as a lost packet or a hung broker would."""

from __future__ import annotations

from typing import ClassVar, Literal

from kafka_chaos_proxy.faults.actions._base import ActionSpec
from kafka_chaos_proxy.faults.actions._shared import DropActionBase, decide_drop
from kafka_chaos_proxy.faults.decision import ActionKind


class DropRequestAction(DropActionBase):
    """Swallow the request; the client waits for a response that never comes."""

    _what: ClassVar[str] = "action of type 'drop_request'"
    type: Literal["drop_request"]


ACTION = ActionSpec(ActionKind.DROP_REQUEST, DropRequestAction, decide_drop,
                    {"type": "drop_request", "close_after_ms": 30000})
