"""ERROR: answer the request with a synthesized error response; the broker never sees it."""

from __future__ import annotations

from faults.decision import ActionKind, Decision
from proxy.pipeline.executors.base import Executor, FaultTarget, answer_with_error, register
from proxy.pipeline.request_context import RequestContext


class Error(Executor):
    kind = ActionKind.ERROR
    written_outcome = "error_injected"

    def on_request(self, conn: FaultTarget, ctx: RequestContext, decision: Decision,
                   expects_response: bool) -> None:
        conn.applied(decision)
        if ctx.slot is None:  # nothing to answer (acks=0 Produce)
            conn.end_exchange(ctx, "error_injected")
        else:
            answer_with_error(conn, ctx, decision)


register(Error())
