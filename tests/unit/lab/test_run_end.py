"""When a matrix run ends: as soon as every expectation is decided, never before every member
had the chance to show its own timeout after the last injection (cell.py, `_stop_reason`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

import kafka_chaos_proxy.lab.matrix.cell as cell_module
from kafka_chaos_proxy.lab.matrix.cell import CellRun, RunRequest
from kafka_chaos_proxy.lab.matrix.classify import MemberRun
from kafka_chaos_proxy.lab.matrix.clients import CLIENTS
from kafka_chaos_proxy.lab.matrix.driver import ScenarioDriver
from kafka_chaos_proxy.lab.scenario import Scenario, parse_scenario

KEY = ("t", 0, 0)


class Producer:
    records: set[Any] = set()

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.delivered: dict[Any, int] = {}
        self.failures: list[str] = []

    def expected(self) -> set[Any]:
        return set(self.records)


class Rules:
    def add_rule(self, rule: Any) -> dict[str, Any]:
        return {}

    def remove_rule(self, rule_id: str, missing_ok: bool = False) -> None:
        pass


class FakeMember:
    """A live harness that consumed `records` and was first heard at `started`."""

    def __init__(self, index: int, started: float, records: list[Any] = ()) -> None:
        self.index = index
        self.paused = False
        self.killed_by_scenario_at: float | None = None
        self.events: list[dict[str, Any]] = [{"ts": started, "event": "started"}] + [
            {"ts": started, "event": "record", "topic": t, "partition": p, "offset": o}
            for t, p, o in records]

    def alive(self) -> bool:
        return True

    def snapshot(self) -> list[dict[str, Any]]:
        return list(self.events)

    def to_run(self) -> MemberRun:
        return MemberRun(index=self.index, events=self.snapshot())


def make(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, scenario: Scenario,
         records: set[Any]) -> tuple[CellRun, ScenarioDriver]:
    monkeypatch.setattr(cell_module, "SequenceProducer", Producer)
    monkeypatch.setattr(cell_module, "JUDGE_EVERY_S", 0.0)
    monkeypatch.setattr(Producer, "records", records)
    req = RunRequest(client=CLIENTS["aiokafka"], scenario=scenario, run=1, protocol="classic",
                     kafka_bootstrap="127.0.0.1:1", artifacts=tmp_path, seed=1)
    run = CellRun(req)
    driver = ScenarioDriver(scenario, Rules(), None)  # type: ignore[arg-type]
    for state in driver.states:
        state.fired_at = run.t_begin  # every step has fired
    return run, driver


def scenario(**extra: Any) -> Scenario:
    return parse_scenario({"name": "s", "version": 1, "description": "d",
                           "setup": {"members": {"session_timeout_ms": 20000,
                                                 "heartbeat_interval_ms": 1000}},
                           "outcome": {"stall_bound_s": 15, "max_duration_s": 90}, **extra})


def test_not_before_the_members_timeout_after_the_last_injection(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    run, driver = make(monkeypatch, tmp_path, scenario(), {KEY})
    now = time.time()
    run.members.append(FakeMember(0, now, [KEY]))  # type: ignore[arg-type]
    run.heard[0] = now
    run.first_injection_at = run.last_injection_at = now - 19.0
    assert run._stop_reason(driver, {KEY}, elapsed=30, idle=10, now=now) is None
    # 20 s (the session timeout, the longest) after the last injection, all decided: the end.
    assert run._stop_reason(driver, {KEY}, elapsed=30, idle=10, now=now + 1.5) == ""


def test_records_outstanding_keep_the_run_going_until_a_stall(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    run, driver = make(monkeypatch, tmp_path, scenario(), {KEY, ("t", 0, 1)})
    now = time.time()
    run.members.append(FakeMember(0, now, [KEY]))  # type: ignore[arg-type]
    run.heard[0] = now
    assert run._stop_reason(driver, {KEY}, elapsed=30, idle=5, now=now) is None
    assert any(p.startswith("no_loss: 1 of 2 records outstanding") for p in run._pending)
    assert run._stop_reason(driver, {KEY}, elapsed=30, idle=15, now=now) == ""


def test_a_member_silent_right_now_keeps_the_silence_bound_open(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    run, driver = make(monkeypatch, tmp_path, scenario(), {KEY})
    now = time.time()
    run.members.append(FakeMember(0, now - 30, [KEY]))  # type: ignore[arg-type]
    for seq, ago in enumerate(range(30, 7, -1), start=1):  # a heartbeat a second, until 8 s ago
        run._note_wire({"seq": seq, "ts": now - ago, "api": "Heartbeat",
                        "client_id": f"{run.client_prefix}-m0"})
        run.proxy_events[seq] = {"seq": seq, "ts": now - ago, "api": "Heartbeat",
                                 "client_id": f"{run.client_prefix}-m0"}
    assert run.heard[0] == pytest.approx(now - 8.0)  # two heartbeat intervals: 2 s; floor 3 s
    assert run._open_silence(now) == pytest.approx(8.0)
    assert run._stop_reason(driver, {KEY}, elapsed=30, idle=10, now=now) is None
    assert run._pending and run._pending[0].startswith("max_silence_s: a member has been silent")
    run.heard[0] = now - 1.0
    assert run._open_silence(now) == 0.0
    # A member that only fetches is silent to its group: Fetch samples are not heard.
    run._note_wire({"seq": 99, "ts": now, "api": "Fetch", "outcome": "observed",
                    "client_id": f"{run.client_prefix}-m0", "partitions": {"t": [0]}})
    assert run.heard[0] == pytest.approx(now - 1.0)


def test_what_was_still_pending_is_said_at_max_duration(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    run, driver = make(monkeypatch, tmp_path, scenario(), {KEY, ("t", 0, 1)})
    now = time.time()
    run.members.append(FakeMember(0, now, [KEY]))  # type: ignore[arg-type]
    run.heard[0] = now
    assert run._stop_reason(driver, {KEY}, elapsed=30, idle=5, now=now) is None
    reason = run._stop_reason(driver, {KEY}, elapsed=90, idle=5, now=now)
    assert reason is not None and reason.startswith("max_duration_s 90 reached; still pending: "
                                                    "no_loss: 1 of 2 records outstanding")


def test_an_explicit_expectation_set_decides_alone(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A fenced member that stopped: nothing else is expected, so records left unconsumed do
    not hold the run."""
    fenced = scenario(expect=[{"terminal_error": {"kinds": ["FENCED_INSTANCE_ID"]}}])
    run, driver = make(monkeypatch, tmp_path, fenced, {KEY, ("t", 0, 1)})
    now = time.time()
    member = FakeMember(0, now - 25)
    member.events.append({"ts": now - 24, "event": "error", "error": "FencedInstanceIdError: x"})
    member.events.append({"ts": now - 24, "event": "exited", "how": "returned_error"})
    run.members.append(member)  # type: ignore[arg-type]
    run.heard[0] = now
    run.first_injection_at = run.last_injection_at = now - 24.5
    assert run._stop_reason(driver, set(), elapsed=30, idle=5, now=now) == ""
