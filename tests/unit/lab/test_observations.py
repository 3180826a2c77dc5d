"""Observations of a run, on real recorded runs (tests/fixtures/evidence, see its README) and on
small hand-built event lists for the edge cases.

The recorded runs are published matrix evidence, rebuilt into `RunEvidence` the way
lab/matrix/cell.py builds it at the end of a run (`load_run`). Their numbers are pinned: a change
in a definition shows here as a changed number on a run a person can read.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import yaml

from kafka_chaos_proxy.lab.matrix.classify import MemberRun, RecordKey, RunEvidence, classify
from kafka_chaos_proxy.lab.matrix.observations import (
    ZOMBIE_GRACE_S,
    MemberObservations,
    Observations,
    error_kind,
    observe,
)

# -- recorded runs ------------------------------------------------------------------------------

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "evidence"
#: The runner's SIGTERM time is not in a published run; it is taken as this long before the
#: run's earliest `exited how=killed` line (every member is signalled at once at teardown, and
#: the harnesses here closed within a few hundred milliseconds).
TEARDOWN_MARGIN_S = 0.5


def _lines(path: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if not path.exists():
        return out
    with gzip.open(path, "rt", encoding="utf-8") as stream:
        for raw in stream:
            line = raw.strip()
            if not line:
                continue
            try:
                event = json.loads(line)
            except ValueError:  # members.py keeps a line that is not JSON the same way
                event = {"event": "raw", "line": line[:2000]}
            if isinstance(event, dict):
                out.append(event)
    return out


def _result(run_dir: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((run_dir / "result.json").read_text())
    return result


def _produced(run_dir: Path) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = json.loads(
        gzip.decompress((run_dir / "produced.json.gz").read_bytes()))
    return records


def _how(events: list[dict[str, Any]]) -> str | None:
    return next((str(ev.get("how")) for ev in reversed(events) if ev.get("event") == "exited"),
                None)


def load_run(run_dir: Path) -> RunEvidence:
    """`RunEvidence` from a published run directory, as cell.py builds it: members from the
    harness lines (with their exits and scenario control from result.json), expected records
    from produced.json, the proxy's events, and the run's span. What the directory lacks: the
    stop request time (see TEARDOWN_MARGIN_S) and return codes (0 for a member that said it
    was killed, else result.json's member_exits)."""
    result = _result(run_dir)
    started = float(result["started_at"])
    exits = {int(e["member"]): e for e in result.get("member_exits", [])}
    control: dict[int, list[dict[str, Any]]] = {}
    for entry in result.get("member_control", []):
        control.setdefault(int(entry["member"]), []).append(
            {k: v for k, v in entry.items() if k != "member"})
    streams = [_lines(run_dir / f"m{i}.jsonl.gz") for i in range(int(result["members"]))]
    killed = [float(ev["ts"]) for events in streams for ev in events
              if ev.get("event") == "exited" and ev.get("how") == "killed"]
    stop = min(killed) - TEARDOWN_MARGIN_S if killed else None
    members = []
    for i, events in enumerate(streams):
        how = _how(events)
        kills = [float(c["ts"]) for c in control.get(i, []) if c.get("action") == "kill"]
        members.append(MemberRun(
            index=i, events=events,
            returncode=exits.get(i, {}).get(
                "returncode", 0 if how in ("killed", "max_runtime") else None),
            stop_requested_at=stop if how == "killed" else None,
            killed_by_scenario_at=exits.get(i, {}).get("killed_by_scenario_at")
            or (kills[0] if kills else None),
            control=control.get(i, [])))
    return RunEvidence(
        members=members,
        expected={(r["topic"], int(r["partition"]), int(r["offset"]))
                  for r in _produced(run_dir)},
        proxy_events=_lines(run_dir / "proxy-events.jsonl.gz"),
        started_at=started,
        ended_at=started + float(result["duration_s"]),
        expect_injection=bool(result["injections"]) or result["outcome"] == "not_injected",
        pending_steps=[s["description"] for s in result.get("steps", [])
                       if s.get("fired_at") is None],
    )


def production_times(run_dir: Path) -> dict[RecordKey, float]:
    """When each record was produced, as far as the directory tells: the set-up's records (the
    first by sequence number) when the run started, then each step's `produce` records when
    that step fired."""
    result = _result(run_dir)
    scenario = yaml.safe_load((run_dir / "scenario.yaml").read_text())
    keys = [(r["topic"], int(r["partition"]), int(r["offset"]))
            for r in sorted(_produced(run_dir), key=lambda r: int(r["seq"]))]
    fired = {int(s["index"]): s.get("fired_at") for s in result.get("steps", [])}
    batches = [(float(result["started_at"]), int(scenario["setup"]["records"]))]
    batches += [(float(fired[i]), int(step["produce"]))
                for i, step in enumerate(scenario.get("steps", []))
                if step.get("produce") and fired.get(i) is not None]
    out: dict[RecordKey, float] = {}
    for at, count in batches:
        out.update(dict.fromkeys(keys[len(out):len(out) + count], at))
    return out


def recorded(name: str) -> Observations:
    return observe(load_run(FIXTURES / name))


RUNS = sorted(p.name for p in FIXTURES.iterdir() if (p / "result.json").exists())


def test_there_are_recorded_runs() -> None:
    assert len(RUNS) >= 5


@pytest.mark.parametrize("name", RUNS)
def test_the_loader_rebuilds_the_evidence_the_verdict_was_given(name: str) -> None:
    """The rebuilt evidence gives the outcome the runner wrote: the loader is faithful."""
    run_dir = FIXTURES / name
    evidence = load_run(run_dir)
    verdict = classify(evidence)
    result = _result(run_dir)
    assert verdict.outcome.value == result["outcome"]
    assert (verdict.duplicates, verdict.missing) == (result["duplicates"], result["missing"])


@pytest.mark.parametrize("name", RUNS)
def test_observations_agree_with_the_record_counts_and_are_plain_json(name: str) -> None:
    run_dir = FIXTURES / name
    obs = recorded(name)
    result = _result(run_dir)
    assert (obs.records_expected, obs.lost, obs.duplicated) == (
        result["expected"], result["missing"], result["duplicates"])
    assert obs.injections == result["injections"]
    data = obs.to_json()
    assert json.loads(json.dumps(data)) == data
    assert list(data) == [f.name for f in fields(Observations)]
    assert [list(m) for m in data["members"]] == [
        [f.name for f in fields(MemberObservations)]] * len(obs.members)
    assert obs.duplicates_beyond_bound == max(0, obs.duplicated - obs.at_least_once_bound)


def test_sarama_member_stuck_unassigned_while_the_other_took_over() -> None:
    """sarama, heartbeat-racing-rebalance run 2 ("recovered"): member 0's heartbeat answers are
    held 2.5 s; it is revoked at 4.9 s, keeps heartbeating its old generation, never sends a
    JoinGroup again, and the broker expels it (UNKNOWN_MEMBER_ID at 12.4 s) while member 1
    owns all four partitions."""
    obs = recorded("sarama-heartbeat-racing-rebalance-2")
    m0, m1 = obs.members
    assert m0.client_id == "sarama-11b6de-m0"
    assert m0.time_to_reassignment_s == pytest.approx(9.272)
    assert m0.unassigned_at_end
    assert m0.unassigned_while_others_owned_s == pytest.approx(3.134)
    assert m0.rejoins == 0
    assert m0.membership_lost and m0.membership_lost_at == pytest.approx(12.362)
    assert m0.app_errors == 0  # the application was never told
    # Member 1's JoinGroup waited 10 s at the broker for member 0: silent, yet not idle.
    assert m1.longest_silence_s == pytest.approx(10.004)
    assert m1.longest_silence_from == pytest.approx(0.982)
    assert m1.longest_idle_s == pytest.approx(1.114)
    assert m1.unassigned_while_others_owned_s == pytest.approx(3.882)
    assert not m1.membership_lost
    assert (obs.lost, obs.duplicated, obs.injections) == (0, 0, 5)


def test_a_freeze_needs_production_times_to_be_told_from_waiting() -> None:
    """Without production times the 10 s before the scenario produced its last 30 records
    look like a freeze; with them, consumption never stood still for long."""
    run_dir = FIXTURES / "sarama-heartbeat-racing-rebalance-2"
    evidence = load_run(run_dir)
    assert observe(evidence).longest_freeze_s == pytest.approx(10.257)
    assert observe(evidence, production_times(run_dir)).longest_freeze_s == pytest.approx(0.138)


def test_kafka_python_silent_after_a_reset_and_expelled() -> None:
    """kafka-python, coordinator-reset-mid-rebalance run 2 ("stalled"): its SyncGroup is
    answered by a reset at 1.1 s and it sends nothing more until the teardown, where its
    LeaveGroup is answered UNKNOWN_MEMBER_ID: the broker had expelled it."""
    obs = recorded("kafka-python-coordinator-reset-mid-rebalance-2")
    (m0,) = obs.members
    assert m0.longest_silence_s == pytest.approx(15.19)
    assert m0.longest_silence_from == pytest.approx(1.136)
    assert m0.longest_idle_s == pytest.approx(15.19)
    assert m0.records_delivered == 0
    assert m0.membership_lost_at == pytest.approx(16.82)
    assert (obs.records_consumed, obs.lost) == (0, 90)
    assert obs.longest_freeze_s == pytest.approx(15.337)


def test_a_clean_recovered_run_observes_nothing_worth_a_verdict() -> None:
    """java-classic, coordinator-reset-mid-rebalance run 1: member 0's SyncGroup is reset, it
    reconnects and rejoins at once; member 1 joins; every record once."""
    obs = recorded("java-classic-coordinator-reset-mid-rebalance-1")
    assert (obs.duplicated, obs.at_least_once_bound, obs.offset_regressions) == (0, 0, [])
    for m in obs.members:
        assert (m.app_errors, m.commits_failed, m.commits_with_invalid_identity) == (0, 0, 0)
        assert not m.membership_lost and not m.unassigned_at_end
        assert m.longest_silence_s < 1.1
    assert obs.members[0].rejoins == 2
    assert obs.members[0].time_to_reassignment_s == pytest.approx(0.093)
    assert obs.members[1].unassigned_while_others_owned_s == pytest.approx(0.783)


def test_failed_commits_at_the_proxy_behind_a_duplicates_outcome() -> None:
    """kafka-go, offsetcommit-rebalance-in-progress-manual run 1: 92 OffsetCommits of member 0
    were answered REBALANCE_IN_PROGRESS (the application saw 30 of them); the 30 duplicates are
    the records it could not commit."""
    obs = recorded("kafka-go-offsetcommit-rebalance-in-progress-manual-1")
    m0, m1 = obs.members
    assert (m0.commits_ok, m0.commits_failed) == (90, 92)
    assert m0.app_errors == 30
    assert m0.error_kinds == ["REBALANCE_IN_PROGRESS"]  # "[27] Rebalance In Progress: ..."
    assert (m0.first_error_at, m0.last_error_at) == (pytest.approx(8.581), pytest.approx(23.174))
    assert (m1.commits_ok, m1.commits_failed) == (30, 0)
    assert (obs.duplicated, obs.at_least_once_bound, obs.duplicates_beyond_bound) == (30, 30, 0)
    assert (obs.injections, obs.broker_disagreeing_injections) == (92, 0)


def test_sarama_errors_named_from_the_broker_message() -> None:
    """sarama, offsetcommit-rebalance-in-progress-manual run 1: 117 errors reach Errors(),
    each "kafka: error while consuming ...: kafka server: A rebalance for the group is in
    progress"; its Consume returned nil once during the run."""
    obs = recorded("sarama-offsetcommit-rebalance-in-progress-manual-1")
    m0 = obs.members[0]
    assert (m0.app_errors, m0.error_kinds) == (117, ["REBALANCE_IN_PROGRESS"])
    assert m0.consume_returned_silently == 1
    assert (m0.commits_ok, m0.commits_failed) == (90, 30)
    assert not m0.stopped_after_terminal_error


def test_rejoin_storm_duplicates_within_the_at_least_once_bound() -> None:
    """kafka-python, offsetcommit-illegal-generation-manual run 1: every commit of member 0 is
    answered an injected ILLEGAL_GENERATION; it rejoins 59 times and re-reads from the last
    committed offsets each time: 1702 duplicates, every one within the at-least-once bound."""
    obs = recorded("kafka-python-offsetcommit-illegal-generation-manual-1")
    m0 = obs.members[0]
    assert (m0.rejoins, m0.rejoins_with_new_member_id) == (59, 0)
    assert (m0.commits_ok, m0.commits_failed, m0.app_errors) == (2, 58, 58)
    assert m0.error_kinds == ["ILLEGAL_GENERATION"]  # "[Error 22] IllegalGenerationError"
    assert m0.records_delivered == 1792
    assert not m0.membership_lost  # every ILLEGAL_GENERATION was the proxy's
    assert (obs.duplicated, obs.at_least_once_bound, obs.duplicates_beyond_bound) == (
        1702, 1702, 0)
    assert obs.broker_disagreeing_injections == 58


def test_cooperative_rebalance_duplicates_within_the_bound() -> None:
    """franz-go (cooperative-sticky: assigned/revoked carry changes), coordinator-reset run 4:
    37 records delivered twice, all past the last committed offsets of the partitions that
    moved."""
    obs = recorded("franz-go-coordinator-reset-mid-rebalance-4")
    assert (obs.duplicated, obs.at_least_once_bound) == (37, 37)
    m0, m1 = obs.members
    assert (m0.rejoins, m1.rejoins) == (2, 1)
    assert m0.time_to_reassignment_s is None  # it never owned nothing
    assert m1.unassigned_while_others_owned_s == pytest.approx(1.031)


def test_records_delivered_after_the_revoke_line_belong_to_the_lost_ownership() -> None:
    """kafka-go, heartbeat-rebalance-in-progress run 1: its `revoked` line is written at the
    end of the commit loop and the old reader hands over 7 more records before the new
    assignment, which re-reads them from the committed offsets: duplicates, within the
    bound."""
    obs = recorded("kafka-go-heartbeat-rebalance-in-progress-1")
    assert obs.members[0].records_delivered == 97
    assert (obs.duplicated, obs.at_least_once_bound, obs.duplicates_beyond_bound) == (7, 7, 0)


def test_a_commit_with_generation_minus_one_after_an_injected_error() -> None:
    """aiokafka, heartbeat-illegal-generation run 1 ("recovered"): after the injected
    ILLEGAL_GENERATION it commits with generation -1 and no member id (refused), rejoins
    under a new member id and waits 6 s at the broker for its old self to expire: the
    injection left the broker holding the member."""
    run_dir = FIXTURES / "aiokafka-heartbeat-illegal-generation-1"
    obs = observe(load_run(run_dir))
    m0 = obs.members[0]
    assert (m0.commits_with_invalid_identity, m0.commits_failed) == (1, 1)
    assert (m0.rejoins, m0.rejoins_with_new_member_id) == (1, 1)
    assert not m0.membership_lost  # UNKNOWN_MEMBER_ID answered a commit without a member id
    assert m0.time_to_reassignment_s == pytest.approx(5.981)
    assert obs.broker_disagreeing_injections == 1
    frozen = observe(load_run(run_dir), production_times(run_dir))
    assert frozen.longest_freeze_s == pytest.approx(5.793)
    assert frozen.longest_freeze_from == pytest.approx(5.615)


def test_fetch_samples_of_a_run_without_zombies() -> None:
    """kafka-python, heartbeat-unknown-member-id run 1, recorded with the proxy's Fetch samples
    on (one member, three partitions). Counted by hand from proxy-events.jsonl (times from the
    run's start): 9 Fetch samples, all on connection 3, each naming the whole topic [0, 1, 2]:
    a session opened at epoch 0 (2.5 s), then incremental (epochs 3, 5, 7, 9, 12, 14, 16, 18;
    `fetches` 1, 3, 2, 2, 2, 3, 2, 2, 2), one a second, none from 5.6 s to 12.5 s while its
    rejoin's JoinGroup waited at the broker; the last at 16.6 s, after the stop request (16.1
    s). A member alone fetches nothing another member owns: no zombie fetch. The samples are
    no coordination requests: of the 30 coordination events, the 4 after the stop request
    (Heartbeat, two OffsetCommits, LeaveGroup) are teardown, the other 26 its requests."""
    obs = recorded("kafka-python-heartbeat-unknown-member-id-1")
    (m0,) = obs.members
    assert obs.fetch_samples == 9
    assert (m0.zombie_fetches, m0.zombie_fetch_s, m0.zombie_first_s) == (0, 0.0, None)
    assert (m0.zombie_partitions, m0.zombie_partition, m0.zombie_owner) == ([], None, None)
    events = load_run(FIXTURES / "kafka-python-heartbeat-unknown-member-id-1").proxy_events
    samples = [e for e in events if e["api"] == "Fetch"]
    assert [e["fetches"] for e in samples] == [1, 3, 2, 2, 2, 3, 2, 2, 2]
    assert {e["connection"] for e in samples} == {3}
    assert m0.coordination_requests == len(events) - len(samples) - 4 == 26
    assert m0.rejoins == 1


def test_a_member_expelled_unawares_keeps_fetching_what_the_group_gave_away() -> None:
    """kafka-python, heartbeat-blackhole-zombie-fetch run 1: from 6.0 s every Heartbeat and
    OffsetCommit of member 0 is swallowed before the broker (its coordinator connection is its
    own, coordinator-1; its fetch connection 3 works on). The broker expels it and member 1 is
    assigned all four partitions at 11.134 s; member 0's harness never says revoked (nobody
    told it), and its samples on connection 3 name t-0 and t-1 at 12.141, 13.230, 14.304,
    15.322, 16.347, 17.361 and 18.387 s (the stop request: 18.867 s): 7 zombie samples, the
    first 1.007 s after member 1's assignment (past the 1 s grace), each for both partitions,
    over 18.387 - 12.141 = 6.246 s. The 20 records produced at 14.3 s on t-0 and t-1 are
    delivered by both: 20 duplicates, none within the bound (member 0 never lost them by its
    own account)."""
    obs = recorded("kafka-python-heartbeat-blackhole-zombie-fetch-1")
    m0, m1 = obs.members
    topic = "mx-heartbeat-blackhole-zombie-fetch-4776b3"
    assert (m0.zombie_fetches, m0.zombie_fetch_s, m0.zombie_first_s) == (
        7, pytest.approx(6.246), pytest.approx(12.141))
    assert m0.zombie_partitions == [f"{topic}-0", f"{topic}-1"]
    assert (m0.zombie_partition, m0.zombie_owner) == (f"{topic}-0", 1)
    assert m1.zombie_fetches == 0
    assert obs.last_assignment_change_at == pytest.approx(11.134)
    assert not m0.membership_lost  # the broker never got to tell it
    assert (obs.duplicated, obs.at_least_once_bound) == (20, 0)


# -- hand-built edge cases ----------------------------------------------------------------------

T = "t"


def ev(ts: float, event: str, **fields: Any) -> dict[str, Any]:
    return {"ts": ts, "client": "x", "event": event, **fields}


def px(ts: float, api: str, member: int = 0, **fields: Any) -> dict[str, Any]:
    """One proxy event of member `member` (client id ends with -m<i>)."""
    base = {"ts": ts, "client_id": f"lib-abc-m{member}", "api": api, "group": "g",
            "member_id": f"id{member}", "generation": 1, "error": None, "outcome": "ok",
            "fault": None, "version": 8, "latency_ms": 1.0, "offsets": None,
            "assignment": None, "subscription": None}
    return {**base, **fields}


def commit(ts: float, member: int, offsets: dict[int, int], error: str | None = None,
           **fields: Any) -> dict[str, Any]:
    parts = {str(p): {"offset": o, "error": error} for p, o in offsets.items()}
    return px(ts, "OffsetCommit", member, offsets={T: parts}, error=error, **fields)


def run(members: list[MemberRun], proxy: list[dict[str, Any]] | None = None,
        expected: set[RecordKey] | None = None, ended_at: float = 30.0) -> RunEvidence:
    return RunEvidence(members=members, expected=expected or set(), proxy_events=proxy or [],
                       started_at=0.0, ended_at=ended_at)


def records(ts: float, partition: int, offsets: range) -> list[dict[str, Any]]:
    return [ev(ts + i * 0.001, "record", topic=T, partition=partition, offset=o)
            for i, o in enumerate(offsets)]


def test_no_members_no_events() -> None:
    obs = observe(run([]))
    assert obs.members == []
    assert (obs.records_expected, obs.records_consumed, obs.lost, obs.duplicated) == (0, 0, 0, 0)
    assert (obs.longest_freeze_s, obs.longest_freeze_from, obs.injections) == (0.0, None, 0)
    assert obs.to_json()["members"] == []


def test_a_member_that_never_started() -> None:
    (m,) = observe(run([MemberRun(0, [])], expected={(T, 0, 0)})).members
    assert (m.client_id, m.coordination_requests, m.longest_silence_s) == (None, 0, 0.0)
    assert (m.time_to_reassignment_s, m.unassigned_while_others_owned_s) == (None, 0.0)
    assert (m.app_errors, m.records_delivered, m.end) == (0, 0, "running")


def test_silence_runs_to_the_member_end_and_a_pause_is_not_silence() -> None:
    events = [ev(0.5, "started"), ev(20.1, "exited", how="killed")]
    proxy = [px(t, "Heartbeat") for t in (1.0, 2.0, 3.0, 14.0, 15.0)]
    stopped = MemberRun(0, events, stop_requested_at=20.0)
    (m,) = observe(run([stopped], proxy)).members
    assert (m.longest_silence_s, m.longest_silence_from) == (11.0, 3.0)
    paused = MemberRun(0, events, stop_requested_at=20.0,
                       control=[{"ts": 3.5, "action": "pause"}, {"ts": 13.5, "action": "resume"}])
    (m,) = observe(run([paused], proxy)).members
    assert (m.longest_silence_s, m.longest_silence_from) == (5.0, 15.0)  # 15 s -> end at 20 s
    kind = MemberRun(0, events, stop_requested_at=20.0,
                     control=[{"ts": 3.5, "kind": "pause"}, {"ts": 13.5, "kind": "resume"}])
    assert observe(run([kind], proxy)).members[0].longest_silence_s == 5.0


def test_requests_after_the_stop_request_are_teardown() -> None:
    member = MemberRun(0, [ev(0.0, "started"), ev(9.0, "exited", how="killed")],
                       stop_requested_at=5.0)
    proxy = [px(1.0, "Heartbeat"), px(8.0, "LeaveGroup"),
             px(8.5, "OffsetCommit", error="UNKNOWN_MEMBER_ID")]
    (m,) = observe(run([member], proxy)).members
    assert (m.coordination_requests, m.longest_silence_s) == (1, 4.0)
    assert (m.commits_ok, m.commits_failed) == (0, 0)
    assert m.membership_lost_at == 8.5  # the broker's answer at teardown still tells


def test_idle_counts_a_request_waiting_on_the_broker_as_activity() -> None:
    member = MemberRun(0, [ev(0.0, "started")], stop_requested_at=12.0)
    proxy = [px(1.0, "JoinGroup", latency_ms=9000.0), px(10.5, "SyncGroup", latency_ms=0.0)]
    (m,) = observe(run([member], proxy)).members
    assert m.longest_silence_s == 9.5
    assert m.longest_idle_s == 1.5  # 10.5 s -> the stop at 12 s


def test_unassigned_while_another_owned_and_time_to_reassignment() -> None:
    stuck = MemberRun(0, [ev(0.0, "started"), ev(1.0, "assigned", partitions={T: [0, 1]}),
                          ev(4.0, "revoked", partitions={T: [0, 1]})], stop_requested_at=20.0)
    other = MemberRun(1, [ev(2.0, "started"), ev(6.0, "assigned", partitions={T: [0, 1]})],
                      stop_requested_at=20.0)
    m0, m1 = observe(run([stuck, other])).members
    assert m0.unassigned_while_others_owned_s == 14.0  # 6 s -> 20 s
    assert (m0.time_to_reassignment_s, m0.unassigned_at_end) == (16.0, True)
    assert m1.unassigned_while_others_owned_s == 2.0  # 2 s -> 4 s: member 0 still owned
    assert m1.time_to_reassignment_s is None


def test_incremental_assignments_add_and_revoke_remove() -> None:
    member = MemberRun(0, [ev(0.0, "started"), ev(1.0, "assigned", partitions={T: [0]}),
                           ev(2.0, "assigned", partitions={T: [1]}),
                           ev(3.0, "revoked", partitions={T: [0]}),
                           ev(4.0, "revoked", partitions={T: [1]}),
                           ev(7.0, "assigned", partitions={T: [2]})], stop_requested_at=10.0)
    (m,) = observe(run([member])).members
    assert (m.time_to_reassignment_s, m.unassigned_at_end) == (3.0, False)


def test_a_java_assignment_is_the_whole_set() -> None:
    member = MemberRun(0, [ev(0.0, "started"),
                           ev(1.0, "assigned", partitions={T: [0]}, assignment={T: [0]}),
                           ev(2.0, "assigned", partitions={}, assignment={}),
                           ev(5.0, "assigned", partitions={T: [0]}, assignment={T: [0]})],
                       stop_requested_at=10.0)
    assert observe(run([member])).members[0].time_to_reassignment_s == 3.0


def test_app_errors_are_classify_s_with_kafka_names_and_times() -> None:
    member = MemberRun(0, [
        ev(0.0, "started"),
        ev(2.0, "error", error="kafka: error while consuming t/0: kafka server: The provided "
                              "member is not known in the current generation"),
        ev(3.0, "commit", ok=False, error="CommitFailedError: [Error 22] IllegalGenerationError"),
        ev(4.0, "log", message="not surfaced"),
        ev(5.0, "consume_returned", error=None, n=1),
        ev(6.0, "error", error="EOF"),
        ev(9.0, "exited", how="returned_error", error="gave up"),
    ], returncode=1)
    (m,) = observe(run([member])).members
    assert m.app_errors == 4
    assert m.error_kinds == ["EOF", "ILLEGAL_GENERATION", "UNKNOWN_MEMBER_ID", "gave up"]
    assert (m.first_error_at, m.last_error_at) == (2.0, 9.0)
    assert m.consume_returned_silently == 1
    assert m.stopped_after_terminal_error and m.end == "returned_error"


@pytest.mark.parametrize(("text", "kind"), [
    ("REBALANCE_IN_PROGRESS: Broker: Group rebalance in progress", "REBALANCE_IN_PROGRESS"),
    ("unable to join group session: FENCED_INSTANCE_ID: The broker rejected", "FENCED_INSTANCE_ID"),
    ("[25] Unknown Member ID: the member id is not in the current generation",
     "UNKNOWN_MEMBER_ID"),
    ("KafkaException: Unexpected error in commit: Specified group generation id is not valid.",
     "ILLEGAL_GENERATION"),
    ("KafkaError: KafkaError: Unexpected exception in heartbeat task: GroupLoadInProgressError()",
     "COORDINATOR_LOAD_IN_PROGRESS"),
    ("_FATAL: Fatal error: Broker: Static consumer fenced by other consumer with same "
     "group.instance.id", "FENCED_INSTANCE_ID"),
    ("CommitFailedException: OffsetCommit failed with unknown member ID.", "UNKNOWN_MEMBER_ID"),
    ("CommitFailedException: Commit cannot be completed since the group has already rebalanced",
     "fallback"),
    (None, "fallback"),
])
def test_error_kind(text: str | None, kind: str) -> None:
    assert error_kind(text, "fallback") == kind


def test_membership_lost_only_when_the_broker_says_so_to_a_member() -> None:
    member = MemberRun(0, [ev(0.0, "started")], stop_requested_at=20.0)
    injected = px(1.0, "Heartbeat", error="UNKNOWN_MEMBER_ID", outcome="error_injected",
                  fault={"rule": "r", "action": "error", "error": "UNKNOWN_MEMBER_ID"})
    anonymous = commit(2.0, 0, {0: 5}, error="UNKNOWN_MEMBER_ID", member_id=None, generation=-1)
    assert not observe(run([member], [injected, anonymous])).members[0].membership_lost
    delayed = px(3.0, "Heartbeat", error="ILLEGAL_GENERATION",
                 fault={"rule": "r", "action": "delay", "delay_ms": 2500.0})
    (m,) = observe(run([member], [injected, anonymous, delayed])).members
    assert (m.membership_lost, m.membership_lost_at) == (True, 3.0)


def test_commits_ok_failed_and_without_identity() -> None:
    member = MemberRun(0, [ev(0.0, "started")], stop_requested_at=20.0)
    proxy = [commit(1.0, 0, {0: 5}), commit(2.0, 0, {0: 6}, error="REBALANCE_IN_PROGRESS"),
             commit(3.0, 0, {0: 7}, outcome="dropped"),
             commit(4.0, 0, {0: 8}, generation=-1),
             commit(5.0, 0, {0: 9}, member_id=None),
             commit(6.0, 0, {0: 9}, member_id=None, version=0)]  # v0 carries no identity
    (m,) = observe(run([member], proxy)).members
    assert (m.commits_ok, m.commits_failed, m.commits_with_invalid_identity) == (4, 2, 2)


def test_rejoins_count_completed_rounds_and_new_member_ids() -> None:
    member = MemberRun(0, [ev(0.0, "started")], stop_requested_at=20.0)
    proxy = [px(1.0, "JoinGroup", member_id="a", generation=1),
             px(1.1, "SyncGroup", member_id="a", assignment={T: [0]}),
             px(2.0, "JoinGroup", member_id="a", generation=2),  # rejoin, same id
             px(3.0, "JoinGroup", member_id="b", error="MEMBER_ID_REQUIRED", generation=None),
             px(3.1, "JoinGroup", member_id="b", generation=3)]  # rejoin, new id
    (m,) = observe(run([member], proxy)).members
    assert (m.rejoins, m.rejoins_with_new_member_id) == (2, 1)


def test_kip848_rejoins_after_a_fencing_answer() -> None:
    member = MemberRun(0, [ev(0.0, "started")], stop_requested_at=20.0)
    cgh = "ConsumerGroupHeartbeat"
    proxy = [px(1.0, cgh, member_id="a", generation=2, assignment={T: [0]}, subscription=[T]),
             px(2.0, cgh, member_id="a", generation=2),
             px(3.0, cgh, member_id="a", error="FENCED_MEMBER_EPOCH", outcome="error_injected",
                fault={"rule": "r", "action": "error", "error": "FENCED_MEMBER_EPOCH"}),
             px(3.1, cgh, member_id="a", generation=3, subscription=[T]),  # rejoin
             px(4.0, cgh, member_id="a", generation=3, subscription=[T]),  # full, not a join
             px(5.0, cgh, member_id="b", generation=1, subscription=[T])]  # new id
    (m,) = observe(run([member], proxy)).members
    assert (m.rejoins, m.rejoins_with_new_member_id) == (2, 1)


def test_at_least_once_bound_per_loss_from_the_last_stored_commit() -> None:
    keys = {(T, 0, o) for o in range(10)}
    first = MemberRun(0, [ev(0.0, "started"), ev(0.5, "assigned", partitions={T: [0]}),
                          *records(1.0, 0, range(10)),
                          ev(5.0, "revoked", partitions={T: [0]})], stop_requested_at=20.0)
    second = MemberRun(1, [ev(0.0, "started"), ev(6.0, "assigned", partitions={T: [0]}),
                           *records(7.0, 0, range(4, 10))], stop_requested_at=20.0)
    proxy = [commit(2.0, 0, {0: 4}),  # stored: the next owner reads from 4
             commit(3.0, 0, {0: 8}, error="REBALANCE_IN_PROGRESS"),  # refused: not stored
             commit(5.001, 0, {0: 9}, outcome="dropped",
                    fault={"rule": "r", "action": "drop_request"})]  # never reached the broker
    obs = observe(run([first, second], proxy, expected=keys))
    assert (obs.duplicated, obs.at_least_once_bound, obs.duplicates_beyond_bound) == (6, 6, 0)
    # A commit in the revoke callback (just after the revoked line) moves the bound.
    late = [*proxy, commit(5.002, 0, {0: 7})]
    obs = observe(run([first, second], late, expected=keys))
    assert (obs.at_least_once_bound, obs.duplicates_beyond_bound) == (3, 3)


def test_a_member_killed_by_the_scenario_loses_what_it_had_not_committed() -> None:
    keys = {(T, 0, o) for o in range(6)}
    killed = MemberRun(0, [ev(0.0, "started"), ev(0.5, "assigned", partitions={T: [0]}),
                           *records(1.0, 0, range(6))],
                       returncode=-9, killed_by_scenario_at=3.0,
                       control=[{"ts": 3.0, "action": "kill", "pid": 1}])
    proxy = [commit(2.0, 0, {0: 2})]
    obs = observe(run([killed], proxy, expected=keys))
    (m,) = obs.members
    assert m.killed_by_scenario and m.end == "killed_by_scenario"
    assert obs.at_least_once_bound == 4
    # The runner's stop is not a loss: nobody reads after it.
    stopped = MemberRun(0, killed.events, stop_requested_at=3.0)
    assert observe(run([stopped], proxy, expected=keys)).at_least_once_bound == 0


def test_offset_regressions_of_stored_commits() -> None:
    proxy = [commit(1.0, 0, {0: 10, 1: 3}), commit(2.0, 1, {0: 5}),
             commit(3.0, 1, {1: 1}, error="ILLEGAL_GENERATION"),  # refused: no regression
             commit(4.0, 0, {0: 12})]
    obs = observe(run([], proxy))
    assert obs.offset_regressions == [
        {"topic": T, "partition": 0, "from": 10, "to": 5, "at": 2.0, "client_id": "lib-abc-m1"}]


def test_injection_counts() -> None:
    def fault(error: str | None = None, **extra: Any) -> dict[str, Any]:
        return px(1.0, "Heartbeat", fault={"rule": "r", "action": "error", "error": error,
                                           **extra})
    proxy = [fault("UNKNOWN_MEMBER_ID"), fault("UNKNOWN_MEMBER_ID", broker_consistent=True),
             fault("ILLEGAL_GENERATION", synthetic=True), fault("NOT_COORDINATOR"),
             px(1.0, "Heartbeat", fault={"rule": "r", "action": "sequence",
                                         "error": "FENCED_INSTANCE_ID",
                                         "stages": [{"rule": "a", "error": "FENCED_INSTANCE_ID",
                                                     "broker_consistent": True}]}),
             px(2.0, "Heartbeat")]
    obs = observe(run([], proxy))
    assert (obs.injections, obs.synthetic_injections, obs.broker_disagreeing_injections) == (
        5, 1, 2)


def test_proxy_events_outside_the_run_are_an_earlier_attempt() -> None:
    member = MemberRun(0, [ev(1.0, "started")], stop_requested_at=20.0)
    proxy = [px(-100.0, "SyncGroup", fault={"rule": "r", "action": "drop_request"},
                outcome="dropped"), px(2.0, "Heartbeat")]
    obs = observe(run([member], proxy))
    assert obs.injections == 0
    assert obs.members[0].coordination_requests == 1


def test_freeze_counts_only_outstanding_records() -> None:
    keys = [(T, 0, o) for o in range(4)]
    member = MemberRun(0, [ev(0.0, "started"), *records(1.0, 0, range(2)),
                           *records(9.0, 0, range(2, 4))], stop_requested_at=20.0)
    evidence = run([member], expected=set(keys))
    assert observe(evidence).longest_freeze_s == pytest.approx(7.999)
    produced = {keys[0]: 0.0, keys[1]: 0.0, keys[2]: 8.5, keys[3]: 8.5}
    frozen = observe(evidence, produced)
    assert (frozen.longest_freeze_s, frozen.longest_freeze_from) == (1.0, 0.0)  # 0 s -> 1 s
    # Records never consumed keep the freeze going to the teardown.
    missing = run([member], expected={*keys, (T, 0, 4)})
    assert observe(missing, {**produced, (T, 0, 4): 10.0}).longest_freeze_s == pytest.approx(
        10.0)


def test_records_committed_but_unprocessed_at_a_kill_are_lost_in_processing() -> None:
    # Member 0 processes 2 s a record, in order; its commit of offset 3 is stored at 8 s and
    # the scenario kills it at 10 s: offset 2 (delivered at 9 s, done at 11 s) was committed
    # and never processed; offset 3 was not committed, so its successor reads it again.
    config = {"ts": 0.0, "event": "config", "processing_delay_ms": 2000}
    records = [{"ts": t, "event": "record", "topic": "t", "partition": 0, "offset": o}
               for t, o in ((5.0, 0), (7.0, 1), (9.0, 2), (9.5, 3))]
    member = MemberRun(index=0, events=[config, *records], killed_by_scenario_at=10.0)
    successor = MemberRun(index=1, events=[
        {"ts": 12.0, "event": "record", "topic": "t", "partition": 0, "offset": 3}])
    commit = {"ts": 8.0, "api": "OffsetCommit", "client_id": "app-m0", "group": "g",
              "outcome": "ok", "offsets": {"t": {"0": {"offset": 3, "error": None}}}}
    evidence = RunEvidence(members=[member, successor],
                           expected={("t", 0, o) for o in range(4)}, proxy_events=[commit],
                           started_at=0.0, ended_at=20.0)
    observed = observe(evidence)
    assert observed.lost_in_processing == 1 and observed.lost == 0


def test_the_sarama_harness_async_delay_is_reproduced() -> None:
    from kafka_chaos_proxy.lab.matrix.observations import async_delay_s

    # Between 0.5 and 1.5 times the delay, and different from message to message.
    delays = [async_delay_s("t", p, o, 2.0) for p in range(2) for o in range(50)]
    assert all(1.0 <= d < 3.0 for d in delays) and len(set(delays)) > 40


# -- zombie fetching (the proxy's Fetch samples) ------------------------------------------------


def fetched(ts: float, member: int, parts: list[int], connection: int = 3) -> dict[str, Any]:
    """One Fetch sample of member `member`: the session's whole set after the request."""
    return {"ts": ts, "client_id": f"lib-abc-m{member}", "api": "Fetch", "api_key": 1,
            "version": 12, "outcome": "observed", "group": None, "connection": connection,
            "partitions": {T: parts} if parts else {}, "fetches": 2, "session_id": 9,
            "session_epoch": 3}


def handover(revoked_at: float | None) -> list[MemberRun]:
    """Member 0 owns t-0 and t-1 from 1 s (and is revoked at `revoked_at`, or never told);
    member 1 is assigned all four partitions at 6 s. Both stopped at 20 s."""
    first = [ev(0.0, "started"), ev(1.0, "assigned", partitions={T: [0, 1]})]
    if revoked_at is not None:
        first.append(ev(revoked_at, "revoked", partitions={T: [0, 1]}))
    second = [ev(0.5, "started"), ev(1.0, "assigned", partitions={T: [2, 3]}),
              ev(5.9, "revoked", partitions={T: [2, 3]}),
              ev(6.0, "assigned", partitions={T: [0, 1, 2, 3]})]
    return [MemberRun(0, first, stop_requested_at=20.0),
            MemberRun(1, second, stop_requested_at=20.0)]


def test_fetches_after_the_revoke_of_a_partition_another_member_owns_are_zombie() -> None:
    assert ZOMBIE_GRACE_S == 1.0
    samples = [fetched(2.0, 0, [0, 1]),
               fetched(5.5, 0, [0, 1]),  # revoked at 5 s, nobody owns them yet
               fetched(6.5, 0, [0, 1]),  # member 1 owns them since 0.5 s: still in flight
               fetched(7.5, 0, [0, 1]), fetched(9.0, 0, [1]),  # zombie
               fetched(9.5, 0, []),  # its session is empty: not fetching anything
               fetched(21.0, 0, [0, 1]),  # after the stop request: teardown
               fetched(7.0, 1, [0, 1, 2, 3]), fetched(8.0, 1, [0, 1, 2, 3])]  # the owner
    m0, m1 = observe(run(handover(revoked_at=5.0), samples)).members
    assert (m0.zombie_fetches, m0.zombie_fetch_s, m0.zombie_first_s) == (2, 1.5, 7.5)
    assert m0.zombie_partitions == ["t-0", "t-1"]
    assert (m0.zombie_partition, m0.zombie_owner) == ("t-1", 1)  # 7.5 s -> 9 s
    assert (m1.zombie_fetches, m1.zombie_partitions) == (0, [])
    # Samples are no coordination requests: silence and request counts never see them.
    assert (m0.coordination_requests, m0.longest_silence_s) == (0, 0.0)


def test_a_member_expelled_without_being_told_is_a_zombie_once_the_group_moved_on() -> None:
    """Its heartbeats unanswered, the broker expelled member 0 and gave its partitions to
    member 1; member 0's harness never said revoked (nobody told it): what the group decided
    ends its ownership, at member 1's assignment."""
    samples = [fetched(5.0, 0, [0, 1]), fetched(6.8, 0, [0, 1]),  # before / within the grace
               fetched(7.1, 0, [0, 1]), fetched(8.1, 0, [0, 1]), fetched(12.1, 0, [0, 1])]
    m0, m1 = observe(run(handover(revoked_at=None), samples)).members
    assert (m0.zombie_fetches, m0.zombie_fetch_s, m0.zombie_first_s) == (3, 5.0, 7.1)
    assert (m0.zombie_partitions, m0.zombie_partition, m0.zombie_owner) == (
        ["t-0", "t-1"], "t-0", 1)
    assert m1.zombie_fetches == 0
    assert m0.unassigned_at_end is False  # its own view: it still owns them


def test_a_clean_handover_has_no_zombie_fetch() -> None:
    """Member 0 is revoked at 5 s and stops fetching what it lost; a fetch in flight when
    member 1 got them, and member 0 fetching other partitions later, are no zombies. Ownership
    from a Java-style whole `assignment` (the KIP-848 harnesses write the same lines) counts
    as the callbacks' `partitions` do."""
    members = handover(revoked_at=5.0)
    members[0].events.append(ev(8.0, "assigned", partitions={T: [2]}, assignment={T: [2]}))
    members[1].events.append(ev(7.9, "revoked", partitions={T: [2]}))
    samples = [fetched(4.9, 0, [0, 1]), fetched(6.9, 0, [0, 1]),  # in flight
               fetched(9.0, 0, [2]), fetched(10.0, 0, [2]),  # its own now
               fetched(9.0, 1, [0, 1, 3])]
    obs = observe(run(members, samples))
    assert [m.zombie_fetches for m in obs.members] == [0, 0]
    assert obs.fetch_samples == 5 and obs.last_assignment_change_at == 8.0
    # Without Fetch samples (a proxy without --fetch-events) there is nothing to count.
    bare = observe(run(handover(revoked_at=5.0)))
    assert bare.fetch_samples == 0 and bare.members[0].zombie_fetches == 0
