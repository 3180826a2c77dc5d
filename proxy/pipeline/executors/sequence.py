"""SEQUENCE: several rules acting on one request (rules with `chain`), in rule order.

Each stage is one rule's decision. On the request side, in order: a request delay adds to the
time the request may leave, a request hold parks it (the stages after it continue when it
ends), a throttle applies at once, and the first stage that answers instead of forwarding
(error, drop_request, close before) ends the request side, at the time the delays before it
reached. Without such a stage the request is forwarded and, when the broker answers, the
response-side stages run in order: a response delay adds up, a response hold parks, an
error_after_forward replaces the answer (and a later close still delivers it first), and a
drop_response or close after ends it. A stage of another kind is handed to its own executor
and ends the sequence there.

So "delay then error" answers with the error after the delay, and "error after forward then
close" delivers the error and then closes the connection.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

from kafka_chaos_proxy.faults.decision import ActionKind, CloseWhen, Decision, Side
from kafka_chaos_proxy.proxy.pipeline.executors.base import (
    Executor,
    FaultTarget,
    executor_for,
    register,
)
from kafka_chaos_proxy.proxy.pipeline.executors.hold import hold_then
from kafka_chaos_proxy.proxy.pipeline.request_context import RequestContext

HOLD = "hold"
_ANSWERS_INSTEAD = (ActionKind.ERROR, ActionKind.DROP_REQUEST)


def _is_request_stage(stage: Decision) -> bool:
    kind = stage.action
    if kind in (ActionKind.DELAY, HOLD):
        return stage.side is Side.REQUEST
    if kind == ActionKind.CLOSE:
        return stage.close_when is CloseWhen.BEFORE
    return kind in (*_ANSWERS_INSTEAD, ActionKind.THROTTLE)


def _is_known(stage: Decision) -> bool:
    return stage.action in (*ActionKind, HOLD)


class SequenceExecutor(Executor):
    kind = "sequence"

    def on_request(self, conn: FaultTarget, ctx: RequestContext, decision: Decision,
                   expects_response: bool) -> None:
        self._request_from(conn, ctx, decision.plan, 0, expects_response)

    def _request_from(self, conn: FaultTarget, ctx: RequestContext, stages: Sequence[Decision],
                      start: int, expects_response: bool) -> None:
        for i in range(start, len(stages)):
            stage = stages[i]
            if not _is_known(stage):
                executor_for(stage.action).on_request(conn, ctx, stage, expects_response)
                return
            if not _is_request_stage(stage):
                continue
            kind = stage.action
            if kind == ActionKind.THROTTLE:
                conn.applied(stage)
                conn.throttle(stage.throttle_bytes_per_s)
            elif kind == ActionKind.DELAY:
                conn.applied(stage)
                ctx.ready_at = max(ctx.ready_at, conn.now()) + max(stage.delay_s, 0.0)
            elif kind == HOLD:
                hold_then(conn, ctx, stage, partial(
                    self._request_from, conn, ctx, stages, i + 1, expects_response))
                return
            else:  # answers instead of forwarding: at the time the delays before it reached
                self._at_ready(conn, ctx, partial(
                    executor_for(kind).on_request, conn, ctx, stage, expects_response))
                return
        conn.forward(ctx)
        if not expects_response:
            self._no_response(conn, ctx, stages)

    @staticmethod
    def _at_ready(conn: FaultTarget, ctx: RequestContext, act: Callable[[], None]) -> None:
        if ctx.ready_at > conn.now():
            conn.schedule(ctx.ready_at, act)
        else:
            act()

    @staticmethod
    def _no_response(conn: FaultTarget, ctx: RequestContext, stages: Sequence[Decision]) -> None:
        """An acks=0 Produce: a close-after stage closes once the request was forwarded."""
        for stage in stages:
            if stage.action == ActionKind.CLOSE and stage.close_when is CloseWhen.AFTER:
                conn.applied(stage)
                conn.close("fault_close", mode=stage.close_mode)
                return

    def on_response(self, conn: FaultTarget, ctx: RequestContext, decision: Decision,
                    data: bytes, now: float) -> None:
        self._response_from(conn, ctx, decision.plan, 0, data, 0.0, False)

    def _response_from(self, conn: FaultTarget, ctx: RequestContext,
                       stages: Sequence[Decision], start: int, data: bytes, due: float,
                       replaced: bool) -> None:
        for i in range(start, len(stages)):
            stage = stages[i]
            if not _is_known(stage):
                executor_for(stage.action).on_response(conn, ctx, stage, data, conn.now())
                return
            if _is_request_stage(stage):
                continue  # ran on the request side
            kind = stage.action
            if kind == ActionKind.DELAY:
                conn.applied(stage)
                due = max(due, conn.now()) + max(stage.delay_s, 0.0)
            elif kind == HOLD:
                hold_then(conn, ctx, stage, partial(
                    self._response_from, conn, ctx, stages, i + 1, data, due, replaced))
                return
            elif kind == ActionKind.ERROR_AFTER_FORWARD:
                conn.applied(stage)
                synthesized = conn.synthesize_error(ctx, stage.error_code)
                if synthesized is None:
                    conn.close("error_synthesis_failed")
                    return
                data, replaced = synthesized, True
                ctx.written_as = "error_injected"
            elif kind == ActionKind.DROP_RESPONSE:
                conn.applied(stage)
                conn.end_exchange(ctx, "dropped")
                conn.close_later(stage)
                return
            elif kind == ActionKind.CLOSE:
                conn.applied(stage)
                if replaced:  # deliver the replacement first, then close
                    conn.fill_slot(ctx, data, due)
                    conn.schedule(max(due, conn.now()), partial(
                        conn.close, "fault_close", mode=stage.close_mode))
                else:
                    conn.end_exchange(ctx, "closed")
                    conn.close("fault_close", mode=stage.close_mode)
                return
        conn.fill_slot(ctx, data, due)


register(SequenceExecutor())
