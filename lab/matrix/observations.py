"""Observations of one matrix run: named facts, with numbers, about what each member and the
group went through, computed from the run's evidence only.

Why: `classify` names one outcome per run, and "recovered" says only that every record was
consumed once. A member stuck for 27 s while another took over, errors the application saw,
commits sent with generation -1, a lost membership, hundreds of failed commits or a long freeze
all hide behind it. Observations are the facts; expectations (verdicts) judge them.

From what: one `RunEvidence` (lab.matrix.classify): each member's harness events (the JSON
lines of tests/clients/README.md), how it ended (`returncode`, `stop_requested_at`,
`killed_by_scenario_at`, `control`: the scenario's kill/pause/resume signals), the records that
were produced (`expected`), and the proxy's coordination events (the dicts of its event log:
ts, client_id, api, group, member_id, generation, error, outcome, fault, offsets, assignment,
subscription, latency_ms, ...).

Conventions used by every observation:
- Only the proxy events inside the run (`started_at` to `ended_at`) count: a run retried on
  the same event file can carry an earlier attempt's events.
- Member i's proxy events are those whose `client_id` ends with "-m<i>" (the runner's naming).
- A member's *window* runs from its `started` event (else its first event) to its *end*: the
  earliest of its `exited` event, the scenario's SIGKILL, the runner's stop request (SIGTERM:
  what follows is teardown, never a finding) and the end of the run; a process that died without
  an `exited` line ends at its last event.
- Times (`..._at`) are seconds since `evidence.started_at`; durations are seconds. Both are
  rounded to the millisecond.
- An OffsetCommit *stored* a partition's offset when the partition carries no error and the
  broker answered it (outcome "ok"), or the broker answered and the proxy dropped the response
  (fault action drop_response). Dropped requests, closed connections and injected errors
  stored nothing (an error_after_forward hides the broker's answer: counted as not stored).
- Production times are not in the evidence; `observe` takes them as an optional argument
  (only the freeze needs them).
- Ownership is what the member's own harness said (assigned/revoked/lost callbacks, per
  partition), under the classic and the KIP-848 protocol alike: the library's view of what it
  owns, which is what decides what it fetches and commits.
- The proxy's Fetch samples (`is_fetch_sample`: `api` Fetch, `outcome` observed, present when
  the proxy ran with `--fetch-events`, as the matrix's does) say which partitions a connection
  was fetching when a Fetch arrived; they are no coordination request (silence, idle and the
  request counts never see them) and only the zombie-fetch observation reads them.

Imports: lab.matrix.classify (RunEvidence, MemberRun and its helpers, so that "app-visible
error" and "how a member ended" mean exactly what they mean for the outcome) and the standard
library; nothing of proxy/ (its events are read as plain dicts). Pure: no I/O, no clock.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from kafka_chaos_proxy.lab.matrix.classify import (
    MemberRun,
    RecordKey,
    RunEvidence,
    is_fetch_sample,
    member_end,
    surfaced_errors,
)

Event = Mapping[str, Any]
Interval = tuple[float, float]
TopicPartition = tuple[str, int]

#: Every coordination request a member sends (the proxy decodes and logs these).
COORDINATION_APIS = frozenset({
    "JoinGroup", "SyncGroup", "Heartbeat", "OffsetCommit", "OffsetFetch", "LeaveGroup",
    "ConsumerGroupHeartbeat", "FindCoordinator",
})
#: Errors that tell a member it is no longer (or not in this generation) a member.
MEMBERSHIP_ERRORS = frozenset({
    "UNKNOWN_MEMBER_ID", "FENCED_INSTANCE_ID", "FENCED_MEMBER_EPOCH", "ILLEGAL_GENERATION",
})
#: KIP-848 answers after which the member must join again (epoch 0).
REJOIN_ERRORS = frozenset({"UNKNOWN_MEMBER_ID", "FENCED_MEMBER_EPOCH"})
#: member_end() values for a member that ended by itself (not the runner, not the scenario).
ENDED_BY_ITSELF = frozenset({"crashed", "died", "returned_nil", "returned_error"})
#: A fetch of a partition that moved is a zombie's only this long after both the new owner's
#: ownership began and the member's own ended: a Fetch already in flight (or sent in the same
#: poll) when the revoke or the new assignment came is not one.
ZOMBIE_GRACE_S = 1.0


@dataclass(frozen=True)
class MemberObservations:
    index: int
    client_id: str | None
    killed_by_scenario: bool
    #: Longest gap between this member's coordination requests at the proxy (and from its last
    #: one to its end), scenario pauses excluded. See `_silence`.
    longest_silence_s: float
    #: Total time it owned no partitions while another member owned some.
    unassigned_while_others_owned_s: float
    #: Longest episode from losing its partitions to owning some again (an episode still open
    #: at its end counts up to its end); None: it never lost them.
    time_to_reassignment_s: float | None
    #: Errors the application saw (harness `error` events, failed commits, consume loop errors).
    app_errors: int
    #: Distinct error names (UNKNOWN_MEMBER_ID, ...), sorted.
    error_kinds: list[str]
    first_error_at: float | None
    last_error_at: float | None
    #: `consume_returned` events without an error (sarama: the session ended silently).
    consume_returned_silently: int
    #: JoinGroup rounds completed after its first assignment.
    rejoins: int
    rejoins_with_new_member_id: int
    #: The broker (not an injected fault) said UNKNOWN_MEMBER_ID / FENCED_INSTANCE_ID /
    #: FENCED_MEMBER_EPOCH / ILLEGAL_GENERATION to it. See `_membership_lost_at`.
    membership_lost: bool
    #: From the proxy's OffsetCommit events (what the client was really answered).
    commits_ok: int
    commits_failed: int
    #: OffsetCommit carrying generation -1 or an empty member id (group commits only).
    commits_with_invalid_identity: int
    #: Its last app-visible error was followed by its process/consume loop ending.
    stopped_after_terminal_error: bool
    # -- added beyond the contract (defaults, so hand-built instances need not name them)
    #: How it ended: member_end() of classify (running, crashed, returned_error, ...).
    end: str = "running"
    #: Coordination requests it sent in its window (0: the silence above measured nothing).
    coordination_requests: int = 0
    #: When the longest silence began; None when there was none.
    longest_silence_from: float | None = None
    #: Like the silence, but a request counts as activity until it was answered (a JoinGroup
    #: the broker parks while the group forms is waiting, not silence).
    longest_idle_s: float = 0.0
    #: It had owned partitions and owned none at its end.
    unassigned_at_end: bool = False
    #: Record deliveries to its application (every `record` event).
    records_delivered: int = 0
    #: When the broker first said it was no longer a member; None: never.
    membership_lost_at: float | None = None
    #: Fetch samples of its client in its window that fetch a partition another member owned
    #: while it did not, after its revoke or after the group gave the partition to that member
    #: without telling it (see `_zombie_fetches`): zombie fetching.
    zombie_fetches: int = 0
    #: Longest span from the first to the last such sample for one partition (0: one sample).
    zombie_fetch_s: float = 0.0
    #: When the first such sample came; None: there was none.
    zombie_first_s: float | None = None
    #: The partitions it fetched so, as "topic-partition", in (topic, partition) order.
    zombie_partitions: list[str] = field(default_factory=list)
    #: The partition of that longest span, and the member that owned it at its first zombie
    #: fetch (what the verdict names); None when there was none.
    zombie_partition: str | None = None
    zombie_owner: int | None = None


@dataclass(frozen=True)
class Observations:
    members: list[MemberObservations]
    records_expected: int
    #: Distinct expected records consumed by any member.
    records_consumed: int
    #: Expected and never consumed by any member.
    lost: int
    #: Deliveries beyond the first, summed.
    duplicated: int
    #: Records a member had delivered past its last successful commit when it lost the
    #: partition (summed over members and episodes): duplicates up to this are the documented
    #: at-least-once behaviour.
    at_least_once_bound: int
    duplicates_beyond_bound: int
    #: {"topic","partition","from","to","at","client_id"}: a committed offset going backwards.
    offset_regressions: list[dict[str, Any]]
    #: Longest gap between consecutive consumed records while records were outstanding.
    longest_freeze_s: float
    #: Proxy events with a fault.
    injections: int
    #: Of those, fault.synthetic true (an error a real broker never returns there).
    synthetic_injections: int
    #: Injected membership errors without fault.broker_consistent (the broker still holds the
    #: member).
    broker_disagreeing_injections: int
    # -- added beyond the contract
    #: When the longest freeze began; None when there was none.
    longest_freeze_from: float | None = None
    #: Records a member killed by the scenario had been delivered but not yet processed when
    #: it died, whose offset its stored commits had already passed, and that no member was
    #: delivered after the kill: processed by no one (see `_lost_in_processing`).
    lost_in_processing: int = 0
    #: The proxy's Fetch samples in the run (0: it ran without --fetch-events, and zombie
    #: fetching could not be seen).
    fetch_samples: int = 0
    #: The last assigned/revoked/lost line of any member in its window; None: none.
    last_assignment_change_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON, keys in field order (members as dicts in member order)."""
        return asdict(self)


# -- small pieces ---------------------------------------------------------------------------


def _ts(ev: Event) -> float:
    try:
        return float(ev.get("ts", 0.0))
    except (TypeError, ValueError):
        return 0.0


def _r(value: float) -> float:
    return round(float(value), 3)


def _rel(evidence: RunEvidence, ts: float | None) -> float | None:
    return None if ts is None else _r(ts - evidence.started_at)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _partitions(value: Any) -> set[TopicPartition]:
    """{"topic": [0, 1]} as a set of (topic, partition); anything else is empty."""
    out: set[TopicPartition] = set()
    if not isinstance(value, Mapping):
        return out
    for topic, parts in value.items():
        if isinstance(parts, list):
            out.update((str(topic), p) for p in (_int(x) for x in parts) if p is not None)
    return out


def _fault(ev: Event) -> Mapping[str, Any]:
    fault = ev.get("fault")
    return fault if isinstance(fault, Mapping) else {}


# -- intervals (sorted, disjoint lists of (start, end)) ---------------------------------------


def _union(intervals: Iterable[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for a, b in sorted(i for i in intervals if i[1] > i[0]):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _intersect(xs: Sequence[Interval], ys: Sequence[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for a, b in _union(xs):
        for c, d in _union(ys):
            lo, hi = max(a, c), min(b, d)
            if hi > lo:
                out.append((lo, hi))
    return _union(out)


def _subtract(xs: Sequence[Interval], ys: Sequence[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for a, b in _union(xs):
        pieces = [(a, b)]
        for c, d in _union(ys):
            pieces = [p for lo, hi in pieces for p in ((lo, min(hi, c)), (max(lo, d), hi))
                      if p[1] > p[0]]
        out.extend(pieces)
    return _union(out)


def _measure(intervals: Iterable[Interval]) -> float:
    return sum(b - a for a, b in _union(intervals))


# -- one member's frame: identity, window, requests, pauses -----------------------------------


@dataclass(frozen=True)
class _Member:
    """What every per-member observation needs, gathered once."""

    run: MemberRun
    client_id: str | None
    #: Its coordination requests at the proxy within its window, by time.
    requests: Sequence[Event]
    #: The same from its start on, its close after a stop request included.
    with_close: Sequence[Event]
    start: float | None
    end: float | None
    pauses: list[Interval] = field(default_factory=list)
    #: The proxy's Fetch samples of its client within its window, by time.
    fetches: Sequence[Event] = ()

    def within(self, ts: float) -> bool:
        return self.start is not None and self.end is not None and self.start <= ts <= self.end


def _window(run: MemberRun, evidence: RunEvidence) -> tuple[float | None, float | None]:
    """Start and end of the member's own part of the run (see the module docstring): why the
    end is the earliest of exit, kill, stop request and run end — after a SIGTERM the runner
    is tearing down, after a SIGKILL the member is gone, and the run's end bounds the rest."""
    if not run.events:
        return None, None
    started = [_ts(ev) for ev in run.events if ev.get("event") == "started"]
    start = started[0] if started else _ts(run.events[0])
    ends = [t for t in (run.killed_by_scenario_at, run.stop_requested_at, evidence.ended_at)
            if t is not None]
    exits = [_ts(ev) for ev in run.events if ev.get("event") == "exited"]
    if exits:
        ends.append(exits[-1])
    elif member_end(run) in ("crashed", "died"):
        ends.append(max(_ts(ev) for ev in run.events))
    return start, max(start, min(ends))


def _pauses(run: MemberRun, end: float | None) -> list[Interval]:
    """Scenario pauses (SIGSTOP) as intervals: each `pause` control entry up to the next
    `resume` or `kill` (or the member's end). Entries name their kind in `action` (the
    runner's key) or `kind`."""
    out: list[Interval] = []
    since: float | None = None
    for entry in sorted(run.control, key=_ts):
        kind = entry.get("action", entry.get("kind"))
        if kind == "pause" and since is None:
            since = _ts(entry)
        elif kind in ("resume", "kill") and since is not None:
            out.append((since, _ts(entry)))
            since = None
    if since is not None and end is not None:
        out.append((since, max(since, end)))
    return _union(out)


def _member_frame(run: MemberRun, evidence: RunEvidence) -> _Member:
    suffix = f"-m{run.index}"
    mine = sorted((ev for ev in evidence.proxy_events
                   if str(ev.get("client_id") or "").endswith(suffix)), key=_ts)
    start, end = _window(run, evidence)
    client_id = str(mine[0]["client_id"]) if mine else None
    with_close = [ev for ev in mine if ev.get("api") in COORDINATION_APIS
                  and not is_fetch_sample(ev) and start is not None and start <= _ts(ev)]
    requests = [ev for ev in with_close if end is not None and _ts(ev) <= end]
    fetches = [ev for ev in mine if is_fetch_sample(ev) and start is not None
               and end is not None and start <= _ts(ev) <= end]
    return _Member(run, client_id, requests, with_close, start, end, _pauses(run, end),
                   fetches)


# -- silence ----------------------------------------------------------------------------------


def _silence(m: _Member) -> tuple[float, float | None]:
    """Longest silence and when it began.

    Silence: time during which the member sent no coordination request (JoinGroup, SyncGroup,
    Heartbeat, OffsetCommit, OffsetFetch, LeaveGroup, ConsumerGroupHeartbeat, FindCoordinator)
    to the proxy, measured from its first request to its end (exit, the scenario's kill, the
    runner's stop request, or the run's end): each gap between consecutive requests, and the
    gap from the last one to its end. Time the scenario kept it paused is not silence (a
    stopped process cannot talk). A member that sent nothing has no silence to measure
    (`coordination_requests` says 0).
    """
    if m.end is None or not m.requests:
        return 0.0, None
    times = [_ts(ev) for ev in m.requests]
    best, since = 0.0, None
    for a, b in zip(times, [*times[1:], m.end], strict=True):
        gap = _measure(_subtract([(a, b)], m.pauses))
        if gap > best:
            best, since = gap, a
    return best, since


def _idle(m: _Member) -> float:
    """Longest silence when a request counts as activity from when it was sent until it was
    answered (`latency_ms`): why — a JoinGroup the broker holds while the group forms, or a
    response the fault delays, is the member waiting on the coordinator, not a member that
    stopped talking. Pauses are excluded as for the silence."""
    if m.end is None or not m.requests:
        return 0.0
    spans: list[Interval] = []
    for ev in m.requests:  # by time: merge overlapping in-flight spans as they come
        sent = _ts(ev)
        answered = min(m.end, sent + max(0.0, float(ev.get("latency_ms") or 0.0)) / 1000.0)
        if spans and sent <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], answered))
        else:
            spans.append((sent, max(sent, answered)))
    gaps = [(a[1], b[0]) for a, b in itertools.pairwise(spans)]
    gaps.append((spans[-1][1], m.end))
    return max(_measure(_subtract([gap], m.pauses)) for gap in gaps)


# -- ownership ----------------------------------------------------------------------------------


def _apply_assignment(owned: set[TopicPartition], ev: Event) -> set[TopicPartition]:
    """The member's partitions after one assigned/revoked/lost event. `partitions` is what the
    library's callback passed: the change under incremental protocols, the whole set under
    eager ones, so assigned adds and revoked/lost remove; the Java harness's `assignment` on
    an assigned event is the whole set after it (on revoked it is the set before: ignored)."""
    kind = ev.get("event")
    if kind == "assigned":
        whole = ev.get("assignment")
        if isinstance(whole, Mapping):
            return _partitions(whole)
        return owned | _partitions(ev.get("partitions"))
    return owned - _partitions(ev.get("partitions"))


def _owned_intervals(m: _Member) -> list[Interval]:
    """When the member owned at least one partition, by its own harness events, within its
    window (ownership ends at its end: kill, exit, stop request)."""
    if m.start is None or m.end is None:
        return []
    owned: set[TopicPartition] = set()
    since: float | None = None
    out: list[Interval] = []
    for ev in m.run.events:
        if ev.get("event") not in ("assigned", "revoked", "lost") or not m.within(_ts(ev)):
            continue
        owned = _apply_assignment(owned, ev)
        if owned and since is None:
            since = _ts(ev)
        elif not owned and since is not None:
            out.append((since, _ts(ev)))
            since = None
    if since is not None:
        out.append((since, m.end))
    return out


def _owned_by_partition(m: _Member) -> dict[TopicPartition, list[Interval]]:
    """When the member owned each partition, by the same harness events and window as
    `_owned_intervals` (which is the union of these)."""
    if m.start is None or m.end is None:
        return {}
    owned: set[TopicPartition] = set()
    since: dict[TopicPartition, float] = {}
    out: dict[TopicPartition, list[Interval]] = {}
    for ev in m.run.events:
        if ev.get("event") not in ("assigned", "revoked", "lost") or not m.within(_ts(ev)):
            continue
        after = _apply_assignment(owned, ev)
        ts = _ts(ev)
        for tp in after - owned:
            since[tp] = ts
        for tp in owned - after:
            out.setdefault(tp, []).append((since.pop(tp), ts))
        owned = after
    for tp, start in since.items():
        out.setdefault(tp, []).append((start, m.end))
    return out


Owned = Mapping[TopicPartition, list[Interval]]


def _group_ownership(owned: Sequence[Owned]) -> list[dict[TopicPartition, list[Interval]]]:
    """Each member's ownership as the group decided it: its own intervals, each cut where
    another member's ownership of the partition began after it. Why: a member the broker
    expelled (its heartbeats unanswered, its session expired) is never told; its harness
    still says it owns what the group has given to another member since. The newer owner is
    the one the group chose: the older claim ends there. Under correct protocols no two
    members' intervals overlap (eager and cooperative revoke before the new owner is assigned;
    KIP-848 waits for the revocation), so only an expelled or fenced member's claim is cut."""
    out: list[dict[TopicPartition, list[Interval]]] = []
    for i, mine in enumerate(owned):
        cut: dict[TopicPartition, list[Interval]] = {}
        for tp, intervals in mine.items():
            starts = sorted(a for j, other in enumerate(owned) if j != i
                            for a, _ in other.get(tp, ()))
            pieces = []
            for a, b in intervals:
                later = next((s for s in starts if a < s < b), None)
                pieces.append((a, b if later is None else later))
            cut[tp] = pieces
        out.append(cut)
    return out


def _owns(intervals: Sequence[Interval], t: float) -> bool:
    return any(a <= t <= b for a, b in intervals)


@dataclass
class _Zombie:
    """One member's zombie fetches, gathered sample by sample."""

    samples: int = 0
    first: float | None = None
    #: Per partition: times of its zombie samples, and who owned it at the first.
    times: dict[TopicPartition, list[float]] = field(default_factory=dict)
    owner: dict[TopicPartition, int] = field(default_factory=dict)

    def worst(self) -> tuple[TopicPartition | None, float]:
        """The partition fetched as a zombie over the longest span (first in order on a tie)."""
        best: TopicPartition | None = None
        span = 0.0
        for tp in sorted(self.times):
            times = self.times[tp]
            if best is None or times[-1] - times[0] > span:
                best, span = tp, times[-1] - times[0]
        return best, span


def _zombie_owner(tp: TopicPartition, t: float, others: Sequence[tuple[int, Owned]]
                  ) -> int | None:
    """The other member that owned `tp` at `t` since more than the grace; None if none."""
    for index, owned in others:
        if any(a + ZOMBIE_GRACE_S < t <= b for a, b in owned.get(tp, ())):
            return index
    return None


def _zombie_fetches(m: _Member, own: Owned, others: Sequence[tuple[int, Owned]]) -> _Zombie:
    """Its Fetch samples (in its window) whose partitions include one, P, that at the sample's
    time t (a) it did not own, (b) another member owned, (c) with t more than ZOMBIE_GRACE_S
    after both the start of that member's ownership and the end of its own last ownership of
    P (a fetch in flight when the answer came is not a zombie). Ownership is as the group
    decided it (`_group_ownership`): after its revoke, and also after the group gave P to
    another member without telling it. Why from samples: the proxy sees what a client really
    fetches; the harness only what the library said it owns."""
    zombie = _Zombie()
    for ev in m.fetches:
        t = _ts(ev)
        hit = False
        for tp in sorted(_partitions(ev.get("partitions"))):
            mine = own.get(tp, [])
            if _owns(mine, t) or any(b <= t <= b + ZOMBIE_GRACE_S for _, b in mine):
                continue
            owner = _zombie_owner(tp, t, others)
            if owner is None:
                continue
            hit = True
            zombie.times.setdefault(tp, []).append(t)
            zombie.owner.setdefault(tp, owner)
        if hit:
            zombie.samples += 1
            zombie.first = t if zombie.first is None else zombie.first
    return zombie


def _last_assignment_change(frames: Sequence[_Member]) -> float | None:
    """The last assigned/revoked/lost line of any member within its window."""
    times = [_ts(ev) for m in frames for ev in m.run.events
             if ev.get("event") in ("assigned", "revoked", "lost") and m.within(_ts(ev))]
    return max(times, default=None)


def _tp_text(tp: TopicPartition) -> str:
    return f"{tp[0]}-{tp[1]}"


def _unassigned_while_others_owned(m: _Member, own: list[Interval],
                                   others: list[list[Interval]]) -> float:
    """Time in its window when it owned nothing while some other member owned something: the
    group was consuming, this member was not part of it (stuck, or never brought back)."""
    if m.start is None or m.end is None:
        return 0.0
    idle = _subtract([(m.start, m.end)], own)
    return _measure(_intersect(idle, _union(i for o in others for i in o)))


def _reassignment(m: _Member, own: list[Interval]) -> tuple[float | None, bool]:
    """Longest episode from losing its partitions (owning none after owning some) to owning
    some again, and whether the last episode was still open at its end (then it counts up to
    the end: a lower bound). None when it never lost them (or never owned any)."""
    if not own or m.end is None:
        return None, False
    gaps = [nxt[0] - cur[1] for cur, nxt in itertools.pairwise(own)]
    open_at_end = own[-1][1] < m.end
    if open_at_end:
        gaps.append(m.end - own[-1][1])
    return (max(gaps) if gaps else None), open_at_end


# -- errors -------------------------------------------------------------------------------------

_UPPER_NAME = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b")
_CODE = re.compile(r"\[(?:Error )?(\d{1,3})\]")
_CODES = {14: "COORDINATOR_LOAD_IN_PROGRESS", 15: "COORDINATOR_NOT_AVAILABLE",
          16: "NOT_COORDINATOR", 22: "ILLEGAL_GENERATION", 25: "UNKNOWN_MEMBER_ID",
          27: "REBALANCE_IN_PROGRESS", 79: "MEMBER_ID_REQUIRED", 82: "FENCED_INSTANCE_ID",
          110: "FENCED_MEMBER_EPOCH"}
#: How libraries spell the coordination errors in prose or class names (lower case, spaces
#: removed for class names): sarama and Java print the broker's message, aiokafka and
#: kafka-python class names.
_PHRASES = (
    ("not aware of this member", "UNKNOWN_MEMBER_ID"),
    ("member is not known", "UNKNOWN_MEMBER_ID"),
    ("unknown member", "UNKNOWN_MEMBER_ID"),
    ("unknownmemberid", "UNKNOWN_MEMBER_ID"),
    ("generation id is not", "ILLEGAL_GENERATION"),
    ("illegalgeneration", "ILLEGAL_GENERATION"),
    ("rebalance in progress", "REBALANCE_IN_PROGRESS"),
    ("group is rebalancing", "REBALANCE_IN_PROGRESS"),
    ("rebalance for the group is in progress", "REBALANCE_IN_PROGRESS"),
    ("rebalanceinprogress", "REBALANCE_IN_PROGRESS"),
    ("coordinator is loading", "COORDINATOR_LOAD_IN_PROGRESS"),
    ("coordinator is still loading", "COORDINATOR_LOAD_IN_PROGRESS"),
    ("loadinprogress", "COORDINATOR_LOAD_IN_PROGRESS"),
    ("same group.instance.id", "FENCED_INSTANCE_ID"),
    ("fencedinstanceid", "FENCED_INSTANCE_ID"),
    ("fencedmemberepoch", "FENCED_MEMBER_EPOCH"),
    ("notcoordinator", "NOT_COORDINATOR"),
)


def error_kind(text: str | None, fallback: str) -> str:
    """A Kafka error name for an error as a library reported it, when one can be read from it
    (an UPPER_CASE name, a "[25]"/"[Error 25]" code, the broker's message or a client's class
    name); else `fallback` (classify's short name). Why: the same broker error reads six ways
    across eight libraries, and a verdict wants to know it was UNKNOWN_MEMBER_ID."""
    if not text:
        return fallback
    upper = _UPPER_NAME.search(text)
    if upper:
        return upper.group(0)
    code = _CODE.search(text)
    if code and int(code.group(1)) in _CODES:
        return _CODES[int(code.group(1))]
    low = text.lower()
    squashed = low.replace(" ", "").replace("_", "")
    for phrase, name in _PHRASES:
        if phrase in low or phrase in squashed:
            return name
    return fallback


def _app_errors(run: MemberRun) -> list[tuple[float, str]]:
    """Each error the application saw, with its time and kind. The events are exactly those
    classify.surfaced_errors counts, asked one event at a time so the two never disagree
    (errors during a close the runner asked for are teardown noise, not counted)."""
    out: list[tuple[float, str]] = []
    for ev in run.events:
        names = surfaced_errors(MemberRun(run.index, [ev], stop_requested_at=run.stop_requested_at))
        text = ev.get("error")
        out.extend((_ts(ev), error_kind(str(text) if text else None, name)) for name in names)
    return out


def _silent_returns(m: _Member) -> int:
    """sarama's `Consume` returning nil inside the member's window: the session ended without
    telling the application why (at teardown it is expected, so not counted)."""
    return sum(1 for ev in m.run.events
               if ev.get("event") == "consume_returned" and not ev.get("error")
               and m.within(_ts(ev)))


# -- membership and commits at the proxy ----------------------------------------------------------


def _injected_error(ev: Event) -> bool:
    return bool(_fault(ev).get("error")) or ev.get("outcome") == "error_injected"


def _membership_lost_at(m: _Member) -> float | None:
    """When the broker itself first answered one of its requests with UNKNOWN_MEMBER_ID,
    FENCED_INSTANCE_ID, FENCED_MEMBER_EPOCH or ILLEGAL_GENERATION; None if it never did.

    Not counted: an error the proxy injected (even a broker-consistent one: the broker said
    nothing), and an answer to a request sent without a member id (the client had already
    dropped its identity; the broker is not expelling anyone). Counted: the answers to its
    close after a stop request — a LeaveGroup answered UNKNOWN_MEMBER_ID at teardown shows
    the broker had expelled it during the run."""
    for ev in m.with_close:
        if ev.get("error") in MEMBERSHIP_ERRORS and not _injected_error(ev) \
                and ev.get("member_id"):
            return _ts(ev)
    return None


def _first_assignment_at(m: _Member) -> float | None:
    """When the coordinator first gave it an assignment: a SyncGroup it got an answer to
    without error, or a ConsumerGroupHeartbeat answer that carried an assignment."""
    for ev in m.requests:
        answered = ev.get("outcome") == "ok" and not ev.get("error")
        if answered and (ev.get("api") == "SyncGroup" or (
                ev.get("api") == "ConsumerGroupHeartbeat" and ev.get("assignment") is not None)):
            return _ts(ev)
    return None


def _rejoins(m: _Member) -> tuple[int, int]:
    """Join rounds it completed after its first assignment, and how many of them under a new
    member id (KIP-394 joins get one; static members and KIP-848 ones keep theirs).

    Classic: a JoinGroup answered without error with a generation (the MEMBER_ID_REQUIRED
    step of a round is not a round). KIP-848: a ConsumerGroupHeartbeat answered without error
    right after one answered UNKNOWN_MEMBER_ID or FENCED_MEMBER_EPOCH, or under a member id
    other than the previous one (the request's epoch 0 is not in the event log)."""
    first = _first_assignment_at(m)
    if first is None:
        return 0, 0
    rejoins = new_ids = 0
    member_id: str | None = None
    must_rejoin = False
    for ev in m.requests:
        ok = ev.get("outcome") == "ok" and not ev.get("error")
        mid = ev.get("member_id") or None
        api = ev.get("api")
        joined = ok and api == "JoinGroup" and ev.get("generation") is not None
        if api == "ConsumerGroupHeartbeat":
            joined = ok and (must_rejoin or (member_id is not None and mid != member_id))
            must_rejoin = ev.get("error") in REJOIN_ERRORS or (must_rejoin and not ok)
        if joined and _ts(ev) > first:
            rejoins += 1
            new_ids += int(member_id is not None and mid is not None and mid != member_id)
        if api in ("JoinGroup", "ConsumerGroupHeartbeat", "SyncGroup") and ok and mid:
            member_id = mid
    return rejoins, new_ids


def _commit_failed(ev: Event) -> bool:
    """The client was not answered with success: an error (top level or any partition), or no
    answer at all (dropped, connection closed)."""
    if ev.get("outcome") != "ok" or ev.get("error"):
        return True
    offsets = ev.get("offsets")
    if not isinstance(offsets, Mapping):
        return False
    return any(isinstance(entry, Mapping) and entry.get("error")
               for parts in offsets.values() if isinstance(parts, Mapping)
               for entry in parts.values())


def _invalid_identity(ev: Event) -> bool:
    """A group commit (group id set, a version that carries the member's identity: v1+) sent
    with generation -1 or no member id: the broker takes it as a commit from outside the
    group, the mark of a client that lost its membership and commits anyway."""
    version = _int(ev.get("version"))
    if not ev.get("group") or version is None or version < 1:
        return False
    return _int(ev.get("generation")) == -1 or not ev.get("member_id")


def _commit_counts(m: _Member) -> tuple[int, int, int]:
    """OK, failed and invalid-identity OffsetCommits of the member at the proxy: every one in
    its window (the answers its application's commits really got)."""
    commits = [ev for ev in m.requests if ev.get("api") == "OffsetCommit"]
    failed = sum(1 for ev in commits if _commit_failed(ev))
    return len(commits) - failed, failed, sum(1 for ev in commits if _invalid_identity(ev))


# -- committed offsets: at-least-once bound and regressions -------------------------------------


@dataclass(frozen=True)
class _Stored:
    """One partition offset an OffsetCommit stored at the broker."""

    ts: float
    client_id: str
    group: str
    tp: TopicPartition
    offset: int


def _stored(proxy_events: Sequence[Event]) -> list[_Stored]:
    """Every partition offset the broker stored, by time (see the module docstring for what
    counts as stored)."""
    out: list[_Stored] = []
    for ev in sorted(proxy_events, key=_ts):
        if ev.get("api") != "OffsetCommit" or not isinstance(ev.get("offsets"), Mapping):
            continue
        if ev.get("outcome") != "ok" and _fault(ev).get("action") != "drop_response":
            continue
        for topic, parts in ev["offsets"].items():
            for partition, entry in (parts.items() if isinstance(parts, Mapping) else ()):
                offset = _int(entry.get("offset")) if isinstance(entry, Mapping) else None
                p = _int(partition)
                if offset is None or p is None or entry.get("error"):
                    continue
                out.append(_Stored(_ts(ev), str(ev.get("client_id") or ""),
                                   str(ev.get("group") or ""), (str(topic), p), offset))
    return out


def _committed(stored: Sequence[_Stored], client_id: str | None, tp: TopicPartition,
               lost_at: float, cut: float) -> int:
    """The offset a next owner of `tp` starts from after this member lost it at `lost_at`:
    the last stored commit of it that was either anyone's before the loss (the member's own,
    or the previous owner's when it never committed) or the member's own up to `cut` (its next
    assignment, or its end: a commit made in the revoke callback lands just after the
    `revoked` line); 0 when there is none (the next owner reads from the beginning)."""
    before = [s.offset for s in stored if s.tp == tp
              and (s.ts <= lost_at or (s.client_id == client_id and s.ts <= cut))]
    return before[-1] if before else 0


@dataclass
class _Episodes:
    """One member's deliveries per partition, split into ownership episodes as its events
    come: an episode runs from a gain of the partition, through its loss, up to the next gain
    (deliveries after the loss line are the lost ownership's: kafka-go's `revoked` is written
    at the end of its commit loop, and its old reader still hands over fetched records)."""

    stored: Sequence[_Stored]
    client_id: str | None
    delivered: dict[TopicPartition, set[int]] = field(default_factory=dict)
    lost_at: dict[TopicPartition, float] = field(default_factory=dict)
    bound: int = 0

    def close(self, tp: TopicPartition, cut: float) -> None:
        """The episode of `tp` ends: count its deliveries at or past the committed offset."""
        committed = _committed(self.stored, self.client_id, tp, self.lost_at.pop(tp, cut), cut)
        self.bound += sum(1 for offset in self.delivered.pop(tp, ()) if offset >= committed)

    def on(self, ev: Event) -> None:
        kind, ts = ev.get("event"), _ts(ev)
        if kind == "record":
            topic, partition, offset = _record_key(ev)
            self.delivered.setdefault((topic, partition), set()).add(offset)
        elif kind in ("revoked", "lost"):
            for tp in _partitions(ev.get("partitions")):
                self.lost_at.setdefault(tp, ts)
        elif kind == "assigned":
            gained = _partitions(ev.get("partitions")) | _partitions(ev.get("assignment"))
            for tp in gained & self.lost_at.keys():
                self.close(tp, ts)


def _member_bound(m: _Member, stored: Sequence[_Stored]) -> int:
    """Records this member delivered at or past the committed offset of a partition when it
    lost that partition, summed over its losses: the next owner (itself included) is entitled
    to deliver them again (at-least-once).

    A loss: a revoked/lost event naming the partition in its window, or its end when that end
    hands its partitions to the group without a close (killed by the scenario, crashed, exited
    by itself; the runner's stop is not one: nobody reads after it). Deliveries are counted
    per ownership episode (see `_Episodes`), each offset once; the committed offset is the one
    the next owner starts from (`_committed`)."""
    if m.start is None or m.end is None:
        return 0
    episodes = _Episodes(stored, m.client_id)
    for ev in m.run.events:
        if m.within(_ts(ev)):
            episodes.on(ev)
    for tp in list(episodes.lost_at):
        episodes.close(tp, m.end)
    if member_end(m.run) in ENDED_BY_ITSELF | {"killed_by_scenario"}:
        for tp in list(episodes.delivered):
            episodes.close(tp, m.end)
    return episodes.bound


def _regressions(evidence: RunEvidence, stored: Sequence[_Stored]) -> list[dict[str, Any]]:
    """Each time a stored committed offset of a (group, topic, partition) went below the one
    stored before it: a client committed a position behind one already committed, and whoever
    reads the partition next re-reads the records in between."""
    last: dict[tuple[str, TopicPartition], int] = {}
    out: list[dict[str, Any]] = []
    for s in stored:
        key = (s.group, s.tp)
        before = last.get(key)
        if before is not None and s.offset < before:
            out.append({"topic": s.tp[0], "partition": s.tp[1], "from": before, "to": s.offset,
                        "at": _rel(evidence, s.ts), "client_id": s.client_id})
        last[key] = s.offset
    return out


# -- records ------------------------------------------------------------------------------------


def _record_key(ev: Event) -> RecordKey:
    """(topic, partition, offset) as classify keys records (-1 for a missing number)."""
    partition, offset = _int(ev.get("partition")), _int(ev.get("offset"))
    return (str(ev.get("topic")), -1 if partition is None else partition,
            -1 if offset is None else offset)


def _first_deliveries(evidence: RunEvidence) -> tuple[Counter[RecordKey], dict[RecordKey, float]]:
    """How often each record was delivered (any member), and when first."""
    seen: Counter[RecordKey] = Counter()
    first: dict[RecordKey, float] = {}
    for run in evidence.members:
        for ev in run.events:
            if ev.get("event") == "record":
                key = _record_key(ev)
                seen[key] += 1
                first[key] = min(first.get(key, _ts(ev)), _ts(ev))
    return seen, first


def _freeze(evidence: RunEvidence, frames: Sequence[_Member], first: Mapping[RecordKey, float],
            produced_at: Mapping[RecordKey, float]) -> tuple[float, float | None]:
    """Longest time during which records were outstanding and none was consumed for the first
    time, and when it began.

    Outstanding: an expected record produced (its time in `produced_at`; without one, from the
    first member's start, when the set-up's records are there) and not yet consumed by anyone.
    Progress: the first delivery of an expected record. The last stretch, for records never
    consumed, runs to the start of the teardown (the last stop request, else the run's end).
    Without production times a gap before records the scenario produced later counts as if
    they had been waiting (the evidence does not say when they were produced)."""
    starts = [m.start for m in frames if m.start is not None]
    if not starts or not evidence.expected:
        return 0.0, None
    origin = min(starts)
    stops = [r.stop_requested_at for r in evidence.members if r.stop_requested_at is not None]
    end = min(evidence.ended_at, max(stops)) if stops else evidence.ended_at
    pairs = sorted((first.get(key, max(end, origin)), produced_at.get(key, origin))
                   for key in evidence.expected)
    # Outstanding between two first deliveries: the records not consumed before the later one.
    earliest = list(itertools.accumulate(reversed([p for _, p in pairs]), min))[::-1]
    best, since, progress = 0.0, None, origin
    for (consumed, _), produced in zip(pairs, earliest, strict=True):
        frozen_from = max(progress, produced)
        if consumed - frozen_from > best:
            best, since = consumed - frozen_from, frozen_from
        progress = max(progress, consumed)
    return best, since


# -- injections ---------------------------------------------------------------------------------


def _broker_consistent(fault: Mapping[str, Any]) -> bool:
    stages = fault.get("stages")
    return bool(fault.get("broker_consistent")) or (
        isinstance(stages, list) and any(isinstance(s, Mapping) and s.get("broker_consistent")
                                         for s in stages))


def _injection_counts(proxy_events: Sequence[Event]) -> tuple[int, int, int]:
    """Faults, synthetic ones (an error no broker sends there), and injected membership
    errors the broker was not made to agree with (it still holds the member)."""
    faults = [_fault(ev) for ev in proxy_events if _fault(ev)]
    synthetic = sum(1 for f in faults if f.get("synthetic"))
    disagreeing = sum(1 for f in faults
                      if f.get("error") in MEMBERSHIP_ERRORS and not _broker_consistent(f))
    return len(faults), synthetic, disagreeing


# -- the whole --------------------------------------------------------------------------------


def _processing_model(run: MemberRun) -> tuple[float, bool] | None:
    """(processing delay in s, asynchronous?) from the member's `config` event; None when the
    harness said nothing or the member processes instantly."""
    config = next((ev for ev in run.events if ev.get("event") == "config"), None)
    if config is None:
        return None
    delay_ms = _int(config.get("processing_delay_ms")) or 0
    return (delay_ms / 1000.0, bool(config.get("async_processing"))) if delay_ms > 0 else None


def async_delay_s(topic: str, partition: int, offset: int, delay_s: float) -> float:
    """The sarama harness's processing time of one message under async_processing: between
    0.5 and 1.5 times the delay, a fixed function of topic, partition and offset (fnv-1a 32
    of "topic/partition/offset"; `asyncDelay` in tests/clients/go/sarama/main.go)."""
    h = 0x811C9DC5
    for byte in f"{topic}/{partition}/{offset}".encode():
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return delay_s / 2 + delay_s * (h % 1000) / 1000


def _finish_times(run: MemberRun, delay_s: float, is_async: bool) -> dict[RecordKey, float]:
    """When each record delivered to the member finished processing: sequential processing
    starts each record once the one before it finished; asynchronous processing starts each
    on delivery."""
    out: dict[RecordKey, float] = {}
    busy_until = 0.0
    for ev in run.events:
        if ev.get("event") != "record":
            continue
        key = _record_key(ev)
        if is_async:
            out[key] = _ts(ev) + async_delay_s(key[0], key[1], key[2], delay_s)
        else:
            busy_until = max(busy_until, _ts(ev)) + delay_s
            out[key] = busy_until
    return out


def _lost_in_processing(evidence: RunEvidence, frames: Sequence[_Member],
                        stored: Sequence[_Stored]) -> int:
    """Records delivered to a member the scenario killed, unfinished at the kill (by the
    harness's processing model, `_finish_times`), below an offset the member's own stored
    commits had reached before the kill, and delivered to nobody after it. The harness emits
    `record` on delivery, so `lost` (never delivered) cannot see these: the claim "a crash
    after ReadMessage loses committed-but-unprocessed records" is this count."""
    lost = 0
    for m in frames:
        killed = m.run.killed_by_scenario_at
        model = _processing_model(m.run)
        if killed is None or model is None:
            continue
        finishes = _finish_times(m.run, *model)
        reached: dict[TopicPartition, int] = {}
        for s in stored:
            if s.client_id == m.client_id and s.ts <= killed:
                reached[s.tp] = s.offset
        later = {_record_key(ev) for run in evidence.members for ev in run.events
                 if ev.get("event") == "record" and _ts(ev) > killed}
        lost += sum(1 for key, done in finishes.items()
                    if done > killed and key[2] < reached.get((key[0], key[1]), 0)
                    and key not in later)
    return lost


def _observe_member(evidence: RunEvidence, m: _Member, own: list[Interval],
                    others: list[list[Interval]], zombie: _Zombie | None = None
                    ) -> MemberObservations:
    zombie = zombie or _Zombie()
    worst, worst_span = zombie.worst()
    silence, silence_from = _silence(m)
    reassignment, open_at_end = _reassignment(m, own)
    errors = _app_errors(m.run)
    rejoins, new_ids = _rejoins(m)
    ok, failed, invalid = _commit_counts(m)
    end = member_end(m.run)
    lost_at = _membership_lost_at(m)
    return MemberObservations(
        index=m.run.index,
        client_id=m.client_id,
        killed_by_scenario=m.run.killed_by_scenario_at is not None,
        longest_silence_s=_r(silence),
        unassigned_while_others_owned_s=_r(_unassigned_while_others_owned(m, own, others)),
        time_to_reassignment_s=None if reassignment is None else _r(reassignment),
        app_errors=len(errors),
        error_kinds=sorted({kind for _, kind in errors}),
        first_error_at=_rel(evidence, min((t for t, _ in errors), default=None)),
        last_error_at=_rel(evidence, max((t for t, _ in errors), default=None)),
        consume_returned_silently=_silent_returns(m),
        rejoins=rejoins,
        rejoins_with_new_member_id=new_ids,
        membership_lost=lost_at is not None,
        commits_ok=ok,
        commits_failed=failed,
        commits_with_invalid_identity=invalid,
        stopped_after_terminal_error=bool(errors) and end in ENDED_BY_ITSELF,
        end=end,
        coordination_requests=len(m.requests),
        longest_silence_from=_rel(evidence, silence_from),
        longest_idle_s=_r(_idle(m)),
        unassigned_at_end=open_at_end,
        records_delivered=sum(1 for ev in m.run.events if ev.get("event") == "record"),
        membership_lost_at=_rel(evidence, lost_at),
        zombie_fetches=zombie.samples,
        zombie_fetch_s=_r(worst_span),
        zombie_first_s=_rel(evidence, zombie.first),
        zombie_partitions=[_tp_text(tp) for tp in sorted(zombie.times)],
        zombie_partition=None if worst is None else _tp_text(worst),
        zombie_owner=None if worst is None else zombie.owner[worst],
    )


def _of_this_run(evidence: RunEvidence) -> RunEvidence:
    """The evidence with only the proxy events inside the run's span: a run retried on the
    same proxy event file can carry an earlier attempt's events, which say nothing about this
    one."""
    inside = [ev for ev in evidence.proxy_events
              if evidence.started_at <= _ts(ev) <= evidence.ended_at]
    if len(inside) == len(evidence.proxy_events):
        return evidence
    return replace(evidence, proxy_events=inside)


def observe(evidence: RunEvidence,
            produced_at: Mapping[RecordKey, float] | None = None) -> Observations:
    """Every observation of one run (pure: the same evidence gives the same observations).

    `produced_at` (optional): when each expected record was produced (epoch seconds); the
    evidence does not carry it, and without it `longest_freeze_s` cannot tell a consumer that
    froze from one waiting for records the scenario had not produced yet (see `_freeze`)."""
    evidence = _of_this_run(evidence)
    frames = [_member_frame(run, evidence) for run in evidence.members]
    owned = [_owned_intervals(m) for m in frames]
    decided = list(zip((m.run.index for m in frames),
                       _group_ownership([_owned_by_partition(m) for m in frames]), strict=True))
    zombies = [_zombie_fetches(m, decided[i][1], decided[:i] + decided[i + 1:])
               for i, m in enumerate(frames)]
    members = [_observe_member(evidence, m, owned[i], owned[:i] + owned[i + 1:], zombies[i])
               for i, m in enumerate(frames)]
    seen, first = _first_deliveries(evidence)
    expected = evidence.expected
    duplicated = sum(n - 1 for key, n in seen.items() if n > 1 and key in expected)
    stored = _stored(evidence.proxy_events)
    bound = sum(_member_bound(m, stored) for m in frames)
    freeze, freeze_from = _freeze(evidence, frames, first, produced_at or {})
    injections, synthetic, disagreeing = _injection_counts(evidence.proxy_events)
    consumed = sum(1 for key in seen if key in expected)
    return Observations(
        members=members,
        records_expected=len(expected),
        records_consumed=consumed,
        lost=len(expected) - consumed,
        duplicated=duplicated,
        at_least_once_bound=bound,
        duplicates_beyond_bound=max(0, duplicated - bound),
        offset_regressions=_regressions(evidence, stored),
        longest_freeze_s=_r(freeze),
        injections=injections,
        synthetic_injections=synthetic,
        broker_disagreeing_injections=disagreeing,
        longest_freeze_from=_rel(evidence, freeze_from),
        lost_in_processing=_lost_in_processing(evidence, frames, stored),
        fetch_samples=sum(1 for ev in evidence.proxy_events if is_fetch_sample(ev)),
        last_assignment_change_at=_rel(evidence, _last_assignment_change(frames)),
    )
