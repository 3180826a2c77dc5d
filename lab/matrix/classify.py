"""Name what happened in one matrix run, from evidence only: harness events, process exits,
the records that were produced, and the proxy's coordination events (its Fetch samples,
`is_fetch_sample`, carry no fault and so never count as injections here).

Why the order of the checks matters: a member that crashed or ended on its own is the finding
even if the rest of the group picked up its partitions and consumed everything — an
application built on that client would have stopped. Only when every member stayed up does
the record count decide between recovered, duplicates, stalled and surfaced_error.

What counts as "surfaced": something the application could see — an `error` event, a commit
whose result was a failure, a consume loop that returned an error, an exit with an error. The
library's log lines (`log` events) are evidence but not surfaced: an application that does not
scrape logs never sees them.

Pure: no I/O, so unit tests feed it event streams they construct.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

Event = Mapping[str, Any]
RecordKey = tuple[str, int, int]  # topic, partition, offset

#: The proxy's Fetch sample events (`run --fetch-events`, which the matrix turns on): `api`
#: Fetch, `outcome` observed. A sample says which partitions a connection's fetch session
#: covers; it is no coordination exchange, comes at most about once a second per connection
#: while nothing changes, and carries no group, member, error or fault. Readers of
#: coordination traffic skip it (`is_fetch_sample`).
FETCH_SAMPLE_API = "Fetch"
FETCH_SAMPLE_OUTCOME = "observed"


def is_fetch_sample(ev: Event) -> bool:
    return ev.get("api") == FETCH_SAMPLE_API and ev.get("outcome") == FETCH_SAMPLE_OUTCOME


class Outcome(StrEnum):
    RECOVERED = "recovered"
    DUPLICATES = "duplicates"
    STALLED = "stalled"
    SILENT_EXIT = "silent_exit"
    SURFACED_ERROR = "surfaced_error"
    CRASHED = "crashed"
    #: The scenario's fault never fired (e.g. the client never sent that request): the run
    #: says nothing about the client's handling of it.
    NOT_INJECTED = "not_injected"
    #: The run could not be judged (harness never started, proxy died...). Not a client result.
    INFRA_ERROR = "infra_error"


@dataclass
class MemberRun:
    """One harness process: its events and how it ended."""

    index: int
    events: list[dict[str, Any]]
    returncode: int | None = None
    #: The runner sent SIGTERM (teardown or a stop step) at this time; None if it never did.
    stop_requested_at: float | None = None
    #: The runner had to SIGKILL it after the graceful-close bound.
    killed_hard: bool = False
    #: A scenario step SIGKILLed it at this time (`kill_members`): its end is the scenario's
    #: doing, never a client failure.
    killed_by_scenario_at: float | None = None
    #: Signals scenario steps sent it (kill, pause, resume), for the evidence.
    control: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class RunEvidence:
    members: list[MemberRun]
    expected: set[RecordKey]
    proxy_events: list[dict[str, Any]]
    started_at: float
    ended_at: float
    expect_injection: bool = True
    recovery_bound_s: float = 30.0
    #: Steps whose trigger never fired, by description (evidence for "why").
    pending_steps: list[str] = field(default_factory=list)


@dataclass
class Classification:
    outcome: Outcome
    detail: str
    expected: int
    consumed: int
    missing: int
    duplicates: int
    errors: list[str]
    injections: int
    first_injection_at: float | None
    time_to_recover_s: float | None
    member_exits: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome.value,
            "detail": self.detail,
            "expected": self.expected,
            "consumed": self.consumed,
            "missing": self.missing,
            "duplicates": self.duplicates,
            "errors": self.errors,
            "injections": self.injections,
            "first_injection_at": self.first_injection_at,
            "time_to_recover_s": self.time_to_recover_s,
            "member_exits": self.member_exits,
        }


_NAME_RE = re.compile(r"^[\w.$*-]+(?=:|$)")


def error_name(text: str | None) -> str:
    """A short, stable name for an error as a library reported it.

    Libraries that raise typed errors print `TypeName: message` and librdkafka prints
    `NAME: message`; those keep the name. Go errors are sentences, kept to 80 characters.
    """
    if not text:
        return "unknown"
    text = str(text).strip()
    match = _NAME_RE.match(text)
    if match and len(match.group(0)) <= 60:
        return match.group(0)
    return text[:80]


def _before_stop(member: MemberRun, ev: Event) -> bool:
    """Errors during a close the runner asked for are teardown noise, not a finding."""
    if member.stop_requested_at is None:
        return True
    return float(ev.get("ts", 0.0)) < member.stop_requested_at


def surfaced_errors(member: MemberRun) -> list[str]:
    """Errors the application saw, in order, as short names."""
    out: list[str] = []
    for ev in member.events:
        kind = ev.get("event")
        if not _before_stop(member, ev):
            continue
        if kind == "error":
            out.append(error_name(ev.get("error")))
        elif kind == "commit" and ev.get("ok") is False:
            out.append(error_name(ev.get("error")) if ev.get("error") else "commit failed")
        elif kind in ("consume_returned", "exited") and ev.get("error") \
                and ev.get("how") != "killed":
            out.append(error_name(ev.get("error")))
    return out


def _exit_event(member: MemberRun) -> Event | None:
    for ev in reversed(member.events):
        if ev.get("event") == "exited":
            return ev
    return None


def member_end(member: MemberRun) -> str:
    """How a member ended, from the runner's point of view.

    running (still up when the run ended, or stopped by the runner), crashed, returned_nil,
    returned_error, died (process gone without saying how), killed_by_scenario (a step
    SIGKILLed it before it ended by itself).
    """
    exited = _exit_event(member)
    how = exited.get("how") if exited else None
    if how == "crashed":
        return "crashed"
    killed_at = member.killed_by_scenario_at
    if killed_at is not None:
        if exited is not None and float(exited.get("ts", 0.0)) < killed_at \
                and how in ("returned_nil", "returned_error"):
            return str(how)
        return "killed_by_scenario"
    if member.stop_requested_at is not None:
        if exited is not None and float(exited.get("ts", 0.0)) < member.stop_requested_at \
                and how in ("returned_nil", "returned_error"):
            return str(how)
        return "running"
    if how in ("killed", "max_runtime") or (exited is None and member.returncode is None):
        return "running"
    if how in ("returned_nil", "returned_error"):
        return str(how)
    # No exit line but the process is gone: a signal or an abort the harness could not report.
    return "crashed" if member.returncode not in (0, None) else "died"


def _records(members: Iterable[MemberRun]) -> tuple[Counter[RecordKey], dict[RecordKey, float]]:
    seen: Counter[RecordKey] = Counter()
    first_seen: dict[RecordKey, float] = {}
    for member in members:
        for ev in member.events:
            if ev.get("event") != "record":
                continue
            key = (str(ev.get("topic")), int(ev.get("partition", -1)), int(ev.get("offset", -1)))
            seen[key] += 1
            ts = float(ev.get("ts", 0.0))
            if key not in first_seen or ts < first_seen[key]:
                first_seen[key] = ts
    return seen, first_seen


def injections(proxy_events: Sequence[Event]) -> list[Event]:
    return [ev for ev in proxy_events if ev.get("fault")]


@dataclass
class _Ends:
    """How each member's run ended, gathered once for the verdict."""

    errors: list[str] = field(default_factory=list)
    exits: list[dict[str, Any]] = field(default_factory=list)
    crashed: list[int] = field(default_factory=list)
    ended: list[tuple[int, str, list[str]]] = field(default_factory=list)


def _member_ends(members: Sequence[MemberRun]) -> _Ends:
    ends = _Ends()
    for member in members:
        member_errors = surfaced_errors(member)
        ends.errors.extend(member_errors)
        end = member_end(member)
        if end != "running":
            exited = _exit_event(member)
            ends.exits.append({"member": member.index, "end": end,
                               "returncode": member.returncode,
                               "error": exited.get("error") if exited else None,
                               **({"killed_by_scenario_at": member.killed_by_scenario_at}
                                  if end == "killed_by_scenario" else {})})
        if end == "crashed":
            ends.crashed.append(member.index)
        elif end in ("returned_nil", "returned_error", "died"):
            ends.ended.append((member.index, end, member_errors))
    return ends


def classify(evidence: RunEvidence) -> Classification:
    seen, first_seen = _records(evidence.members)
    expected = evidence.expected
    consumed = {k for k in seen if k in expected}
    missing = len(expected - consumed)
    duplicates = sum(n - 1 for k, n in seen.items() if n > 1 and k in expected)
    faults = injections(evidence.proxy_events)
    first_fault = min((float(ev.get("ts", 0.0)) for ev in faults), default=None)
    ends = _member_ends(evidence.members)
    distinct_errors = list(dict.fromkeys(ends.errors))

    ttr: float | None = None
    if missing == 0 and expected and first_fault is not None:
        last_needed = max(first_seen[k] for k in expected)
        ttr = round(max(0.0, last_needed - first_fault), 3)

    facts = _Facts(len(expected), missing, duplicates, len(faults), distinct_errors, ttr)
    outcome, detail = _outcome(evidence, ends, facts)
    return Classification(
        outcome=outcome, detail=detail, expected=len(expected), consumed=len(consumed),
        missing=missing, duplicates=duplicates, errors=distinct_errors,
        injections=len(faults), first_injection_at=first_fault, time_to_recover_s=ttr,
        member_exits=ends.exits,
    )


@dataclass(frozen=True)
class _Facts:
    expected: int
    missing: int
    duplicates: int
    injections: int
    errors: list[str]
    ttr: float | None


def _outcome(evidence: RunEvidence, ends: _Ends, f: _Facts) -> tuple[Outcome, str]:
    """The first verdict that applies, from the most to the least severe."""
    started = [m for m in evidence.members
               if any(ev.get("event") == "started" for ev in m.events)]
    if not started and not ends.crashed:
        return Outcome.INFRA_ERROR, "no harness reported started"
    if ends.crashed:
        return Outcome.CRASHED, f"member(s) {ends.crashed} crashed"
    if ends.ended:
        return _ended_outcome(ends, f)
    pending = (f"; steps never triggered: {evidence.pending_steps}"
               if evidence.pending_steps else "")
    if evidence.expect_injection and not f.injections:
        return Outcome.NOT_INJECTED, f"no rule injected a fault{pending}"
    if f.missing:
        if f.errors:
            return (Outcome.SURFACED_ERROR,
                    f"{f.missing} of {f.expected} records never consumed; the client "
                    f"reported {', '.join(f.errors[:5])}{pending}")
        return (Outcome.STALLED,
                f"{f.missing} of {f.expected} records never consumed, members alive, "
                f"no error surfaced{pending}")
    reported = f"; errors surfaced: {', '.join(f.errors[:5])}" if f.errors else ""
    slow = ""
    if f.ttr is not None and f.ttr > evidence.recovery_bound_s:
        slow = f" (over the {evidence.recovery_bound_s:g} s recovery bound)"
    recovery = f"; recovered {f.ttr:.1f} s after the first fault{slow}" if f.ttr is not None else ""
    if f.duplicates:
        return (Outcome.DUPLICATES,
                f"all {f.expected} records consumed, {f.duplicates} delivered more than "
                f"once{recovery}{reported}")
    return (Outcome.RECOVERED,
            f"all {f.expected} records consumed exactly once{recovery}{reported}")


def _ended_outcome(ends: _Ends, f: _Facts) -> tuple[Outcome, str]:
    silent = [i for i, _, errs in ends.ended if not errs]
    loud = [(i, errs) for i, _, errs in ends.ended if errs]
    if silent:
        return (Outcome.SILENT_EXIT,
                f"member(s) {silent} stopped consuming and exited without an error"
                f"; {f.missing} of {f.expected} records missing")
    names = sorted({e for _, errs in loud for e in errs})
    return (Outcome.SURFACED_ERROR,
            f"member(s) {[i for i, _ in loud]} exited after surfacing "
            f"{', '.join(names)}; {f.missing} of {f.expected} records missing")


def modal(outcomes: Sequence[str]) -> tuple[str, int]:
    """The most frequent outcome and how many runs gave it (ties: the first seen wins, so the
    verdict does not flip between report writes)."""
    if not outcomes:
        return "", 0
    counts = Counter(outcomes)
    best = max(counts.values())
    for outcome in outcomes:
        if counts[outcome] == best:
            return outcome, best
    return outcomes[0], counts[outcomes[0]]  # unreachable; keeps type checkers content
