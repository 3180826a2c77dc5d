"""The judge: each expectation pass / fail / undecided from constructed observations, with the
numbers in the reason; the run's verdict; realism; what is still pending while a run goes on."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from kafka_chaos_proxy.lab.matrix.classify import Classification, Outcome
from kafka_chaos_proxy.lab.matrix.observations import MemberObservations, Observations
from kafka_chaos_proxy.lab.matrix.verdict import (
    Progress,
    Verdict,
    judge,
    kind_matches,
    robustness_only,
)
from kafka_chaos_proxy.lab.scenario import Scenario, parse_scenario


def member(index: int = 0, **extra: Any) -> MemberObservations:
    base: dict[str, Any] = dict(
        index=index, client_id=f"c-m{index}", killed_by_scenario=False, longest_silence_s=1.0,
        unassigned_while_others_owned_s=0.0, time_to_reassignment_s=None, app_errors=0,
        error_kinds=[], first_error_at=None, last_error_at=None, consume_returned_silently=0,
        rejoins=0, rejoins_with_new_member_id=0, membership_lost=False, commits_ok=5,
        commits_failed=0, commits_with_invalid_identity=0, stopped_after_terminal_error=False)
    base.update(extra)
    return MemberObservations(**base)


def observations(*members: MemberObservations, **extra: Any) -> Observations:
    base: dict[str, Any] = dict(
        members=list(members) or [member()], records_expected=90, records_consumed=90, lost=0,
        duplicated=0, at_least_once_bound=0, duplicates_beyond_bound=0, offset_regressions=[],
        longest_freeze_s=1.0, injections=1, synthetic_injections=0,
        broker_disagreeing_injections=0)
    base.update(extra)
    return Observations(**base)


def classification(outcome: Outcome = Outcome.RECOVERED, ttr: float | None = 2.0,
                   injections: int = 1) -> Classification:
    return Classification(outcome=outcome, detail="", expected=90, consumed=90, missing=0,
                          duplicates=0, errors=[], injections=injections,
                          first_injection_at=100.0 if injections else None,
                          time_to_recover_s=ttr, member_exits=[])


def scenario(*expect: Any, members: int = 1, expect_injection: bool = True) -> Scenario:
    doc: dict[str, Any] = {"name": "s", "version": 1, "description": "d",
                           "setup": {"members": {"count": members}},
                           "outcome": {"expect_injection": expect_injection}}
    if expect:
        doc["expect"] = list(expect)
    return parse_scenario(doc)


def one(verdict: Verdict) -> tuple[str, str]:
    (result,) = verdict.expectations
    return result.status, result.reason


def run(expect: Any, obs: Observations, cls: Classification | None = None,
        progress: Progress | None = None, members: int = 1) -> tuple[str, str]:
    return one(judge(scenario(expect, members=members), obs, cls or classification(), progress))


# -- each expectation, final


def test_no_loss() -> None:
    assert run("no_loss", observations()) == ("pass", "all 90 records consumed")
    assert run("no_loss", observations(lost=12, records_consumed=78)) == (
        "fail", "12 of 90 records never consumed")


def test_recovers_within() -> None:
    bound = {"recovers_within_s": 35}
    assert run(bound, observations(), classification(ttr=4.25)) == (
        "pass", "every record consumed 4.2 s after the first injection (bound 35 s)")
    assert run(bound, observations(), classification(ttr=41.0)) == (
        "fail", "every record consumed 41.0 s after the first injection > 35 s")
    assert run(bound, observations(lost=3), classification(ttr=None)) == (
        "fail", "3 of 90 records never consumed")
    no_fault = judge(scenario(bound, expect_injection=False), observations(injections=0),
                     classification(ttr=None, injections=0))
    assert one(no_fault) == ("pass", "no fault fired; all 90 records consumed")


def test_max_silence_names_the_member_and_the_numbers() -> None:
    obs = observations(member(0, longest_silence_s=2.0), member(1, longest_silence_s=27.3),
                       member(2, longest_silence_s=16.0))
    assert run({"max_silence_s": 15}, obs, members=3) == (
        "fail", "member 1 silent 27.3 s > 15 s (members [2] too)")
    assert run({"max_silence_s": 30}, obs, members=3) == (
        "pass", "longest silence 27.3 s (member 1) <= 30 s")


def test_max_silence_ignores_members_the_scenario_killed() -> None:
    obs = observations(member(0, longest_silence_s=2.0),
                       member(1, longest_silence_s=40.0, killed_by_scenario=True))
    assert run({"max_silence_s": 15}, obs, members=2)[0] == "pass"


def test_max_unassigned() -> None:
    obs = observations(member(0), member(1, unassigned_while_others_owned_s=22.0))
    assert run({"max_unassigned_s": 20}, obs, members=2) == (
        "fail", "member 1 without partitions for 22.0 s while others had them > 20 s")
    assert run({"max_unassigned_s": 25}, obs, members=2)[0] == "pass"


def test_duplicates_within_bound() -> None:
    assert run("duplicates_within_bound", observations()) == ("pass", "no duplicates")
    assert run("duplicates_within_bound", observations(duplicated=30, at_least_once_bound=30)) \
        == ("pass", "30 duplicates, within the at-least-once bound of 30")
    assert run("duplicates_within_bound", observations(
        duplicated=1702, at_least_once_bound=30, duplicates_beyond_bound=1672)) == (
        "fail", "1702 duplicates, 1672 beyond the at-least-once bound of 30")


def test_no_offset_regression() -> None:
    assert run("no_offset_regression", observations())[0] == "pass"
    regression = {"partition": 2, "from": 45, "to": 30}
    assert run("no_offset_regression", observations(offset_regressions=[regression])) == (
        "fail", "1 committed-offset regression(s), first: partition 2, from 45, to 30")


def test_no_invalid_commits() -> None:
    assert run("no_invalid_commits", observations())[0] == "pass"
    assert run("no_invalid_commits", observations(member(commits_with_invalid_identity=2))) == (
        "fail", "member 0: 2 commit(s) with generation -1 or an empty member id")


def test_no_app_errors() -> None:
    assert run("no_app_errors", observations()) == ("pass", "no error reached the application")
    obs = observations(member(app_errors=6, error_kinds=["KafkaError", "CommitFailedError"]))
    assert run("no_app_errors", obs) == (
        "fail", "member 0: 6 app error(s) (KafkaError, CommitFailedError)")


FENCED = {"terminal_error": {"kinds": ["FENCED_INSTANCE_ID"], "member_stops": True}}


def test_terminal_error_and_the_member_stops() -> None:
    stopped = member(app_errors=1, error_kinds=["FencedInstanceIdError"], last_error_at=9.0,
                     stopped_after_terminal_error=True)
    assert run(FENCED, observations(stopped)) == (
        "pass", "member 0 surfaced FencedInstanceIdError and stopped")
    went_on = replace(stopped, stopped_after_terminal_error=False, rejoins=1)
    assert run(FENCED, observations(went_on)) == (
        "fail", "member 0 surfaced FencedInstanceIdError but did not stop, rejoined 1x")
    other = member(app_errors=2, error_kinds=["KafkaError"])
    assert run(FENCED, observations(other)) == (
        "fail", "member 0 surfaced KafkaError, not FENCED_INSTANCE_ID")
    assert run(FENCED, observations(member(rejoins=2))) == (
        "fail", "member 0 surfaced no error, rejoined 2x")


def test_terminal_error_with_listed_members_needs_every_one() -> None:
    ok = member(0, app_errors=1, error_kinds=["FENCED_INSTANCE_ID"],
                stopped_after_terminal_error=True)
    expect = {"terminal_error": {"kinds": ["FENCED_INSTANCE_ID"], "members": [0, 1]}}
    status, reason = run(expect, observations(ok, member(1)), members=2)
    assert (status, reason) == ("fail", "member 1 surfaced no error")
    anyone = {"terminal_error": {"kinds": ["FENCED_INSTANCE_ID"]}}
    assert run(anyone, observations(ok, member(1)), members=2)[0] == "pass"
    assert run(expect, observations(ok), members=2) == ("undecided", "member(s) [1] never ran")


def test_library_spellings_of_an_error_match_its_kafka_name() -> None:
    for text in ("FencedInstanceIdError", "FencedInstanceIdException", "FENCED_INSTANCE_ID",
                 "[82] Fenced Instance ID: the broker rejected ...",
                 "kafka server: The broker rejected this static consumer since another consumer wi",
                 "Broker: Static consumer fenced by other consumer with same group.instance.id"):
        assert kind_matches("FENCED_INSTANCE_ID", text), text
    assert not kind_matches("FENCED_INSTANCE_ID", "FencedMemberEpochException")


def test_rejoins() -> None:
    expect = {"rejoins": {"new_member_id": True}}
    assert run(expect, observations(member(rejoins=1, rejoins_with_new_member_id=1))) == (
        "pass", "member 0 rejoined with a new member id (1x)")
    assert run(expect, observations(member(rejoins=2))) == (
        "fail", "member 0 rejoined 2x, never with a new member id")
    assert run("rejoins", observations(member())) == ("fail", "member 0 never rejoined")


# -- the run's verdict


def test_the_run_passes_only_if_every_expectation_passes() -> None:
    s = scenario("no_loss", {"max_silence_s": 15})
    assert judge(s, observations(), classification()).verdict == "pass"
    stuck = observations(member(longest_silence_s=27.3))
    verdict = judge(s, stuck, classification())
    assert verdict.verdict == "fail"
    assert [e.to_json() for e in verdict.expectations] == [
        {"name": "no_loss", "status": "pass", "reason": "all 90 records consumed"},
        {"name": "max_silence_s", "status": "fail", "reason": "member 0 silent 27.3 s > 15 s"}]
    assert [e.name for e in verdict.failing()] == ["max_silence_s"]


def test_undecided_when_nothing_failed_but_something_could_not_be_decided() -> None:
    # Member 1 is in the scenario, but the run never started it.
    s = scenario("no_loss", {"terminal_error": {"members": [1]}}, members=2)
    verdict = judge(s, observations(member(0)), classification())
    assert verdict.verdict == "undecided"
    assert [e.status for e in verdict.expectations] == ["pass", "undecided"]


def test_no_injection_is_not_exercised_unless_an_expectation_failed() -> None:
    s = scenario("no_loss", FENCED)
    quiet = observations(injections=0)
    verdict = judge(s, quiet, classification(ttr=None, injections=0))
    assert verdict.verdict == "not_exercised"
    # The terminal error is about the fault: without one it is undecided, not failed.
    assert verdict.expectations[1].status == "undecided"
    assert verdict.expectations[1].reason == "no fault fired"
    failed = judge(s, observations(injections=0, lost=60),
                   classification(ttr=None, injections=0))
    assert failed.verdict == "fails_without_fault"


def test_a_scenario_without_injections_by_design_is_judged_normally() -> None:
    s = scenario("no_loss", expect_injection=False)
    assert judge(s, observations(injections=0), classification(injections=0)).verdict == "pass"
    assert judge(s, observations(injections=0, lost=1),
                 classification(injections=0)).verdict == "fail"


def test_infra_error_passes_through() -> None:
    verdict = judge(scenario("no_loss"), observations(lost=90),
                    classification(Outcome.INFRA_ERROR))
    assert verdict.verdict == "infra_error"


@pytest.mark.parametrize(("synthetic", "disagreeing", "injections", "expected"), [
    (1, 0, 1, True),    # an error no broker returns on that API
    (0, 2, 2, True),    # UNKNOWN_MEMBER_ID while the broker still holds the member
    (1, 1, 2, False),   # the counts cannot say both injections were unrealistic
    (0, 0, 3, False),
    (0, 0, 0, False),   # no injection: nothing to label
])
def test_robustness_only(synthetic: int, disagreeing: int, injections: int,
                         expected: bool) -> None:
    obs = observations(synthetic_injections=synthetic, broker_disagreeing_injections=disagreeing,
                       injections=injections)
    assert robustness_only(obs) is expected
    verdict = judge(scenario("no_loss", expect_injection=False), obs,
                    classification(injections=injections))
    assert verdict.robustness_only is expected
    assert verdict.to_json()["robustness_only"] is expected


# -- while the run goes on


def progress(**extra: Any) -> Progress:
    base: dict[str, Any] = dict(elapsed_s=30.0, idle_s=4.0, first_injection_s=10.0,
                                last_change_s=10.0, open_silence_s=0.0)
    base.update(extra)
    return Progress(**base)


def test_outstanding_records_are_pending_until_the_stall_bound() -> None:
    obs = observations(lost=5)
    verdict = judge(scenario("no_loss"), obs, classification(ttr=None), progress())
    assert (verdict.expectations[0].status, verdict.expectations[0].pending) == (
        "undecided", True)
    stalled = judge(scenario("no_loss"), obs, classification(ttr=None), progress(idle_s=15.0))
    assert stalled.expectations[0].status == "fail" and not stalled.pending()


def test_the_recovery_bound_fails_as_soon_as_it_has_passed() -> None:
    obs = observations(lost=5)
    s = scenario({"recovers_within_s": 30})
    early = judge(s, obs, classification(ttr=None), progress(elapsed_s=25.0))
    assert early.pending()
    late = judge(s, obs, classification(ttr=None), progress(elapsed_s=41.0))
    assert one(late) == ("fail", "5 of 90 records still outstanding 31.0 s after the first "
                                 "injection > 30 s")
    assert not late.pending()


def test_a_member_silent_right_now_keeps_the_silence_bound_pending() -> None:
    s = scenario({"max_silence_s": 15})
    open_now = judge(s, observations(member(longest_silence_s=9.0)), classification(),
                     progress(open_silence_s=9.0))
    assert one(open_now) == ("undecided", "a member has been silent 9.0 s so far")
    assert open_now.pending()
    over = judge(s, observations(member(longest_silence_s=16.0)), classification(),
                 progress(open_silence_s=16.0))
    assert one(over)[0] == "fail" and not over.pending()
    heard = judge(s, observations(), classification(), progress())
    assert one(heard)[0] == "pass" and not heard.pending()


def test_a_terminal_error_not_seen_yet_waits_for_the_members_timeout() -> None:
    s = scenario(FENCED)  # the default member timeout: 10 s (rebalance timeout)
    obs = observations(member())
    assert judge(s, obs, classification(), progress(elapsed_s=15.0)).pending()
    later = judge(s, obs, classification(), progress(elapsed_s=21.0))
    assert one(later) == ("fail", "member 0 surfaced no error") and not later.pending()
    erred = observations(member(app_errors=1, error_kinds=["FENCED_INSTANCE_ID"],
                                last_error_at=18.0))
    assert judge(s, erred, classification(), progress(elapsed_s=21.0)).pending()  # may stop yet
    assert not judge(s, erred, classification(), progress(elapsed_s=28.5)).pending()


def test_time_without_partitions_is_decided_its_bound_after_the_last_change() -> None:
    s = scenario({"max_unassigned_s": 20}, members=2)
    obs = observations(member(0), member(1, unassigned_while_others_owned_s=3.0))
    assert judge(s, obs, classification(), progress(elapsed_s=25.0)).pending()
    assert not judge(s, obs, classification(), progress(elapsed_s=31.0)).pending()


ZOMBIE = dict(zombie_fetches=14, zombie_fetch_s=11.257, zombie_first_s=14.837,
              zombie_partitions=["t-0", "t-1"], zombie_partition="t-0", zombie_owner=1)


def test_no_zombie_fetch_fails_with_the_numbers() -> None:
    two = observations(member(0, **ZOMBIE), member(1), fetch_samples=47)
    assert run("no_zombie_fetch", two, members=2) == (
        "fail", "member 0 fetched t-0 for 11.3 s after it moved to member 1 (14 Fetch "
                "sample(s) on 2 partition(s), from 14.8 s)")
    clean = observations(member(0), member(1), fetch_samples=47)
    assert run("no_zombie_fetch", clean, members=2) == (
        "pass", "no member fetched a partition another member owned (47 Fetch samples)")
    # A proxy without --fetch-events tells nothing either way.
    assert run("no_zombie_fetch", observations(member(0), member(1)), members=2) == (
        "undecided", "no Fetch samples in the evidence (proxy without --fetch-events)")


def test_no_zombie_fetch_waits_the_members_timeout_after_the_last_assignment_change() -> None:
    s = scenario("no_zombie_fetch", members=2)  # member timeout 10 s (rebalance timeout)
    clean = observations(member(0), member(1), fetch_samples=30, last_assignment_change_at=13.5)
    early = judge(s, clean, classification(), progress(elapsed_s=20.0))
    assert one(early)[0] == "undecided" and early.pending()
    assert not judge(s, clean, classification(), progress(elapsed_s=23.6)).pending()
    # A zombie seen is final at once: it cannot be undone.
    seen = observations(member(0, **ZOMBIE), member(1), fetch_samples=30,
                        last_assignment_change_at=13.5)
    now = judge(s, seen, classification(), progress(elapsed_s=15.0))
    assert one(now)[0] == "fail" and not now.pending()


def test_a_finished_run_has_nothing_pending() -> None:
    s = scenario("no_loss", FENCED, {"max_silence_s": 15})
    verdict = judge(s, observations(lost=5), classification(ttr=None))
    assert not verdict.pending()


# -- on recorded runs (tests/fixtures/evidence), through the real observations


def test_recorded_runs_judged_against_the_catalog() -> None:
    from kafka_chaos_proxy.lab.matrix.classify import classify
    from kafka_chaos_proxy.lab.matrix.observations import observe
    from kafka_chaos_proxy.lab.scenario import load_catalog
    from tests.unit.lab.test_observations import FIXTURES, load_run

    catalog = load_catalog(Path(__file__).resolve().parents[3] / "scenarios")

    def judged(name: str, scenario: str) -> Verdict:
        evidence = load_run(FIXTURES / name)
        return judge(catalog[scenario], observe(evidence), classify(evidence))

    stuck = judged("kafka-python-coordinator-reset-mid-rebalance-2",
                   "coordinator-reset-mid-rebalance")
    assert stuck.verdict == "fail"
    reasons = {e.name: e.reason for e in stuck.failing()}
    assert reasons["no_loss"] == "90 of 90 records never consumed"
    assert reasons["max_silence_s"].startswith("member 0 silent ")
    clean = judged("java-classic-coordinator-reset-mid-rebalance-1",
                   "coordinator-reset-mid-rebalance")
    assert clean.verdict == "pass" and not clean.robustness_only
    # ILLEGAL_GENERATION injected while the broker still holds the member: robustness only.
    rejoined = judged("aiokafka-heartbeat-illegal-generation-1", "heartbeat-illegal-generation")
    assert rejoined.verdict == "pass" and rejoined.robustness_only
    assert [e.reason for e in rejoined.expectations if e.name == "rejoins"] == [
        "member 0 rejoined (1x)"]
    zombie = judged("kafka-python-heartbeat-blackhole-zombie-fetch-1",
                    "heartbeat-blackhole-zombie-fetch")
    assert zombie.verdict == "fail" and not zombie.robustness_only  # a real network's fault
    reasons = {e.name: e.reason for e in zombie.failing()}
    assert reasons["no_zombie_fetch"] == (
        "member 0 fetched mx-heartbeat-blackhole-zombie-fetch-4776b3-0 for 6.2 s after it "
        "moved to member 1 (7 Fetch sample(s) on 2 partition(s), from 12.1 s)")
    quiet = judged("kafka-python-heartbeat-unknown-member-id-1", "heartbeat-unknown-member-id")
    assert quiet.verdict == "pass"
