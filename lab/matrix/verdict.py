"""Judge one run against its scenario's expectations: pass / fail / undecided per expectation,
each with the numbers behind it, and one verdict for the run.

The run's verdict, from the most to the least overriding:
- `infra_error`: the classifier says the run itself failed (passed through, not a client result);
- `fails_without_fault` / `not_exercised`: the scenario expects an injection and none happened.
  If an expectation failed anyway the client failed without its fault (the matrix then runs the
  fault-free control, `lab.matrix.control`); otherwise the run says nothing about the client;
- `fail`: an expectation failed; `undecided`: none failed, one could not be decided;
- `pass`: every expectation passed.

Realism: `robustness_only` is set when every injection of the run was synthetic (an error no real
broker returns on that API and version) or left client and broker disagreeing (an injected
UNKNOWN_MEMBER_ID while the broker still holds the member). A failure resting only on such faults
is a robustness finding, not a race, and the report says so.

Deciding while the run goes on (`Progress`): the cell asks, once the scenario's steps are done,
every member has had its own timeout after the last injection and no record came for `settle_s`,
whether anything is still `pending`. A status that can no longer change is decided at once: a
bound exceeded, an error the application saw, a duplicate beyond the bound, the recovery bound
passed with records outstanding. What could still change stays pending: records outstanding
(until nothing came for `stall_bound_s`), a member silent right now, time without partitions
(until its bound has passed since the last injection or step), a terminal error or a rejoin not
seen yet (until the members' longest timeout has passed since the last change), no zombie fetch
seen yet (until the members' longest timeout has passed since the last assignment change,
injection or step). With no `Progress` the run is over and every status is final.

Pure: no I/O; tests build `Observations` by hand.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from kafka_chaos_proxy.lab.matrix.classify import Classification, Outcome
from kafka_chaos_proxy.lab.matrix.observations import MemberObservations, Observations
from kafka_chaos_proxy.lab.scenario import Expectation, Scenario

Status = Literal["pass", "fail", "undecided"]
PASS: Status = "pass"
FAIL: Status = "fail"
UNDECIDED: Status = "undecided"
#: Every verdict a run can get (the report lists them in this order).
RUN_VERDICTS = ("pass", "fail", "undecided", "fails_without_fault", "not_exercised",
                "infra_error")

#: How libraries that print sentences (sarama's and librdkafka's texts, Kafka's own error
#: messages) name an error, for matching `terminal_error.kinds`; names and class names
#: (FencedInstanceIdError, FENCED_INSTANCE_ID, [82] Fenced Instance ID) match without this.
ERROR_PHRASES: dict[str, tuple[str, ...]] = {
    "FENCED_INSTANCE_ID": ("rejected this static consumer", "static consumer fenced"),
    "UNKNOWN_MEMBER_ID": ("coordinator is not aware of this member",),
    "ILLEGAL_GENERATION": ("not the current generation",),
    "REBALANCE_IN_PROGRESS": ("group is rebalancing",),
    "NOT_COORDINATOR": ("not the correct coordinator",),
    "COORDINATOR_LOAD_IN_PROGRESS": ("coordinator is loading", "still loading"),
    "FENCED_MEMBER_EPOCH": ("member epoch is fenced",),
}


@dataclass(frozen=True)
class Progress:
    """The run is still going on. Seconds, on the observations' clock (from the run's start)."""

    elapsed_s: float
    #: Since the last newly consumed record or fired step.
    idle_s: float
    first_injection_s: float | None = None
    #: The last injection or fired step: bounds on what follows a fault count from here.
    last_change_s: float = 0.0
    #: The longest silence still going on among live members (0 when every live member was
    #: heard from within two heartbeat intervals): it may yet exceed a bound.
    open_silence_s: float = 0.0


@dataclass(frozen=True)
class ExpectationResult:
    name: str
    status: Status
    reason: str
    #: Still going on: waiting may decide it (only while the run goes on).
    pending: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "reason": self.reason}


@dataclass(frozen=True)
class Verdict:
    verdict: str
    expectations: list[ExpectationResult]
    robustness_only: bool

    def pending(self) -> list[ExpectationResult]:
        return [e for e in self.expectations if e.pending]

    def failing(self) -> list[ExpectationResult]:
        return [e for e in self.expectations if e.status == FAIL]

    def to_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict,
                "expectations": [e.to_json() for e in self.expectations],
                "robustness_only": self.robustness_only}


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def kind_matches(wanted: str, observed: str) -> bool:
    """Is the error a library reported (`observed`, as the harness named it) the Kafka error
    `wanted`? By name in any spelling, or by the phrases of `ERROR_PHRASES`."""
    seen = _norm(observed)
    return _norm(wanted) in seen or any(_norm(p) in seen for p in ERROR_PHRASES.get(wanted, ()))


@dataclass(frozen=True)
class _Run:
    scenario: Scenario
    obs: Observations
    classification: Classification
    progress: Progress | None

    @property
    def live(self) -> list[MemberObservations]:
        """Members the scenario did not kill: their silence is theirs."""
        return [m for m in self.obs.members if not m.killed_by_scenario]

    @property
    def no_fault(self) -> bool:
        return self.obs.injections == 0

    def member(self, index: int) -> MemberObservations | None:
        return next((m for m in self.obs.members if m.index == index), None)


Result = tuple[Status, str, bool]  # status, reason, pending


def _records(run: _Run, prefix: str = "") -> Result:
    """Every record consumed (no_loss, and recovery when no fault fired)."""
    obs, p = run.obs, run.progress
    if obs.lost <= 0:
        if not obs.records_expected:
            return PASS, f"{prefix}no records to consume", False
        return PASS, f"{prefix}all {obs.records_expected} records consumed", False
    outstanding = f"{obs.lost} of {obs.records_expected} records"
    if p is None:
        return FAIL, f"{prefix}{outstanding} never consumed", False
    stall = run.scenario.outcome.stall_bound_s
    if p.idle_s >= stall:
        return FAIL, (f"{prefix}{outstanding} outstanding, nothing new consumed for "
                      f"{p.idle_s:.1f} s"), False
    return UNDECIDED, f"{prefix}{outstanding} outstanding so far", True


def _no_loss(run: _Run, e: Expectation) -> Result:
    return _records(run)


def _recovers_within(run: _Run, e: Expectation) -> Result:
    bound = float(e.bound_s or 0.0)
    obs, p = run.obs, run.progress
    if run.no_fault:
        return _records(run, "no fault fired; ")
    ttr = run.classification.time_to_recover_s
    if obs.lost <= 0:
        if ttr is None:
            return PASS, f"all {obs.records_expected} records consumed", False
        if ttr <= bound:
            return (PASS, f"every record consumed {ttr:.1f} s after the first injection "
                          f"(bound {bound:g} s)", False)
        return FAIL, f"every record consumed {ttr:.1f} s after the first injection > {bound:g} s", \
            False
    if p is not None and p.first_injection_s is not None:
        since = p.elapsed_s - p.first_injection_s
        if since > bound:
            return FAIL, (f"{obs.lost} of {obs.records_expected} records still outstanding "
                          f"{since:.1f} s after the first injection > {bound:g} s"), False
    return _records(run)


def _worst(members: Sequence[MemberObservations],
           value: Callable[[MemberObservations], float]) -> MemberObservations | None:
    return max(members, key=lambda m: (value(m), -m.index), default=None)


def _max_silence(run: _Run, e: Expectation) -> Result:
    bound = float(e.bound_s or 0.0)
    worst = _worst(run.live, lambda m: m.longest_silence_s)
    if worst is None:
        return PASS, "no member to be silent", False
    over = [m.index for m in run.live if m.longest_silence_s > bound and m is not worst]
    if worst.longest_silence_s > bound:
        also = f" (members {over} too)" if over else ""
        return (FAIL, f"member {worst.index} silent {worst.longest_silence_s:.1f} s > "
                      f"{bound:g} s{also}", False)
    p = run.progress
    if p is not None and p.open_silence_s > 0:
        return UNDECIDED, f"a member has been silent {p.open_silence_s:.1f} s so far", True
    return (PASS, f"longest silence {worst.longest_silence_s:.1f} s (member {worst.index}) "
                  f"<= {bound:g} s", False)


def _max_unassigned(run: _Run, e: Expectation) -> Result:
    bound = float(e.bound_s or 0.0)
    worst = _worst(run.live, lambda m: m.unassigned_while_others_owned_s)
    if worst is None:
        return PASS, "no member", False
    spent = worst.unassigned_while_others_owned_s
    if spent > bound:
        return (FAIL, f"member {worst.index} without partitions for {spent:.1f} s while "
                      f"others had them > {bound:g} s", False)
    p = run.progress
    if p is not None and p.elapsed_s < p.last_change_s + bound:
        return (UNDECIDED, f"longest {spent:.1f} s so far (member {worst.index}); decided "
                           f"{bound:g} s after the last fault or step", True)
    return (PASS, f"longest without partitions while others had them {spent:.1f} s "
                  f"(member {worst.index}) <= {bound:g} s", False)


def _duplicates(run: _Run, e: Expectation) -> Result:
    obs = run.obs
    if obs.duplicates_beyond_bound > 0:
        return (FAIL, f"{obs.duplicated} duplicates, {obs.duplicates_beyond_bound} beyond the "
                      f"at-least-once bound of {obs.at_least_once_bound}", False)
    if not obs.duplicated:
        return PASS, "no duplicates", False
    return (PASS, f"{obs.duplicated} duplicates, within the at-least-once bound of "
                  f"{obs.at_least_once_bound}", False)


def _regression_text(regression: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in list(regression.items())[:5])[:120]


def _no_offset_regression(run: _Run, e: Expectation) -> Result:
    regressions = run.obs.offset_regressions
    if regressions:
        return (FAIL, f"{len(regressions)} committed-offset regression(s), first: "
                      f"{_regression_text(regressions[0])}", False)
    return PASS, "no committed offset went backward", False


def _no_processing_loss(run: _Run, e: Expectation) -> Result:
    """No record committed but never processed by anyone (a member the scenario killed with
    records in processing whose offsets its commits had passed)."""
    lost = run.obs.lost_in_processing
    if lost:
        return (FAIL, f"{lost} record(s) committed but processed by no one (delivered to a "
                      "member killed before it finished them, never delivered again)", False)
    return PASS, "every record committed was processed by someone", False


def _zombie_text(m: MemberObservations) -> str:
    parts = len(m.zombie_partitions)
    return (f"member {m.index} fetched {m.zombie_partition} for {m.zombie_fetch_s:.1f} s after "
            f"it moved to member {m.zombie_owner} ({m.zombie_fetches} Fetch sample(s) on "
            f"{parts} partition(s), from {m.zombie_first_s or 0.0:.1f} s)")


def _no_zombie_fetch(run: _Run, e: Expectation) -> Result:
    """No member fetched a partition another member owned (`zombie_fetches`, from the proxy's
    Fetch samples). A zombie fetch cannot be undone: failed at once. None yet can still come
    while a member may be a zombie it does not know it is: pending until the members' longest
    timeout has passed since the last assignment change (or injection, or step). Without Fetch
    samples (a proxy run without --fetch-events) it cannot be told: undecided."""
    obs = run.obs
    zombies = sorted((m for m in obs.members if m.zombie_fetches > 0),
                     key=lambda m: (-m.zombie_fetch_s, -m.zombie_fetches, m.index))
    if zombies:
        return FAIL, "; ".join(_zombie_text(m) for m in zombies[:2]), False
    if not obs.fetch_samples:
        return UNDECIDED, "no Fetch samples in the evidence (proxy without --fetch-events)", False
    p = run.progress
    if p is not None:
        wait = run.scenario.member_timeout_s
        changed = max(p.last_change_s, obs.last_assignment_change_at or 0.0)
        if p.elapsed_s < changed + wait:
            return (UNDECIDED, f"no zombie fetch so far; decided {wait:g} s after the last "
                               "assignment change", True)
    return (PASS, f"no member fetched a partition another member owned ({obs.fetch_samples} "
                  "Fetch samples)", False)


def _per_member(run: _Run, value: Callable[[MemberObservations], int],
                what: Callable[[MemberObservations], str], none: str) -> Result:
    hits = [f"member {m.index}: {what(m)}" for m in run.obs.members if value(m) > 0]
    if hits:
        return FAIL, "; ".join(hits[:3]), False
    return PASS, none, False


def _no_invalid_commits(run: _Run, e: Expectation) -> Result:
    return _per_member(
        run, lambda m: m.commits_with_invalid_identity,
        lambda m: f"{m.commits_with_invalid_identity} commit(s) with generation -1 or an "
                  "empty member id",
        "no commit with generation -1 or an empty member id")


def _no_app_errors(run: _Run, e: Expectation) -> Result:
    return _per_member(
        run, lambda m: m.app_errors,
        lambda m: f"{m.app_errors} app error(s) ({', '.join(k[:60] for k in m.error_kinds[:3])})",
        "no error reached the application")


def _scope(run: _Run, e: Expectation) -> tuple[list[MemberObservations], list[int]]:
    """The members an option expectation is about, and those of them that never ran."""
    if not e.members:
        return run.live, []
    found = [run.member(i) for i in e.members]
    return [m for m in found if m is not None], [i for i, m in zip(e.members, found,
                                                                   strict=True) if m is None]


def _scoped(run: _Run, e: Expectation,
            check: Callable[[MemberObservations], tuple[bool, str, float | None]]) -> Result:
    """Members in scope each checked (ok, reason, when the member's own chance ends); with
    `members` every listed one must pass, else one member is enough. These expectations are
    about what the fault makes the client do: without the fault they are undecided, never
    failed (not having stopped on a fault that never came is no failure)."""
    if run.no_fault and run.scenario.outcome.expect_injection:
        return UNDECIDED, "no fault fired", False
    members, missing = _scope(run, e)
    if missing:
        return UNDECIDED, f"member(s) {missing} never ran", False
    if not members:
        return UNDECIDED, "no member ran", False
    checks = [(m, *check(m)) for m in members]
    passed = [c for c in checks if c[1]]
    if (passed and not e.members) or len(passed) == len(checks):
        return PASS, "; ".join(c[2] for c in passed[:3]), False
    failed = [c for c in checks if not c[1]]
    reason = "; ".join(c[2] for c in failed[:3])
    p = run.progress
    if p is not None:
        wait = run.scenario.member_timeout_s
        horizon = max((c[3] if c[3] is not None else p.last_change_s) + wait for c in failed)
        if p.elapsed_s < horizon:
            return UNDECIDED, f"{reason} so far", True
    return FAIL, reason, False


def _terminal_error(run: _Run, e: Expectation) -> Result:
    spec = e.terminal
    assert spec is not None
    wanted = "/".join(spec.kinds) or "an error"

    def check(m: MemberObservations) -> tuple[bool, str, float | None]:
        kinds = [k for k in m.error_kinds
                 if not spec.kinds or any(kind_matches(w, k) for w in spec.kinds)]
        rejoined = f", rejoined {m.rejoins}x" if m.rejoins else ""
        if not kinds:
            if m.app_errors:
                return (False, f"member {m.index} surfaced "
                               f"{', '.join(k[:60] for k in m.error_kinds[:3])}, not {wanted}"
                               f"{rejoined}", None)
            return False, f"member {m.index} surfaced no error{rejoined}", None
        if spec.member_stops and not m.stopped_after_terminal_error:
            return (False, f"member {m.index} surfaced {kinds[0][:60]} but did not stop"
                           f"{rejoined}", m.last_error_at)
        stopped = " and stopped" if spec.member_stops else ""
        return True, f"member {m.index} surfaced {kinds[0][:60]}{stopped}", None

    return _scoped(run, e, check)


def _rejoins(run: _Run, e: Expectation) -> Result:
    spec = e.rejoin
    assert spec is not None

    def check(m: MemberObservations) -> tuple[bool, str, float | None]:
        if not m.rejoins:
            return False, f"member {m.index} never rejoined", None
        if spec.new_member_id and not m.rejoins_with_new_member_id:
            return False, f"member {m.index} rejoined {m.rejoins}x, never with a new member id", \
                None
        new = " with a new member id" if spec.new_member_id else ""
        return True, f"member {m.index} rejoined{new} ({m.rejoins}x)", None

    return _scoped(run, e, check)


CHECKS: dict[str, Callable[[_Run, Expectation], Result]] = {
    "no_loss": _no_loss,
    "recovers_within_s": _recovers_within,
    "max_silence_s": _max_silence,
    "max_unassigned_s": _max_unassigned,
    "duplicates_within_bound": _duplicates,
    "no_offset_regression": _no_offset_regression,
    "no_invalid_commits": _no_invalid_commits,
    "no_processing_loss": _no_processing_loss,
    "no_zombie_fetch": _no_zombie_fetch,
    "no_app_errors": _no_app_errors,
    "terminal_error": _terminal_error,
    "rejoins": _rejoins,
}


def robustness_only(obs: Observations) -> bool:
    """Every injection unrealistic (synthetic, or leaving the broker disagreeing). From the
    counts alone an injection may be both, so "every" is read as one of the two counts
    covering all injections: never a false robustness label, at worst a missing one."""
    return obs.injections > 0 and max(obs.synthetic_injections,
                                      obs.broker_disagreeing_injections) >= obs.injections


def judge(scenario: Scenario, observations: Observations, classification: Classification,
          progress: Progress | None = None) -> Verdict:
    """The run's verdict; `progress` when the run is still going on (see the module doc)."""
    run = _Run(scenario, observations, classification, progress)
    results = []
    for expectation in scenario.expectations:
        status, reason, pending = CHECKS[expectation.name](run, expectation)
        results.append(ExpectationResult(expectation.name, status, reason,
                                         pending and progress is not None))
    statuses = {r.status for r in results}
    if classification.outcome == Outcome.INFRA_ERROR:
        verdict = "infra_error"
    elif scenario.outcome.expect_injection and run.no_fault:
        verdict = "fails_without_fault" if FAIL in statuses else "not_exercised"
    elif FAIL in statuses:
        verdict = "fail"
    elif UNDECIDED in statuses:
        verdict = "undecided"
    else:
        verdict = "pass"
    return Verdict(verdict, results, robustness_only(observations))
