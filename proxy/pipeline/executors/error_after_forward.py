"""ERROR_AFTER_FORWARD: the broker gets the request (and acts on it), the client gets a
synthesized error instead of the broker's response."""

from __future__ import annotations

from kafka_chaos_proxy.faults.decision import ActionKind, Decision
from kafka_chaos_proxy.proxy.pipeline.executors.base import (
    Executor,
    FaultTarget,
    answer_with_error,
    register,
)
from kafka_chaos_proxy.proxy.pipeline.request_context import RequestContext


class ErrorAfterForward(Executor):
    kind = ActionKind.ERROR_AFTER_FORWARD
    written_outcome = "error_injected"

    def on_response(self, conn: FaultTarget, ctx: RequestContext, decision: Decision,
                    data: bytes, now: float) -> None:
        conn.applied(decision)
        answer_with_error(conn, ctx, decision)


register(ErrorAfterForward())
