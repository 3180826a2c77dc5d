"""THROTTLE: from this request on, pace writes to the client at `throttle_bytes_per_s`.

The cap holds per connection and within a response: the writer trickles even one large
response out in slices (`Writer._flush_throttled`).
"""

from __future__ import annotations

from kafka_chaos_proxy.faults.decision import ActionKind, Decision
from kafka_chaos_proxy.proxy.pipeline.executors.base import Executor, FaultTarget, register
from kafka_chaos_proxy.proxy.pipeline.request_context import RequestContext


class Throttle(Executor):
    kind = ActionKind.THROTTLE

    def on_request(self, conn: FaultTarget, ctx: RequestContext, decision: Decision,
                   expects_response: bool) -> None:
        conn.applied(decision)
        conn.throttle(decision.throttle_bytes_per_s or None)
        conn.forward(ctx)


register(Throttle())
