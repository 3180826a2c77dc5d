"""Outcome classification from event streams built by hand, one per outcome and edge case."""

from __future__ import annotations

from typing import Any

import pytest

from kafka_chaos_proxy.lab.matrix.classify import (
    MemberRun,
    Outcome,
    RunEvidence,
    classify,
    error_name,
    member_end,
    modal,
)

T = "topic"
EXPECTED = {(T, p, o) for p in range(2) for o in range(3)}  # 6 records


def ev(ts: float, event: str, **fields: Any) -> dict[str, Any]:
    return {"ts": ts, "client": "x", "event": event, **fields}


def records(ts: float, keys: list[tuple[str, int, int]]) -> list[dict[str, Any]]:
    return [ev(ts + i * 0.01, "record", topic=t, partition=p, offset=o)
            for i, (t, p, o) in enumerate(keys)]


def start(ts: float = 0.0) -> list[dict[str, Any]]:
    return [ev(ts, "started", library="lib", version="1", protocol="classic"),
            ev(ts + 0.5, "assigned", partitions={T: [0, 1]}, generation=1, member_id="m")]


FAULT = {"ts": 1.0, "api": "SyncGroup", "fault": {"rule": "r", "action": "error"}}


def evidence(*members: MemberRun, proxy: list[dict[str, Any]] | None = None,
             expect_injection: bool = True, expected: set[Any] | None = None) -> RunEvidence:
    return RunEvidence(
        members=list(members), expected=EXPECTED if expected is None else expected,
        proxy_events=[FAULT] if proxy is None else proxy, started_at=0.0, ended_at=30.0,
        expect_injection=expect_injection,
    )


def stopped(index: int, events: list[dict[str, Any]], at: float = 20.0) -> MemberRun:
    """A member the runner stopped at teardown: SIGTERM, then the harness says killed."""
    return MemberRun(index, [*events, ev(at + 0.1, "exited", how="killed", error=None)],
                     returncode=0, stop_requested_at=at)


def test_recovered_exactly_once_with_time_to_recover() -> None:
    member = stopped(0, [*start(), *records(3.0, sorted(EXPECTED))])
    c = classify(evidence(member))
    assert c.outcome is Outcome.RECOVERED
    assert (c.missing, c.duplicates, c.consumed) == (0, 0, 6)
    assert c.time_to_recover_s == pytest.approx(2.05)
    assert c.injections == 1


def test_duplicates_counted_exactly_across_members() -> None:
    keys = sorted(EXPECTED)
    m0 = stopped(0, [*start(), *records(2.0, keys)])
    # member 1 re-reads partition 1 (3 records) and one of them twice
    m1 = stopped(1, [*start(5.0), *records(6.0, [k for k in keys if k[1] == 1]),
                     *records(7.0, [(T, 1, 2)])])
    c = classify(evidence(m0, m1))
    assert c.outcome is Outcome.DUPLICATES
    assert c.duplicates == 4
    assert c.missing == 0


def test_silent_exit_when_process_returns_without_error() -> None:
    member = MemberRun(0, [*start(), *records(2.0, sorted(EXPECTED)[:2]),
                           ev(3.0, "consume_returned", error=None),
                           ev(3.1, "exited", how="returned_nil", error=None)], returncode=0)
    c = classify(evidence(member))
    assert c.outcome is Outcome.SILENT_EXIT
    assert c.missing == 4


def test_silent_exit_beats_recovery_of_the_rest_of_the_group() -> None:
    """One member quietly quitting is the finding even if another took its partitions."""
    quitter = MemberRun(0, [*start(), ev(2.0, "exited", how="returned_nil", error=None)],
                        returncode=0)
    survivor = stopped(1, [*start(1.0), *records(3.0, sorted(EXPECTED))])
    assert classify(evidence(quitter, survivor)).outcome is Outcome.SILENT_EXIT


def test_process_gone_without_exit_line_and_rc_zero_is_silent() -> None:
    member = MemberRun(0, start(), returncode=0)
    assert member_end(member) == "died"
    assert classify(evidence(member)).outcome is Outcome.SILENT_EXIT


def test_exit_after_surfacing_an_error_is_surfaced_error() -> None:
    member = MemberRun(0, [*start(), ev(2.0, "error", error="FENCED_INSTANCE_ID: fenced",
                                        source="error_cb"),
                           ev(2.1, "exited", how="returned_error", error="fatal")], returncode=0)
    c = classify(evidence(member))
    assert c.outcome is Outcome.SURFACED_ERROR
    assert c.errors == ["FENCED_INSTANCE_ID", "fatal"]


def test_alive_and_stuck_without_errors_is_stalled() -> None:
    member = stopped(0, [*start(), *records(2.0, sorted(EXPECTED)[:3]),
                         ev(2.5, "log", level="WARNING", logger="lib", message="heartbeat failed")])
    c = classify(evidence(member))
    assert c.outcome is Outcome.STALLED  # log lines are evidence, not surfaced errors
    assert c.missing == 3


def test_alive_and_stuck_reporting_errors_is_surfaced_error() -> None:
    member = stopped(0, [*start(), ev(2.0, "commit", ok=False, error="CommitFailedError: x",
                                      offsets={})])
    c = classify(evidence(member))
    assert c.outcome is Outcome.SURFACED_ERROR
    assert c.errors == ["CommitFailedError"]


def test_recovered_with_errors_keeps_the_errors_in_the_detail() -> None:
    member = stopped(0, [*start(), ev(1.5, "error", error="NotCoordinatorError: moved",
                                      source="poll"), *records(3.0, sorted(EXPECTED))])
    c = classify(evidence(member))
    assert c.outcome is Outcome.RECOVERED
    assert "NotCoordinatorError" in c.detail


def test_crash_wins_over_everything() -> None:
    crashed = MemberRun(0, [*start(), *records(2.0, sorted(EXPECTED)),
                            ev(3.0, "exited", how="crashed", error="panic")], returncode=2)
    assert classify(evidence(crashed)).outcome is Outcome.CRASHED
    killed_by_signal = MemberRun(0, start(), returncode=-11)
    assert classify(evidence(killed_by_signal)).outcome is Outcome.CRASHED


def test_errors_during_requested_close_are_not_surfaced() -> None:
    member = stopped(0, [*start(), *records(2.0, sorted(EXPECTED)),
                         ev(20.05, "error", error="KafkaError: closing", source="close")])
    assert classify(evidence(member)).outcome is Outcome.RECOVERED


def test_member_stopped_by_a_step_is_not_an_exit() -> None:
    member = stopped(0, [*start(), *records(2.0, sorted(EXPECTED))], at=5.0)
    assert member_end(member) == "running"


def test_not_injected_when_the_fault_never_fired() -> None:
    member = stopped(0, [*start(), *records(2.0, sorted(EXPECTED))])
    assert classify(evidence(member, proxy=[])).outcome is Outcome.NOT_INJECTED
    baseline = classify(evidence(member, proxy=[], expect_injection=False))
    assert baseline.outcome is Outcome.RECOVERED
    assert baseline.time_to_recover_s is None


def test_records_outside_the_expected_set_do_not_count() -> None:
    member = stopped(0, [*start(), *records(2.0, [*sorted(EXPECTED), ("other", 0, 0)])])
    c = classify(evidence(member))
    assert (c.outcome, c.consumed, c.duplicates) == (Outcome.RECOVERED, 6, 0)


def test_no_started_line_is_an_infrastructure_problem() -> None:
    member = MemberRun(0, [], returncode=None)
    assert classify(evidence(member)).outcome is Outcome.INFRA_ERROR


@pytest.mark.parametrize(("text", "name"), [
    ("RebalanceInProgressError: [Error 27] group rebalancing", "RebalanceInProgressError"),
    ("NOT_COORDINATOR: Broker: Not coordinator", "NOT_COORDINATOR"),
    ("kafka server: The provided member is not known in the current generation",
     "kafka server: The provided member is not known in the current generation"),
    (None, "unknown"),
])
def test_error_names(text: str | None, name: str) -> None:
    assert error_name(text) == name


def test_modal_outcome_and_ties() -> None:
    assert modal(["recovered", "stalled", "recovered"]) == ("recovered", 2)
    assert modal(["stalled", "recovered"]) == ("stalled", 1)
    assert modal([]) == ("", 0)
