"""DROP_REQUEST: the request is never forwarded and its slot never filled.

The connection stalls behind the slot, as it would behind a lost packet that is never
retransmitted, and is closed `close_after_s` later if that is set.
"""

from __future__ import annotations

from kafka_chaos_proxy.faults.decision import ActionKind, Decision
from kafka_chaos_proxy.proxy.pipeline.executors.base import Executor, FaultTarget, register
from kafka_chaos_proxy.proxy.pipeline.request_context import RequestContext


class DropRequest(Executor):
    kind = ActionKind.DROP_REQUEST

    def on_request(self, conn: FaultTarget, ctx: RequestContext, decision: Decision,
                   expects_response: bool) -> None:
        conn.applied(decision)
        conn.end_exchange(ctx, "dropped")
        conn.close_later(decision)


register(DropRequest())
