"""Parked requests and responses (the `hold` action), and what ends each hold.

A hold ends in one of three ways: its `until` pattern saw `count` trigger events after it
began (fed by `proxy.trigger_feed`), someone released it (admin API / Python client), or its
timeout ran out (then the rule's `on_timeout` applies). Whoever ends it, it ends once: the
registry forgets it before calling back, so a release racing a timeout cannot act twice.

The registry never touches a socket: the executor that parked the exchange hands it two
callbacks, `resume` and `expire`. A closed connection's holds are forgotten without callbacks.

Bounded: at most `max_holds` holds at once (default `DEFAULT_MAX_HOLDS`); beyond that a new
hold times out at once (logged), as if its timeout had been zero.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from kafka_chaos_proxy.faults.actions.hold import HoldPlan

log = structlog.get_logger("kcp.holds")

DEFAULT_MAX_HOLDS = 10_000


class UnknownHoldError(KeyError):
    def __init__(self, hold_id: int, known: list[int]) -> None:
        super().__init__(hold_id)
        self.hold_id = hold_id
        self.known = known

    def __str__(self) -> str:
        known = ", ".join(map(str, self.known[:20])) or "none"
        return f"no hold with id {self.hold_id} (holds: {known}); it may have ended already"


@dataclass
class Hold:
    id: int
    rule_id: str | None
    connection: int
    api: str | None
    correlation_id: int
    side: str
    plan: HoldPlan
    resume: Callable[[], None] = field(repr=False)
    expire: Callable[[], None] = field(repr=False)
    started_at: float = field(default_factory=time.time)
    seen: int = 0
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "rule": self.rule_id, "connection": self.connection,
            "api": self.api, "correlation_id": self.correlation_id, "side": self.side,
            "held_ms": round((time.time() - self.started_at) * 1000, 1),
            "timeout_ms": round(self.plan.timeout_s * 1000), "on_timeout": self.plan.on_timeout,
            "until": (self.plan.until.pattern.model_dump(mode="json", exclude_none=True)
                      if self.plan.until is not None else None),
            "count": self.plan.count, "seen": self.seen,
        }


class HoldRegistry:
    def __init__(self, max_holds: int = DEFAULT_MAX_HOLDS) -> None:
        self.max_holds = max_holds
        self._holds: dict[int, Hold] = {}
        # The holds an event can end (those with `until`): what every event looks at, so a
        # registry full of plain timed holds costs a coordination request nothing.
        self._waiting: dict[int, Hold] = {}
        self._ids = itertools.count(1)
        self.ended: dict[str, int] = {"until": 0, "released": 0, "timeout": 0, "closed": 0}

    def __len__(self) -> int:
        return len(self._holds)

    @property
    def waiting(self) -> bool:
        """Whether a trigger event can end a hold (some hold has `until`)."""
        return bool(self._waiting)

    def park(self, *, rule_id: str | None, connection: int, api: str | None,
             correlation_id: int, plan: HoldPlan, resume: Callable[[], None],
             expire: Callable[[], None]) -> Hold | None:
        """Start a hold; None (and `expire` called) when `max_holds` are held already."""
        if len(self._holds) >= self.max_holds:
            log.warning("hold_limit", rule=rule_id, max_holds=self.max_holds,
                        detail="the hold timed out at once: too many holds at the same time")
            expire()
            return None
        hold = Hold(next(self._ids), rule_id, connection, api, correlation_id,
                    str(plan.side), plan, resume, expire)
        self._holds[hold.id] = hold
        if plan.until is not None:
            self._waiting[hold.id] = hold
        hold.timer = asyncio.get_running_loop().call_later(plan.timeout_s, self._timeout, hold.id)
        log.info("hold_started", hold=hold.id, rule=rule_id, conn=connection, api=api,
                 side=hold.side, timeout_ms=round(plan.timeout_s * 1000))
        return hold

    def notify(self, event: Mapping[str, Any]) -> None:
        """A trigger event: end the holds whose `until` it completes."""
        for hold in list(self._waiting.values()):
            until = hold.plan.until
            # Ended meanwhile (a continuation earlier in this loop), or its own request.
            if until is None or hold.id not in self._waiting or _own(hold, event):
                continue
            if until.matches(event):
                hold.seen += 1
                if hold.seen >= hold.plan.count:
                    self._end(hold, "until", hold.resume)

    def release(self, hold_id: int) -> Hold:
        hold = self._holds.get(hold_id)
        if hold is None:
            raise UnknownHoldError(hold_id, sorted(self._holds))
        self._end(hold, "released", hold.resume)
        return hold

    def release_rule(self, rule_id: str) -> list[Hold]:
        held = [h for h in self._holds.values() if h.rule_id == rule_id]
        for hold in held:
            self._end(hold, "released", hold.resume)
        return held

    def connection_closed(self, connection_id: int) -> None:
        """The connection went (the client gave up, or a fault closed it): its holds end
        without continuing, and the evidence says how they ended."""
        for hold in [h for h in self._holds.values() if h.connection == connection_id]:
            self._forget(hold)
            self.ended["closed"] += 1
            log.info("hold_ended", hold=hold.id, rule=hold.rule_id, conn=hold.connection,
                     how="closed", held_ms=round((time.time() - hold.started_at) * 1000, 1))

    def list(self) -> list[dict[str, Any]]:
        return [h.to_json() for h in self._holds.values()]

    def _timeout(self, hold_id: int) -> None:
        hold = self._holds.get(hold_id)
        if hold is not None:
            action = hold.resume if hold.plan.on_timeout == "release" else hold.expire
            self._end(hold, "timeout", action)

    def _forget(self, hold: Hold) -> None:
        self._holds.pop(hold.id, None)
        self._waiting.pop(hold.id, None)
        if hold.timer is not None:
            hold.timer.cancel()

    def _end(self, hold: Hold, how: str, then: Callable[[], None]) -> None:
        self._forget(hold)
        self.ended[how] += 1
        log.info("hold_ended", hold=hold.id, rule=hold.rule_id, conn=hold.connection,
                 how=how, held_ms=round((time.time() - hold.started_at) * 1000, 1),
                 **({"on_timeout": hold.plan.on_timeout} if how == "timeout" else {}))
        try:
            then()
        except Exception:
            log.exception("hold_continuation_failed", hold=hold.id, rule=hold.rule_id)


def _own(hold: Hold, event: Mapping[str, Any]) -> bool:
    """The request that was parked is not an event that ends its own hold."""
    return (event.get("connection") == hold.connection
            and event.get("correlation_id") == hold.correlation_id
            and event.get("phase") == "request")
