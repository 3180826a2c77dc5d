"""The timeline model from recorded matrix evidence and from hand-made events of each kind.

Why both: the recorded runs are what the events really carry (a close on SyncGroup, the
bootstrap FindCoordinator without a member id, three generations); the hand-made ones pin each
outcome to its colour and the rules for what is left out (the cap, unknown APIs).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from kafka_chaos_proxy.proxy.timeline import build_timeline, read_harness, read_json_lines
from kafka_chaos_proxy.proxy.timeline.model import (
    BROKER_ERROR,
    CLOSED,
    DELAYED,
    DROPPED,
    INJECTED,
    OK,
    OTHER,
    span_kind,
)
from kafka_chaos_proxy.proxy.timeline.sources import busiest_group

EVIDENCE = Path(__file__).resolve().parents[3] / "fixtures" / "evidence"
JAVA_RESET = EVIDENCE / "java-classic-coordinator-reset-mid-rebalance-1"
STORM = EVIDENCE / "kafka-python-offsetcommit-illegal-generation-manual-1"


def _run(run_dir: Path) -> tuple[list[dict[str, Any]], str, dict[str, list[dict[str, Any]]]]:
    events = list(read_json_lines(run_dir / "proxy-events.jsonl.gz"))
    group = json.loads((run_dir / "result.json").read_text())["group"]
    return events, group, read_harness(sorted(run_dir.glob("m*.jsonl.gz")))


def ev(seq: int, api: str = "Heartbeat", *, ts: float | None = None, **fields: Any
       ) -> dict[str, Any]:
    base: dict[str, Any] = {"seq": seq, "ts": 100.0 + seq if ts is None else ts, "api": api,
                            "version": 4, "group": "g", "connection": 1, "client_id": "c-m0",
                            "broker": 1, "member_id": "c-m0-aaaa", "generation": 1,
                            "latency_ms": 2.0, "outcome": "ok", "error": None, "fault": None}
    base.update(fields)
    return base


def test_recorded_coordinator_reset_two_members_three_generations() -> None:
    events, group, harness = _run(JAVA_RESET)
    timeline = build_timeline(events, group, harness)
    assert [lane.client_id for lane in timeline.lanes] == [
        "java-classic-d788dd-m0", "java-classic-d788dd-m1"]
    assert all(lane.member_id for lane in timeline.lanes)
    assert [band.generation for band in timeline.bands] == [1, 2, 3]
    assert all(a.end <= b.start + 1e-9 for a, b in zip(timeline.bands, timeline.bands[1:],
                                                       strict=False))
    closed = [s for s in timeline.spans if s.kind == CLOSED]
    assert [(s.api, s.rule) for s in closed] == [
        ("SyncGroup", "coordinator-reset-mid-rebalance-1")]
    # every event of the group is drawn, on a member's lane (no "no member id" lane)
    assert len(timeline.spans) == sum(1 for e in events if e["group"] == group)
    assert timeline.cut == 0 and timeline.ignored == {}
    # the bootstrap FindCoordinator (no member id) is on the lane of its client's member
    first = timeline.spans[0]
    assert first.api == "FindCoordinator"
    assert timeline.lane(first.lane).client_id == "java-classic-d788dd-m0"
    # assignments: member 0 gets all four partitions, then a share after member 1 joins
    m0 = timeline.lanes[0].key
    changes = [c.partitions for c in timeline.assignments if c.lane == m0]
    assert changes[0] == {"mx-coordinator-reset-mid-rebalance-d788dd": [0, 1, 2, 3]}
    assert len(changes) >= 2
    # the harness files are matched to their lanes by the member ids they reported
    anchors = {d.name: d.anchor for d in timeline.deliveries}
    assert anchors == {"m0": timeline.lanes[0].key, "m1": timeline.lanes[1].key}
    assert [d.total for d in timeline.deliveries] == [75, 15]
    assert sum(d.duplicate_total for d in timeline.deliveries) == 0


def test_recorded_rejoin_storm_marks_injected_errors_and_duplicates() -> None:
    events, group, harness = _run(STORM)
    timeline = build_timeline(events, group, harness)
    injected = [s for s in timeline.spans if s.kind == INJECTED]
    assert len(injected) == 58 and {s.api for s in injected} == {"OffsetCommit"}
    assert all(s.rule is not None for s in injected)
    assert max(b.generation for b in timeline.bands) >= 59
    duplicates = sum(d.duplicate_total for d in timeline.deliveries)
    assert duplicates == 1702  # the run's result.json: 1792 deliveries of 120 records
    assert sum(d.total for d in timeline.deliveries) == 1792 + 30


@pytest.mark.parametrize(("fields", "kind"), [
    ({}, OK),
    ({"error": "REBALANCE_IN_PROGRESS"}, BROKER_ERROR),
    ({"error": "MEMBER_ID_REQUIRED", "step": "member_id_required"}, OK),
    ({"outcome": "error_injected", "error": "NOT_COORDINATOR",
      "fault": {"rule": "r", "action": "error", "error": "NOT_COORDINATOR"}}, INJECTED),
    ({"outcome": "dropped", "fault": {"rule": "r", "action": "drop_response"}}, DROPPED),
    ({"fault": {"rule": "r", "action": "delay", "delay_ms": 300.0}}, DELAYED),
    ({"fault": {"rule": "r", "action": "sequence",
                "stages": [{"rule": "h", "action": "hold"}, {"rule": "d", "action": "delay"}]}},
     DELAYED),
    ({"outcome": "closed", "fault": {"rule": "r", "action": "close"}}, CLOSED),
    ({"outcome": "upstream_closed"}, CLOSED),
    ({"outcome": "something-new"}, OTHER),
])
def test_span_kind_follows_outcome_and_fault(fields: dict[str, Any], kind: str) -> None:
    assert span_kind(ev(1, **fields)) == kind


def test_unknown_apis_are_counted_not_drawn() -> None:
    fetch = ev(2, "Fetch", outcome="observed", partitions={"t": [0, 1]})
    timeline = build_timeline([ev(1), fetch, ev(3)], "g")
    assert [s.seq for s in timeline.spans] == [1, 3]
    assert timeline.ignored == {"Fetch": 1}


def test_cap_keeps_first_or_last_and_says_how_many() -> None:
    events = [ev(i) for i in range(1, 11)]
    first = build_timeline(events, "g", max_events=3)
    assert [s.seq for s in first.spans] == [1, 2, 3]
    assert (first.total_events, first.cut, first.kept) == (10, 7, "first")
    last = build_timeline(events, "g", max_events=3, keep="last")
    assert [s.seq for s in last.spans] == [8, 9, 10]
    with pytest.raises(ValueError):
        build_timeline(events, "g", max_events=0)


def test_members_by_connection_then_by_client_and_one_row_per_connection() -> None:
    events = [
        ev(1, "FindCoordinator", connection=5, broker=-1, member_id=None, generation=None),
        ev(2, "JoinGroup", connection=6, member_id="c-m0-aaaa", generation=1),
        ev(3, "OffsetFetch", connection=6, member_id=None, generation=None),
        ev(4, "JoinGroup", connection=7, client_id="c-m1", member_id="c-m1-bbbb",
           generation=2),
        ev(5, "Heartbeat", connection=8, client_id="other", member_id=None),
    ]
    timeline = build_timeline(events, "g")
    lanes = {s.seq: timeline.lane(s.lane) for s in timeline.spans}
    assert lanes[1].member_id == lanes[2].member_id == lanes[3].member_id == "c-m0-aaaa"
    assert lanes[4].member_id == "c-m1-bbbb"
    assert lanes[5].member_id is None and lanes[5].label == "other (no member id)"
    assert [row.connection for row in lanes[1].rows] == [5, 6]
    assert lanes[1].label == "c-m0 · aaaa"


def test_kip848_epochs_make_bands_and_assignment_changes() -> None:
    cgh = "ConsumerGroupHeartbeat"
    events = [
        ev(1, cgh, generation=1, assignment={"t": [0, 1]}),
        ev(2, cgh, generation=1, assignment=None),
        ev(3, cgh, client_id="c-m1", member_id="c-m1-bbbb", generation=2,
           assignment={"t": [1]}),
        ev(4, cgh, generation=3, assignment={"t": [0]}),
        ev(5, cgh, generation=3, assignment={"t": [0]}),  # unchanged: no new marker
    ]
    timeline = build_timeline(events, "g")
    assert [(b.generation, b.epoch) for b in timeline.bands] == [(1, True), (2, True),
                                                                 (3, True)]
    assert [(c.seq, c.partitions) for c in timeline.assignments] == [
        (1, {"t": [0, 1]}), (3, {"t": [1]}), (4, {"t": [0]})]


def test_duplicates_are_records_another_delivery_had_first() -> None:
    def record(ts: float, offset: int) -> dict[str, Any]:
        return {"ts": ts, "event": "record", "topic": "t", "partition": 0, "offset": offset}

    harness = {"m0": [{"ts": 100.0, "event": "assigned", "member_id": "c-m0-aaaa"},
                      record(101.0, 0), record(101.5, 1)],
               "m1": [record(102.0, 1), record(102.5, 2), {"event": "record"}]}
    timeline = build_timeline([ev(1), ev(4)], "g", harness)
    by_name = {d.name: d for d in timeline.deliveries}
    assert (by_name["m0"].total, by_name["m0"].duplicate_total) == (2, 0)
    assert (by_name["m1"].total, by_name["m1"].duplicate_total) == (2, 1)
    assert by_name["m0"].anchor == "c-m0-aaaa" and by_name["m1"].anchor is None
    assert sum(by_name["m1"].counts) == 2


def test_summary_is_the_decoded_exchange_bounded() -> None:
    long_assignment = {f"topic-{i}": list(range(50)) for i in range(20)}
    event = ev(7, "SyncGroup", assignment=long_assignment, error="ILLEGAL_GENERATION",
               outcome="error_injected",
               fault={"rule": "sync-ig", "action": "error", "error": "ILLEGAL_GENERATION",
                      "synthetic": False})
    (span,) = build_timeline([event], "g").spans
    text = "\n".join(span.summary)
    assert span.summary[0].startswith("#7 SyncGroup v4 · gen/epoch 1")
    assert "fault: rule sync-ig (error error=ILLEGAL_GENERATION)" in text
    assert "error: ILLEGAL_GENERATION" in text
    assert all(len(line) <= 240 for line in span.summary)


def test_sources_read_lines_gzip_and_lists(tmp_path: Path) -> None:
    rows = [ev(1), ev(2, group="other"), ev(3, group="other")]
    plain = tmp_path / "e.jsonl"
    plain.write_text("\n".join(json.dumps(r) for r in rows) + "\nnot json\n[1]\n")
    packed = tmp_path / "e.jsonl.gz"
    with gzip.open(packed, "wt") as out:
        out.write(plain.read_text())
    listed = tmp_path / "e.json"
    listed.write_text(json.dumps(rows))
    for path in (plain, packed, listed):
        assert [r["seq"] for r in read_json_lines(path)] == [1, 2, 3], path
    assert busiest_group(read_json_lines(plain)) == "other"
    assert list(read_harness([tmp_path / "e.jsonl.gz"])) == ["e"]
