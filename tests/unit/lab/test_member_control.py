"""Member control on real processes: SIGSTOP/SIGCONT reach the harness process itself, SIGKILL
ends it, and a member the scenario killed is never classified as a crashed client."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from kafka_chaos_proxy.lab.matrix.classify import (
    MemberRun,
    Outcome,
    RunEvidence,
    classify,
    member_end,
)
from kafka_chaos_proxy.lab.matrix.members import Member

# A stand-in harness: the contract's first line, then a tick every 20 ms (a live poll loop).
TICKER = ("import json, time\n"
          "print(json.dumps({'ts': time.time(), 'event': 'started'}), flush=True)\n"
          "while True:\n"
          "    print(json.dumps({'ts': time.time(), 'event': 'tick'}), flush=True)\n"
          "    time.sleep(0.02)\n")


def ticks(member: Member) -> int:
    return sum(1 for e in member.snapshot() if e.get("event") == "tick")


def wait_for(cond: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def started(tmp_path: Path) -> Member:
    member = Member(0, [sys.executable, "-u", "-c", TICKER], tmp_path, lambda i, e: None)
    member.start()
    wait_for(lambda: ticks(member) >= 3)
    return member


def test_pause_stops_the_harness_itself_and_resume_lets_it_go_on(tmp_path: Path) -> None:
    member = started(tmp_path)
    try:
        pid = member.pid
        assert pid is not None and os.getpgid(pid) == pid  # its own group: the real process
        assert member.pause() and member.paused
        time.sleep(0.15)  # a line already in the pipe may still arrive
        frozen = ticks(member)
        time.sleep(0.4)
        assert ticks(member) == frozen  # no code ran while stopped
        assert member.alive()
        assert member.resume() and not member.paused
        wait_for(lambda: ticks(member) > frozen + 3)
        assert [c["action"] for c in member.control] == ["pause", "resume"]
        assert {c["pid"] for c in member.control} == {pid}
    finally:
        member.request_stop()
        member.wait_stopped(5)


def test_a_paused_member_still_stops_on_request(tmp_path: Path) -> None:
    member = started(tmp_path)
    member.pause()
    member.request_stop()  # resumes first, or SIGTERM would wait for a SIGCONT
    member.wait_stopped(5)
    assert not member.alive() and not member.killed_hard


def test_kill_ends_the_process_and_is_recorded_as_the_scenarios_doing(tmp_path: Path) -> None:
    member = started(tmp_path)
    assert member.kill()
    wait_for(lambda: not member.alive())
    member.wait_stopped(5)
    run = member.to_run()
    assert run.returncode == -9
    assert run.killed_by_scenario_at is not None
    assert [c["action"] for c in run.control] == ["kill"]
    assert member_end(run) == "killed_by_scenario"
    assert not member.kill()  # nothing left to signal, nothing recorded
    assert len(member.control) == 1


def ev(ts: float, event: str, **fields: Any) -> dict[str, Any]:
    return {"ts": ts, "client": "x", "event": event, **fields}


def test_a_killed_member_is_not_a_crash_and_the_survivor_decides() -> None:
    keys = [("t", 0, o) for o in range(4)]
    survivor = MemberRun(0, [ev(0, "started"), ev(1, "assigned", partitions={"t": [0]}),
                             *[ev(2 + i, "record", topic=t, partition=p, offset=o)
                               for i, (t, p, o) in enumerate(keys)]])
    killed = MemberRun(1, [ev(0, "started"), ev(1, "assigned", partitions={"t": [0]})],
                       returncode=-9, killed_by_scenario_at=1.5,
                       control=[{"ts": 1.5, "action": "kill", "pid": 42}])
    verdict = classify(RunEvidence(members=[survivor, killed], expected=set(keys),
                                   proxy_events=[], started_at=0, ended_at=10,
                                   expect_injection=False))
    assert verdict.outcome is Outcome.RECOVERED
    assert verdict.member_exits == [{"member": 1, "end": "killed_by_scenario",
                                     "returncode": -9, "error": None,
                                     "killed_by_scenario_at": 1.5}]


def test_an_end_of_its_own_before_the_kill_is_still_the_finding() -> None:
    run = MemberRun(0, [ev(0, "started"), ev(1, "exited", how="returned_nil", error=None)],
                    returncode=0, killed_by_scenario_at=2.0)
    assert member_end(run) == "returned_nil"
    crashed = MemberRun(0, [ev(0, "started"), ev(1, "exited", how="crashed", error="boom")],
                        returncode=3, killed_by_scenario_at=2.0)
    assert member_end(crashed) == "crashed"
    # Without the scenario's mark, the same SIGKILL is a crash.
    assert member_end(MemberRun(0, [ev(0, "started")], returncode=-9)) == "crashed"
