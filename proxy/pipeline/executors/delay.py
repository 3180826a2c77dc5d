"""DELAY: hold the request (`side` REQUEST) or its filled response slot (`side` RESPONSE).

A held request holds the requests behind it too, as a slow link would (reordering would break
idempotent producers); a held slot holds the responses behind it (invariant 2).
"""

from __future__ import annotations

from kafka_chaos_proxy.faults.decision import ActionKind, Decision, Side
from kafka_chaos_proxy.proxy.pipeline.executors.base import Executor, FaultTarget, register
from kafka_chaos_proxy.proxy.pipeline.request_context import RequestContext


class Delay(Executor):
    kind = ActionKind.DELAY

    def on_request(self, conn: FaultTarget, ctx: RequestContext, decision: Decision,
                   expects_response: bool) -> None:
        held_until = conn.now() + max(decision.delay_s, 0.0)
        if decision.side is Side.REQUEST:
            conn.applied(decision)
            ctx.ready_at = held_until
        conn.forward(ctx)

    def on_response(self, conn: FaultTarget, ctx: RequestContext, decision: Decision,
                    data: bytes, now: float) -> None:
        if decision.side is Side.RESPONSE:
            conn.applied(decision)
            conn.fill_slot(ctx, data, now + max(decision.delay_s, 0.0))
        else:
            conn.fill_slot(ctx, data)


register(Delay())
