"""`error_after_forward`: the broker acts on the request, the client is told it failed.

The nastiest kind of error for a client: a retry repeats something that already happened.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from kafka_chaos_proxy.faults.actions._base import ActionSpec
from kafka_chaos_proxy.faults.actions._shared import ErrorActionBase, decide_error
from kafka_chaos_proxy.faults.decision import ActionKind


class ErrorAfterForwardAction(ErrorActionBase):
    """Forward the request (the broker acts on it) but give the client an error response."""

    _what: ClassVar[str] = "action of type 'error_after_forward'"
    type: Literal["error_after_forward"]


ACTION = ActionSpec(ActionKind.ERROR_AFTER_FORWARD, ErrorAfterForwardAction, decide_error,
                    {"type": "error_after_forward", "error": "REBALANCE_IN_PROGRESS"})
