"""Apply a scenario's steps to a running proxy: rules before the members start, timed steps,
and steps triggered by proxy coordination events or harness events.

The driver owns no threads and no clock: the caller feeds it events and the time, and it
decides which steps fire. That keeps it usable from the matrix runner (which also owns the
harness processes) and from `kafka-chaos-proxy scenario run` (which only has the admin API),
and keeps step firing reproducible from a recorded event stream.

Trigger counting starts when the scenario starts, not when the previous step fired: a trigger
names events ("the 2nd SyncGroup of generation 2"), and the proxy's event order is the single
source of truth for that.

What a step does, in order: remove rules, add rules (so a rule the step arms is in place before
anything else it makes happen), produce, start, stop, kill, pause and resume members, start
continuous production, then the topology actions (move the coordinator, stop a broker, restart
one). Each is tried on its own: one that fails is recorded on the step and the others still
happen. Topology actions are handed to the host, which does them in order without blocking
the driver (a failover takes seconds).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from kafka_chaos_proxy.lab.matrix.classify import is_fetch_sample
from kafka_chaos_proxy.lab.scenario import Scenario, Step, Trigger


class StepActions(Protocol):
    """What a step can make happen besides rule changes; the host decides how (and says why
    not, by raising, where it cannot)."""

    def produce(self, count: int) -> None: ...

    def start_members(self, count: int) -> None: ...

    def stop_members(self, indexes: list[int]) -> None: ...

    def kill_members(self, indexes: list[int]) -> None: ...

    def pause_members(self, indexes: list[int], ms: int) -> None: ...

    def resume_members(self, indexes: list[int]) -> None: ...

    def produce_rate(self, records_per_s: float, duration_s: float) -> None: ...

    def move_coordinator(self, step: int) -> None: ...

    def stop_broker(self, step: int, node: str | int, mode: str) -> None: ...

    def restart_broker(self, step: int, node: str | int) -> None: ...


class RuleSink(Protocol):
    def add_rule(self, rule: Mapping[str, Any]) -> dict[str, Any]: ...

    def remove_rule(self, rule_id: str, missing_ok: bool = False) -> None: ...

    def release_rule_holds(self, rule_id: str) -> dict[str, Any]: ...


@dataclass
class StepState:
    index: int
    step: Step
    seen: int = 0
    #: Trigger met; fires at this time (trigger time + the step's after_s).
    due_at: float | None = None
    due_reason: str = ""
    fired_at: float | None = None
    reason: str = ""
    error: str | None = None
    #: The step's rules were installed up front with an in-proxy trigger (`compiled_rules`).
    rules_in_proxy: bool = False


def proxy_event_matches(trigger: Trigger, event: Mapping[str, Any]) -> bool:
    """Does a proxy coordination event count toward an `api` trigger?

    The proxy names the generation of classic APIs and the member epoch of
    ConsumerGroupHeartbeat in the same `generation` field. Fetch samples never count: they are
    taken at most about once a second per connection, so "the 4th Fetch" means nothing there
    (and an in-proxy trigger never sees a Fetch either).
    """
    if trigger.api is None or str(event.get("api", "")) != trigger.api:
        return False
    if is_fetch_sample(event):  # a sample, not a request the trigger could count
        return False
    if trigger.generation_id is not None and event.get("generation") != trigger.generation_id:
        return False
    if trigger.member_epoch is not None and event.get("generation") != trigger.member_epoch:
        return False
    if trigger.error is not None and str(event.get("error") or "") != trigger.error.upper():
        return False
    return not (trigger.injected is not None and bool(event.get("fault")) != trigger.injected)


def compiled_rules(step: Step) -> list[dict[str, Any]] | None:
    """The step's rules, each armed inside the proxy by the step's own proxy trigger; None
    when the step cannot be compiled (no rules, a harness or timed trigger, `after_s`, or a
    rule that has a `when.after` of its own)."""
    trigger = step.on
    if (trigger is None or trigger.kind != "proxy" or step.after_s or not step.add
            or any((rule.get("when") or {}).get("after") for rule in step.add)):
        return None
    pattern: dict[str, Any] = {"api": trigger.api}
    for key in ("generation_id", "member_epoch", "error", "injected"):
        value = getattr(trigger, key)
        if value is not None:
            pattern[key] = value
    out = []
    for rule in step.add:
        when = dict(rule.get("when") or {})
        when["after"], when["count"] = pattern, trigger.occurrence
        out.append({**rule, "when": when})
    return out


def harness_event_matches(trigger: Trigger, member: int, event: Mapping[str, Any]) -> bool:
    """Does a harness event count toward a `harness_event` trigger?

    An `assigned` event counts only when it carries partitions: several libraries announce an
    empty assignment before the first real one, and "once the member is stable" means owning
    something.
    """
    if trigger.harness_event is None or event.get("event") != trigger.harness_event:
        return False
    if trigger.member is not None and member != trigger.member:
        return False
    if trigger.harness_event == "assigned":
        partitions = event.get("partitions") or {}
        return any(partitions.get(t) for t in partitions)
    return True


@dataclass
class ScenarioDriver:
    scenario: Scenario
    rules: RuleSink
    actions: StepActions
    log: Callable[[str], None] = field(default=lambda message: None)
    states: list[StepState] = field(init=False)
    started_at: float | None = None

    def __post_init__(self) -> None:
        self.states = [StepState(i, step) for i, step in enumerate(self.scenario.steps)]

    def install_initial(self, now: float) -> None:
        """Steps without `at`/`on`: applied before any member starts. Rules of steps on a
        proxy event (without after_s) are installed now too, armed by that event inside the
        proxy (`when.after`), so they act on the very next request: no polling slop."""
        for state in self.states:
            if state.step.before_start:
                self._fire(state, now, "before start")
        for state in self.states:
            compiled = compiled_rules(state.step)
            if compiled is None:
                continue
            state.rules_in_proxy = True
            for rule in compiled:
                try:
                    self.rules.add_rule(rule)
                except Exception as exc:
                    state.error = f"add {rule.get('id')}: {exc}"

    def begin(self, now: float) -> None:
        """The members have been started: timed steps count from here."""
        self.started_at = now
        self.tick(now)

    def tick(self, now: float) -> None:
        if self.started_at is None:
            return
        for state in self.states:
            step = state.step
            if state.fired_at is not None:
                continue
            if step.at is not None and now - self.started_at >= step.at:
                self._fire(state, now, f"at {step.at:g} s")
            elif state.due_at is not None and now >= state.due_at:
                self._fire(state, now, state.due_reason)

    def _triggered(self, state: StepState, now: float, reason: str) -> None:
        after = state.step.after_s
        state.due_at = now + after
        state.due_reason = f"{reason} + {after:g} s" if after else reason
        if not after:
            self._fire(state, now, reason)

    def on_proxy_event(self, event: Mapping[str, Any], now: float) -> None:
        for state in self._pending("proxy"):
            assert state.step.on is not None
            if proxy_event_matches(state.step.on, event):
                state.seen += 1
                if state.seen >= state.step.on.occurrence:
                    self._triggered(state, now, f"proxy event seq {event.get('seq')} "
                               f"({event.get('api')}, generation {event.get('generation')})")

    def on_harness_event(self, member: int, event: Mapping[str, Any], now: float) -> None:
        for state in self._pending("harness"):
            assert state.step.on is not None
            if harness_event_matches(state.step.on, member, event):
                state.seen += 1
                if state.seen >= state.step.on.count:
                    self._triggered(state, now, f"member {member} {event.get('event')} "
                               f"#{state.seen}")

    def _pending(self, kind: str) -> list[StepState]:
        return [s for s in self.states
                if s.due_at is None and s.step.on is not None and s.step.on.kind == kind]

    def pending(self) -> list[str]:
        return [s.step.description or f"step {s.index}" for s in self.states if s.fired_at is None]

    @property
    def last_fired_at(self) -> float | None:
        return max((s.fired_at for s in self.states if s.fired_at is not None), default=None)

    def _fire(self, state: StepState, now: float, reason: str) -> None:
        """Apply one step. A failing action is recorded on the step and does not stop the
        others: the evidence then shows exactly which part of the scenario did not happen."""
        state.fired_at, state.reason = now, reason
        step = state.step
        errors: list[str] = []
        for rule_id in step.remove:
            try:
                self.rules.remove_rule(rule_id, missing_ok=True)  # gone is what we wanted
            except Exception as exc:
                errors.append(f"remove {rule_id}: {exc}")
        for rule in () if state.rules_in_proxy else step.add:
            try:
                self.rules.add_rule(dict(rule))
            except Exception as exc:
                errors.append(f"add {rule.get('id')}: {exc}")
        for rule_id in step.release:
            try:
                self.rules.release_rule_holds(rule_id)
            except Exception as exc:
                errors.append(f"release {rule_id}: {exc}")
        for name, act in self._actions(state):
            try:
                act()
            except Exception as exc:
                errors.append(f"{name}: {exc}")
        state.error = "; ".join(errors) or None
        self.log(f"step {state.index} fired ({reason}): {step.description}"
                 + (f" [errors: {state.error}]" if state.error else ""))

    def _actions(self, state: StepState) -> list[tuple[str, Callable[[], None]]]:
        """The step's side effects, in the order they happen."""
        step, a = state.step, self.actions
        out: list[tuple[str, Callable[[], None]]] = []
        if step.produce:
            out.append(("produce", lambda: a.produce(step.produce)))
        if step.start_members:
            out.append(("start_members", lambda: a.start_members(step.start_members)))
        if step.stop_members:
            out.append(("stop_members", lambda: a.stop_members(list(step.stop_members))))
        if step.kill_members:
            out.append(("kill_members", lambda: a.kill_members(list(step.kill_members))))
        if step.pause_members is not None:
            pause = step.pause_members
            out.append(("pause_members",
                        lambda: a.pause_members(list(pause.members), pause.ms)))
        if step.resume_members:
            out.append(("resume_members", lambda: a.resume_members(list(step.resume_members))))
        if step.produce_rate is not None:
            rate = step.produce_rate
            out.append(("produce_rate",
                        lambda: a.produce_rate(rate.records_per_s, rate.duration_s)))
        if step.move_coordinator:
            out.append(("move_coordinator", lambda: a.move_coordinator(state.index)))
        if step.stop_broker is not None:
            stop = step.stop_broker
            out.append(("stop_broker", lambda: a.stop_broker(state.index, stop.node, stop.mode)))
        if step.restart_broker is not None:
            restart = step.restart_broker
            out.append(("restart_broker",
                        lambda: a.restart_broker(state.index, restart.node)))
        return out

    def report(self) -> list[dict[str, Any]]:
        return [
            {"index": s.index, "description": s.step.description, "fired_at": s.fired_at,
             "reason": s.reason, "error": s.error}
            for s in self.states
        ]
