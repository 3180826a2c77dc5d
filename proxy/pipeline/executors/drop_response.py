"""DROP_RESPONSE: the request is forwarded, the broker's response discarded.

The slot stays unfilled, so the connection stalls behind it; it is closed `close_after_s`
later if that is set.
"""

from __future__ import annotations

from kafka_chaos_proxy.faults.decision import ActionKind, Decision
from kafka_chaos_proxy.proxy.pipeline.executors.base import Executor, FaultTarget, register
from kafka_chaos_proxy.proxy.pipeline.request_context import RequestContext


class DropResponse(Executor):
    kind = ActionKind.DROP_RESPONSE

    def on_response(self, conn: FaultTarget, ctx: RequestContext, decision: Decision,
                    data: bytes, now: float) -> None:
        conn.applied(decision)
        conn.end_exchange(ctx, "dropped")
        conn.close_later(decision)


register(DropResponse())
