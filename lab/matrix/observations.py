"""Named observations of one run, with numbers, from the harness and proxy events.

PLACEHOLDER of the `verdicts` branch: the dataclasses are the agreed contract; `observe` here is
a minimal stand-in (written so the verdict can be wired and tested end to end) that the
`observations` branch replaces at merge. What it does not compute it reports as nothing found
(0, None, []), never as a failure: `unassigned_while_others_owned_s`, `time_to_reassignment_s`,
`membership_lost`, `offset_regressions` and the at-least-once bound (taken as the duplicates
seen, so `duplicates_beyond_bound` is 0).

Times are seconds relative to the run's start.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import pairwise
from typing import Any

from lab.matrix.classify import MemberRun, RunEvidence, injections, surfaced_errors

#: Errors a proxy can answer with that leave the broker believing otherwise (unless the rule
#: was made broker-consistent).
_DISAGREEING = {"UNKNOWN_MEMBER_ID", "ILLEGAL_GENERATION", "FENCED_INSTANCE_ID",
                "FENCED_MEMBER_EPOCH"}


@dataclass(frozen=True)
class MemberObservations:
    index: int
    client_id: str | None
    killed_by_scenario: bool
    longest_silence_s: float
    unassigned_while_others_owned_s: float
    time_to_reassignment_s: float | None
    app_errors: int
    error_kinds: list[str]
    first_error_at: float | None
    last_error_at: float | None
    consume_returned_silently: int
    rejoins: int
    rejoins_with_new_member_id: int
    membership_lost: bool
    commits_ok: int
    commits_failed: int
    commits_with_invalid_identity: int
    stopped_after_terminal_error: bool


@dataclass(frozen=True)
class Observations:
    members: list[MemberObservations]
    records_expected: int
    records_consumed: int
    lost: int
    duplicated: int
    at_least_once_bound: int
    duplicates_beyond_bound: int
    offset_regressions: list[dict[str, Any]]
    longest_freeze_s: float
    injections: int
    synthetic_injections: int
    broker_disagreeing_injections: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _ts(event: dict[str, Any]) -> float:
    return float(event.get("ts", 0.0))


def _member(member: MemberRun, evidence: RunEvidence) -> MemberObservations:
    t0 = evidence.started_at
    suffix = f"-m{member.index}"
    wire = [e for e in evidence.proxy_events if str(e.get("client_id") or "").endswith(suffix)]
    client_id = str(wire[0]["client_id"]) if wire else None
    begin = min((_ts(e) for e in member.events), default=t0)
    end = evidence.ended_at
    if member.killed_by_scenario_at is not None:
        end = min(end, member.killed_by_scenario_at)
    exits = [_ts(e) for e in member.events if e.get("event") == "exited"]
    if exits:
        end = min(end, exits[-1])
    times = [begin, *sorted(_ts(e) for e in wire if begin <= _ts(e) <= end), end]
    silence = max((b - a for a, b in pairwise(times)), default=0.0)
    errors = surfaced_errors(member)
    error_times = [_ts(e) for e in member.events if e.get("event") == "error"]
    records = [_ts(e) for e in member.events if e.get("event") == "record"]
    joins = [e for e in wire if e.get("api") == "JoinGroup" and not e.get("error")
             and e.get("member_id")]
    ids = list(dict.fromkeys(str(e["member_id"]) for e in joins))
    commits = [e for e in wire if e.get("api") == "OffsetCommit"]
    last_error = max(error_times, default=None)
    return MemberObservations(
        index=member.index, client_id=client_id,
        killed_by_scenario=member.killed_by_scenario_at is not None,
        longest_silence_s=round(max(0.0, silence), 3),
        unassigned_while_others_owned_s=0.0, time_to_reassignment_s=None,
        app_errors=len(errors), error_kinds=list(dict.fromkeys(errors)),
        first_error_at=round(min(error_times) - t0, 3) if error_times else None,
        last_error_at=round(last_error - t0, 3) if last_error is not None else None,
        consume_returned_silently=sum(1 for e in member.events
                                      if e.get("event") == "consume_returned"
                                      and not e.get("error")),
        rejoins=max(0, len(joins) - 1), rejoins_with_new_member_id=max(0, len(ids) - 1),
        membership_lost=False,
        commits_ok=sum(1 for e in commits if not e.get("error")),
        commits_failed=sum(1 for e in commits if e.get("error")),
        commits_with_invalid_identity=sum(1 for e in commits if e.get("generation") == -1
                                          or e.get("member_id") == ""),
        stopped_after_terminal_error=bool(errors) and last_error is not None
        and not any(t > last_error for t in records)
        and (bool(exits) or member.returncode is not None),
    )


def observe(evidence: RunEvidence) -> Observations:
    seen: dict[tuple[str, int, int], int] = {}
    first_seen: list[float] = []
    for member in evidence.members:
        for ev in member.events:
            if ev.get("event") != "record":
                continue
            key = (str(ev.get("topic")), int(ev.get("partition", -1)), int(ev.get("offset", -1)))
            if key in evidence.expected:
                if key not in seen:
                    first_seen.append(_ts(ev))
                seen[key] = seen.get(key, 0) + 1
    duplicated = sum(n - 1 for n in seen.values())
    times = sorted(first_seen)
    freeze = max((b - a for a, b in pairwise(times)), default=0.0)
    faults = injections(evidence.proxy_events)
    disagreeing = [e for e in faults if str(e["fault"].get("error")) in _DISAGREEING
                   and not e["fault"].get("broker_consistent")]
    return Observations(
        members=[_member(m, evidence) for m in evidence.members],
        records_expected=len(evidence.expected), records_consumed=len(seen),
        lost=len(evidence.expected) - len(seen), duplicated=duplicated,
        at_least_once_bound=duplicated, duplicates_beyond_bound=0, offset_regressions=[],
        longest_freeze_s=round(freeze, 3), injections=len(faults),
        synthetic_injections=sum(1 for e in faults if e["fault"].get("synthetic")),
        broker_disagreeing_injections=len(disagreeing),
    )
