"""The fault executors: one per action kind, found by the kind's plain string, and what each
one asks of the connection (recorded by a fake `FaultTarget`)."""

from __future__ import annotations

from typing import Any

import pytest

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.faults.decision import ActionKind, CloseMode, CloseWhen, Decision, Side
from kafka_chaos_proxy.proxy.pipeline.executors import EXECUTORS, Executor, executor_for
from kafka_chaos_proxy.proxy.pipeline.request_context import RequestContext
from kafka_chaos_proxy.proxy.pipeline.slots import SlotQueue
from tests.support.wire_fakes import request_frame


class Recorder:
    """A `FaultTarget` that records the calls an executor makes, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def applied(self, decision: Decision) -> None:
        self.calls.append(("applied",))

    def forward(self, ctx: RequestContext) -> None:
        self.calls.append(("forward", ctx.ready_at))

    def fill_slot(self, ctx: RequestContext, data: bytes, ready_at: float = 0.0) -> None:
        self.calls.append(("fill_slot", data, ready_at))

    def synthesize_error(self, ctx: RequestContext, error_code: int | None) -> bytes | None:
        self.calls.append(("synthesize_error", error_code))
        return b"synth"

    def end_exchange(self, ctx: RequestContext, outcome: str) -> None:
        self.calls.append(("end_exchange", outcome))

    def close(self, reason: str, mode: CloseMode = CloseMode.GRACEFUL, detail: str = "") -> None:
        self.calls.append(("close", reason, mode))

    def close_later(self, decision: Decision) -> None:
        self.calls.append(("close_later", decision.close_after_s))

    def now(self) -> float:
        return 100.0

    def throttle(self, bytes_per_s: int | None) -> None:
        self.calls.append(("throttle", bytes_per_s))


class _Facts:
    id, client_host, node_id = 1, "127.0.0.1", -1
    principal: str | None = None


def _ctx(with_slot: bool = True) -> RequestContext:
    frame = request_frame(12, 4, 7, {"group_id": "g", "generation_id": 1, "member_id": "m"})
    ctx = RequestContext(_Facts(), frame, codec.parse_request_header(memoryview(frame)[4:]), 0.0)
    if with_slot:
        ctx.slot = SlotQueue().allocate(7, 12, 4, ctx)
    return ctx


def test_every_action_kind_has_its_executor_keyed_by_its_plain_string() -> None:
    for kind in ActionKind:
        assert kind.value in EXECUTORS
        assert EXECUTORS[kind.value].kind == kind
    assert all(type(key) is str for key in EXECUTORS)


def test_each_executor_is_its_own_module_named_after_its_kind() -> None:
    for kind, executor in EXECUTORS.items():
        assert type(executor).__module__ == f"kafka_chaos_proxy.proxy.pipeline.executors.{kind}"


def test_plain_strings_and_enum_members_find_the_same_executor() -> None:
    for kind in ActionKind:
        assert executor_for(str(kind.value)) is executor_for(kind)


def test_a_kind_without_an_executor_is_passed_through() -> None:
    conn, ctx = Recorder(), _ctx()
    executor = executor_for("not_an_action")
    assert type(executor) is Executor
    executor.on_request(conn, ctx, Decision(), True)
    executor.on_response(conn, ctx, Decision(), b"resp", 1.0)
    assert conn.calls == [("forward", 0.0), ("fill_slot", b"resp", 0.0)]


def test_written_outcome_marks_synthesized_errors_only() -> None:
    injected = {k for k, e in EXECUTORS.items() if e.written_outcome == "error_injected"}
    assert injected == {ActionKind.ERROR, ActionKind.ERROR_AFTER_FORWARD}


D = Decision
REQUEST_SIDE: list[tuple[Decision, bool, bool, list[tuple[Any, ...]]]] = [
    (D(ActionKind.FORWARD), True, True, [("forward", 0.0)]),
    (D(ActionKind.ERROR, error_code=27), True, True,
     [("applied",), ("synthesize_error", 27), ("fill_slot", b"synth", 0.0)]),
    (D(ActionKind.ERROR, error_code=27), False, False,
     [("applied",), ("end_exchange", "error_injected")]),
    (D(ActionKind.ERROR_AFTER_FORWARD), True, True, [("forward", 0.0)]),
    (D(ActionKind.DROP_REQUEST, close_after_s=2.0), True, True,
     [("applied",), ("end_exchange", "dropped"), ("close_later", 2.0)]),
    (D(ActionKind.DROP_RESPONSE), True, True, [("forward", 0.0)]),
    (D(ActionKind.DELAY, side=Side.REQUEST, delay_s=0.5), True, True,
     [("applied",), ("forward", 100.5)]),
    (D(ActionKind.DELAY, side=Side.REQUEST, delay_s=-1.0), True, True,
     [("applied",), ("forward", 100.0)]),
    (D(ActionKind.DELAY, side=Side.RESPONSE, delay_s=0.5), True, True, [("forward", 0.0)]),
    (D(ActionKind.CLOSE, close_when=CloseWhen.BEFORE, close_mode=CloseMode.RESET), True, True,
     [("applied",), ("close", "fault_close", CloseMode.RESET)]),
    (D(ActionKind.CLOSE, close_when=CloseWhen.AFTER), True, True, [("forward", 0.0)]),
    (D(ActionKind.CLOSE, close_when=CloseWhen.AFTER), False, False,
     [("forward", 0.0), ("applied",), ("close", "fault_close", CloseMode.GRACEFUL)]),
    (D(ActionKind.THROTTLE, throttle_bytes_per_s=500), True, True,
     [("applied",), ("throttle", 500), ("forward", 0.0)]),
    (D(ActionKind.THROTTLE, throttle_bytes_per_s=0), True, True,
     [("applied",), ("throttle", None), ("forward", 0.0)]),
]


@pytest.mark.parametrize(("decision", "expects_response", "slot", "calls"), REQUEST_SIDE)
def test_request_side(decision: Decision, expects_response: bool, slot: bool,
                      calls: list[tuple[Any, ...]]) -> None:
    conn = Recorder()
    executor_for(decision.action).on_request(conn, _ctx(slot), decision, expects_response)
    assert conn.calls == calls


RESPONSE_SIDE: list[tuple[Decision, list[tuple[Any, ...]]]] = [
    (D(ActionKind.FORWARD), [("fill_slot", b"resp", 0.0)]),
    (D(ActionKind.ERROR_AFTER_FORWARD, error_code=25),
     [("applied",), ("synthesize_error", 25), ("fill_slot", b"synth", 0.0)]),
    (D(ActionKind.DROP_RESPONSE, close_after_s=1.0),
     [("applied",), ("end_exchange", "dropped"), ("close_later", 1.0)]),
    (D(ActionKind.DELAY, side=Side.RESPONSE, delay_s=0.5),
     [("applied",), ("fill_slot", b"resp", 10.5)]),
    (D(ActionKind.DELAY, side=Side.REQUEST, delay_s=0.5), [("fill_slot", b"resp", 0.0)]),
    (D(ActionKind.CLOSE, close_when=CloseWhen.AFTER),
     [("applied",), ("end_exchange", "closed"), ("close", "fault_close", CloseMode.GRACEFUL)]),
    (D(ActionKind.THROTTLE, throttle_bytes_per_s=500), [("fill_slot", b"resp", 0.0)]),
]


@pytest.mark.parametrize(("decision", "calls"), RESPONSE_SIDE)
def test_response_side(decision: Decision, calls: list[tuple[Any, ...]]) -> None:
    conn = Recorder()
    executor_for(decision.action).on_response(conn, _ctx(), decision, b"resp", 10.0)
    assert conn.calls == calls


def test_failed_error_synthesis_closes() -> None:
    class NoSynth(Recorder):
        def synthesize_error(self, ctx: RequestContext, error_code: int | None) -> bytes | None:
            return None

    for side in ("request", "response"):
        conn = NoSynth()
        if side == "request":
            executor_for(ActionKind.ERROR).on_request(conn, _ctx(), D(ActionKind.ERROR), True)
        else:
            executor_for(ActionKind.ERROR_AFTER_FORWARD).on_response(
                conn, _ctx(), D(ActionKind.ERROR_AFTER_FORWARD), b"resp", 0.0)
        assert conn.calls == [("applied",), ("close", "error_synthesis_failed",
                                             CloseMode.GRACEFUL)]
