"""The `error` executor in broker-consistent mode, against a fake connection: which member it
asks the side channel to remove, that the slot stays unfilled until the removal is done, that
the client is answered even when the removal failed (with a warning), and never on a closed
connection. The side channel itself is tested against a real broker
(tests/integration/proxy/test_broker_consistent_fencing.py); here it is replaced."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from structlog.testing import capture_logs

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.faults.actions.error import ErrorPlan
from kafka_chaos_proxy.faults.decision import ActionKind, CloseMode, Decision
from kafka_chaos_proxy.proxy import side_channel
from kafka_chaos_proxy.proxy.pipeline.executors import error as error_executor
from kafka_chaos_proxy.proxy.pipeline.executors import executor_for
from kafka_chaos_proxy.proxy.pipeline.request_context import RequestContext
from kafka_chaos_proxy.proxy.pipeline.slots import SlotQueue
from kafka_chaos_proxy.proxy.side_channel import SideChannelResult
from tests.support.wire_fakes import request_frame

JOIN_GROUP, HEARTBEAT, OFFSET_COMMIT, FIND_COORDINATOR, CGH = 11, 12, 8, 10, 68
BROKER = ("10.0.0.7", 9092)
CONSISTENT = Decision(ActionKind.ERROR, "r1", error_code=25,
                      plan=ErrorPlan(broker_consistent=True))


class Conn:
    """A `FaultTarget` that records what the executor asks of it."""

    def __init__(self, upstream_addr: tuple[str, int] | None = BROKER) -> None:
        self.upstream_addr = upstream_addr
        self.side_channel_access = side_channel.PLAIN_ACCESS
        self.closed = False
        self.calls: list[tuple[Any, ...]] = []

    def applied(self, decision: Decision) -> None:
        self.calls.append(("applied",))

    def synthesize_error(self, ctx: RequestContext, error_code: int | None) -> bytes | None:
        self.calls.append(("synthesize_error", error_code))
        return b"synth"

    def fill_slot(self, ctx: RequestContext, data: bytes, ready_at: float = 0.0) -> None:
        self.calls.append(("fill_slot", data))

    def end_exchange(self, ctx: RequestContext, outcome: str) -> None:
        self.calls.append(("end_exchange", outcome))

    def close(self, reason: str, mode: CloseMode = CloseMode.GRACEFUL, detail: str = "") -> None:
        self.calls.append(("close", reason))

    def now(self) -> float:
        return 0.0


class _Facts:
    id, client_host, node_id = 3, "127.0.0.1", 1
    principal: str | None = None


def _ctx(api_key: int, version: int, body: dict[str, Any]) -> RequestContext:
    frame = request_frame(api_key, version, 9, body)
    ctx = RequestContext(_Facts(), frame, codec.parse_request_header(memoryview(frame)[4:]), 0.0)
    ctx.slot = SlotQueue().allocate(9, api_key, version, ctx)
    return ctx


def _heartbeat(member_id: str = "m-1", instance: str | None = None) -> RequestContext:
    return _ctx(HEARTBEAT, 4, {"group_id": "g", "generation_id": 3, "member_id": member_id,
                               "group_instance_id": instance})


class SideChannel:
    """Stands in for `proxy.side_channel`: records calls, answers as told, when released."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, **answers: SideChannelResult) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.answers = answers
        self.release = asyncio.Event()
        self.release.set()
        monkeypatch.setattr(side_channel, "remove_member", self._remove_member)
        monkeypatch.setattr(side_channel, "leave_consumer_group", self._leave)

    async def _remove_member(self, address: Any, group_id: str, member_id: str,
                             group_instance_id: str | None = None,
                             **_: Any) -> SideChannelResult:
        self.calls.append(("remove_member", address, group_id, member_id, group_instance_id))
        await self.release.wait()
        return self.answers.get("remove", SideChannelResult("LeaveGroup", None, 0.002,
                                                            version=5))

    async def _leave(self, address: Any, group_id: str, member_id: str,
                     **_: Any) -> SideChannelResult:
        self.calls.append(("leave_consumer_group", address, group_id, member_id))
        await self.release.wait()
        return self.answers.get("leave", SideChannelResult("ConsumerGroupHeartbeat", None,
                                                           0.002, version=1))


async def _settle() -> None:
    for _ in range(10):
        if not error_executor._PENDING:
            return
        await asyncio.gather(*error_executor._PENDING)


ANSWERED = [("applied",), ("synthesize_error", 25), ("fill_slot", b"synth")]


async def test_the_member_is_removed_before_the_slot_is_filled(
        monkeypatch: pytest.MonkeyPatch) -> None:
    channel = SideChannel(monkeypatch)
    channel.release.clear()
    conn = Conn()
    with capture_logs() as logs:
        executor_for(ActionKind.ERROR).on_request(conn, _heartbeat(instance="i-1"), CONSISTENT,
                                                  True)
        await asyncio.sleep(0)
        assert conn.calls == [("applied",)]  # the slot waits for the broker
        assert channel.calls == [("remove_member", BROKER, "g", "m-1", "i-1")]
        channel.release.set()
        await _settle()
    assert conn.calls == ANSWERED
    (line,) = [e for e in logs if e["event"] == "broker_consistent_removal"]
    assert line["log_level"] == "info" and line["via"] == "LeaveGroup v5"
    assert (line["group"], line["member"], line["instance"]) == ("g", "m-1", "i-1")
    assert line["broker"] == "10.0.0.7:9092" and line["rule"] == "r1"


async def test_a_member_the_broker_did_not_know_is_agreement(
        monkeypatch: pytest.MonkeyPatch) -> None:
    SideChannel(monkeypatch, remove=SideChannelResult("LeaveGroup", "UNKNOWN_MEMBER_ID", 0.001,
                                                      version=5))
    conn = Conn()
    with capture_logs() as logs:
        executor_for(ActionKind.ERROR).on_request(conn, _heartbeat(), CONSISTENT, True)
        await _settle()
    assert conn.calls == ANSWERED
    assert not [e for e in logs if e["event"] == "broker_consistency_failed"]


@pytest.mark.parametrize(("result", "reason"), [
    (SideChannelResult("LeaveGroup", None, 5.0, reason="no answer from b:1 within 5 s"),
     "no answer from b:1 within 5 s"),
    (SideChannelResult("LeaveGroup", "NOT_COORDINATOR", 0.003, version=5),
     "the broker answered NOT_COORDINATOR"),
])
async def test_a_failed_removal_still_answers_and_warns(
        monkeypatch: pytest.MonkeyPatch, result: SideChannelResult, reason: str) -> None:
    SideChannel(monkeypatch, remove=result)
    conn = Conn()
    with capture_logs() as logs:
        executor_for(ActionKind.ERROR).on_request(conn, _heartbeat(), CONSISTENT, True)
        await _settle()
    assert conn.calls == ANSWERED
    (warning,) = [e for e in logs if e["event"] == "broker_consistency_failed"]
    assert warning["log_level"] == "warning" and warning["reason"] == reason


async def test_a_connection_closed_meanwhile_gets_nothing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    channel = SideChannel(monkeypatch)
    channel.release.clear()
    conn = Conn()
    executor_for(ActionKind.ERROR).on_request(conn, _heartbeat(), CONSISTENT, True)
    await asyncio.sleep(0)
    conn.closed = True
    channel.release.set()
    await _settle()
    assert conn.calls == [("applied",)]


async def test_an_empty_member_id_is_answered_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    channel = SideChannel(monkeypatch)
    conn = Conn()
    join = _ctx(JOIN_GROUP, 5, {"group_id": "g", "session_timeout_ms": 10000,
                                "rebalance_timeout_ms": 10000, "member_id": "",
                                "protocol_type": "consumer", "protocols": []})
    with capture_logs() as logs:
        executor_for(ActionKind.ERROR).on_request(conn, join, CONSISTENT, True)
    assert conn.calls == ANSWERED and channel.calls == [] and not error_executor._PENDING
    assert not [e for e in logs if e["event"] == "broker_consistency_failed"]


@pytest.mark.parametrize(("ctx", "upstream", "reason"), [
    (lambda: _ctx(FIND_COORDINATOR, 4, {"key_type": 0, "coordinator_keys": ["g"]}), BROKER,
     "a FindCoordinator request names no member to remove"),
    (_heartbeat, None, "the connection has no broker yet"),
])
async def test_no_member_or_no_broker_answers_at_once_with_a_warning(
        monkeypatch: pytest.MonkeyPatch, ctx: Any, upstream: Any, reason: str) -> None:
    channel = SideChannel(monkeypatch)
    conn = Conn(upstream)
    with capture_logs() as logs:
        executor_for(ActionKind.ERROR).on_request(conn, ctx(), CONSISTENT, True)
    assert conn.calls == ANSWERED and channel.calls == []
    (warning,) = [e for e in logs if e["event"] == "broker_consistency_failed"]
    assert warning["reason"] == reason


async def test_a_kip848_member_leaves_by_its_own_heartbeat(
        monkeypatch: pytest.MonkeyPatch) -> None:
    channel = SideChannel(monkeypatch)
    conn = Conn()
    heartbeat = _ctx(CGH, 0, {"group_id": "g", "member_id": "m-848", "member_epoch": 4})
    executor_for(ActionKind.ERROR).on_request(conn, heartbeat, CONSISTENT, True)
    await _settle()
    assert channel.calls == [("leave_consumer_group", BROKER, "g", "m-848")]
    assert conn.calls == ANSWERED


async def test_an_offset_commit_names_its_member_and_instance(
        monkeypatch: pytest.MonkeyPatch) -> None:
    channel = SideChannel(monkeypatch)
    conn = Conn()
    commit = _ctx(OFFSET_COMMIT, 9, {"group_id": "g", "generation_id_or_member_epoch": 4,
                                     "member_id": "m-1", "group_instance_id": "i-1",
                                     "topics": []})
    executor_for(ActionKind.ERROR).on_request(conn, commit, CONSISTENT, True)
    await _settle()
    assert channel.calls == [("remove_member", BROKER, "g", "m-1", "i-1")]
    assert conn.calls == ANSWERED


async def test_a_plain_error_never_asks_the_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    channel = SideChannel(monkeypatch)
    conn = Conn()
    plain = Decision(ActionKind.ERROR, "r1", error_code=25)
    executor_for(ActionKind.ERROR).on_request(conn, _heartbeat(), plain, True)
    assert conn.calls == ANSWERED and channel.calls == []


async def test_a_side_channel_bug_still_answers_the_client(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*args: Any, **kwargs: Any) -> SideChannelResult:
        raise RuntimeError("bug")

    monkeypatch.setattr(side_channel, "remove_member", broken)
    conn = Conn()
    with capture_logs() as logs:
        executor_for(ActionKind.ERROR).on_request(conn, _heartbeat(), CONSISTENT, True)
        await _settle()
    assert conn.calls == ANSWERED
    (warning,) = [e for e in logs if e["event"] == "broker_consistency_failed"]
    assert warning["reason"] == "internal error: RuntimeError('bug')"
