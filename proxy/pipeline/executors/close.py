"""CLOSE: close the client connection before forwarding the request, or when its response
arrives (the response is discarded). FIN, or RST through SO_LINGER 0 + abort (`close_mode`)."""

from __future__ import annotations

from kafka_chaos_proxy.faults.decision import ActionKind, CloseWhen, Decision
from kafka_chaos_proxy.proxy.pipeline.executors.base import Executor, FaultTarget, register
from kafka_chaos_proxy.proxy.pipeline.request_context import RequestContext


class Close(Executor):
    kind = ActionKind.CLOSE

    def on_request(self, conn: FaultTarget, ctx: RequestContext, decision: Decision,
                   expects_response: bool) -> None:
        """BEFORE closes instead of forwarding; AFTER forwards and waits for the response."""
        if decision.close_when is CloseWhen.AFTER:
            conn.forward(ctx)
            if expects_response:
                return  # closed when the response arrives (`on_response`)
            # acks=0 Produce: no response will come to close after; close once forwarded.
        conn.applied(decision)
        conn.close("fault_close", mode=decision.close_mode)

    def on_response(self, conn: FaultTarget, ctx: RequestContext, decision: Decision,
                    data: bytes, now: float) -> None:
        # close_when AFTER (BEFORE never forwards)
        conn.applied(decision)
        conn.end_exchange(ctx, "closed")
        conn.close("fault_close", mode=decision.close_mode)


register(Close())
