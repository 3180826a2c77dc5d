"""HOLD: park the request before it is forwarded, or the broker's response before delivery,
until the hold's `until` happens, someone releases it, or its timeout runs out.

A parked request keeps its response slot, so the client gets its answers in request order
(everything behind the slot waits, as behind a dropped request), while the requests behind it
are still forwarded: a hold on an OffsetCommit does not stop the JoinGroup that follows it on
the same connection, which is what lets the commit land *during* the join.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from kafka_chaos_proxy.faults.decision import Decision, Side
from kafka_chaos_proxy.proxy.pipeline.executors.base import (
    Executor,
    FaultTarget,
    answer_with_error,
    register,
)
from kafka_chaos_proxy.proxy.pipeline.request_context import RequestContext

if TYPE_CHECKING:
    from kafka_chaos_proxy.faults.actions.hold import HoldPlan


def hold_then(conn: FaultTarget, ctx: RequestContext, decision: Decision,
              resume: Callable[[], None]) -> None:
    """Park `ctx` for `decision` (a hold); `resume` continues it, and a timeout does what the
    hold's `on_timeout` says (release = resume)."""
    plan: HoldPlan = decision.plan

    def expire() -> None:
        if plan.on_timeout == "drop":
            conn.end_exchange(ctx, "dropped")
        elif plan.on_timeout == "error" and ctx.slot is not None:
            answer_with_error(conn, ctx, decision)
        elif plan.on_timeout == "close":
            conn.close("fault_hold_timeout")
        else:
            resume()

    conn.applied(decision)
    conn.park(ctx, decision, resume, expire)


class Hold(Executor):
    kind = "hold"

    def on_request(self, conn: FaultTarget, ctx: RequestContext, decision: Decision,
                   expects_response: bool) -> None:
        if decision.side is Side.REQUEST:
            hold_then(conn, ctx, decision, lambda: conn.forward(ctx))
        else:
            conn.forward(ctx)

    def on_response(self, conn: FaultTarget, ctx: RequestContext, decision: Decision,
                    data: bytes, now: float) -> None:
        if decision.side is Side.RESPONSE:
            hold_then(conn, ctx, decision, lambda: conn.fill_slot(ctx, data))
        else:
            conn.fill_slot(ctx, data)


register(Hold())
