"""A test's view of the proxy's coordination events: list them, wait for one.

Why a baseline: a test installs a fault, starts its consumer, and only then asks "did the
SyncGroup get the fault?". The event it wants may be long past by then, so waiting means "the
first matching event after a point", not "the next one": every `Events` has a `baseline` seq
(the newest event when the handle was made, or when `mark()` was called; the pytest plugin
marks at the start of each test) and `wait`/`list` read forward from it with the event log's
`since=`, so nothing that happened between the fault firing and the wait call is missed.

The admin API filters by group, member and API (`proxy.events.EventFilter`, the same filter
the server applies, checked again here); everything else (`injected`, `error`, `rule`,
`outcome`, `generation`, `client_id`, a `where` predicate) is checked on this side. Waiting
polls `GET /events?since=` (bounded pages, a short sleep when there is nothing new), so it is
bounded by its timeout whatever the proxy does; a timeout raises `EventTimeout` with the last
events that did happen.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypedDict, Unpack

from kafka_chaos_proxy.proxy.api.errors import EventTimeout
from kafka_chaos_proxy.proxy.client import AdminClient
from kafka_chaos_proxy.proxy.event_line import compact
from kafka_chaos_proxy.proxy.events import EventFilter

Event = dict[str, Any]

DEFAULT_TIMEOUT_S = 10.0
POLL_S = 0.1
#: Events asked for per call of the admin API (its maximum is 10,000).
PAGE = 1000
#: Events quoted by an `EventTimeout`.
SUMMARY_EVENTS = 10


class EventQuery(TypedDict, total=False):
    """What an event must be, as keyword arguments of `Events.wait` and `Events.list`."""

    api: str  # name (any case) or key, e.g. "SyncGroup"
    group: str
    member: str
    injected: bool  # a fault touched it (or did not)
    error: str  # the error the client got; "NONE" for none
    rule: str  # the id of the rule that touched it
    outcome: str  # ok, error_injected, dropped, closed, upstream_closed
    generation: int  # generation id, or KIP-848 member epoch
    client_id: str
    where: Callable[[Event], bool]


@dataclass(frozen=True)
class EventMatch:
    """An `EventQuery` as a checkable value."""

    api: str | None = None
    group: str | None = None
    member: str | None = None
    injected: bool | None = None
    error: str | None = None
    rule: str | None = None
    outcome: str | None = None
    generation: int | None = None
    client_id: str | None = None
    where: Callable[[Event], bool] | None = None

    @classmethod
    def of(cls, query: EventQuery) -> EventMatch:
        unknown = set(query) - set(EventQuery.__annotations__)
        if unknown:
            raise TypeError(f"unknown event filter(s) {', '.join(sorted(unknown))}; use "
                            f"{', '.join(EventQuery.__annotations__)}")
        return cls(**query)

    def server_filter(self) -> dict[str, str | None]:
        """The filters the admin API applies itself."""
        return {"group": self.group, "member": self.member, "api": self.api}

    def matches(self, event: Event) -> bool:
        if not EventFilter(self.group, self.member, self.api).matches(event):
            return False
        fault = event.get("fault") or {}
        if self.injected is not None and bool(fault) != self.injected:
            return False
        if self.error is not None and str(event.get("error") or "NONE") != self.error.upper():
            return False
        if self.rule is not None and self.rule != fault.get("rule") and self.rule not in (
                fault.get("rules") or ()):
            return False
        if self.outcome is not None and event.get("outcome") != self.outcome:
            return False
        if self.generation is not None and event.get("generation") != self.generation:
            return False
        if self.client_id is not None and event.get("client_id") != self.client_id:
            return False
        return self.where is None or bool(self.where(event))

    def describe(self) -> str:
        """E.g. "SyncGroup event of group orders with injected=True"."""
        words = [f"{self.api} event" if self.api else "event"]
        if self.group is not None:
            words.append(f"of group {self.group}")
        if self.member is not None:
            words.append(f"of member {self.member}")
        checks = [f"{name}={getattr(self, name)!r}" for name in
                  ("injected", "error", "rule", "outcome", "generation", "client_id")
                  if getattr(self, name) is not None]
        if self.where is not None:
            checks.append("where(...)")
        if checks:
            words.append("with " + ", ".join(checks))
        return " ".join(words)


class Events:
    """The coordination events of one proxy, read forward from `baseline`."""

    def __init__(self, admin: AdminClient, baseline: int | None = None) -> None:
        self._admin = admin
        self._baseline = admin.last_seq() if baseline is None else baseline

    @property
    def baseline(self) -> int:
        """Events with a larger seq are this handle's: `wait` and `list` start after it."""
        return self._baseline

    def mark(self) -> int:
        """Move the baseline to the newest event now (what happens next is what counts)."""
        self._baseline = self._admin.last_seq()
        return self._baseline

    def last_seq(self) -> int:
        """The seq of the newest event the proxy holds."""
        return self._admin.last_seq()

    def list(self, *, since: int | None = None, limit: int = PAGE,
             **query: Unpack[EventQuery]) -> builtins.list[Event]:
        """Matching events after `since` (default: the baseline), oldest first, at most
        `limit`."""
        match = EventMatch.of(query)
        cursor = self._baseline if since is None else since
        out: builtins.list[Event] = []
        while len(out) < limit:
            page = self._page(match, cursor)
            if not page:
                break
            cursor = int(page[-1]["seq"])
            out.extend(e for e in page if match.matches(e))
        return out[:limit]

    def since(self, seq: int, **query: Unpack[EventQuery]) -> builtins.list[Event]:
        """Matching events after `seq` (e.g. one an earlier event carried)."""
        return self.list(since=seq, **query)

    def wait(self, *, timeout: float = DEFAULT_TIMEOUT_S, since: int | None = None,
             poll_s: float = POLL_S, **query: Unpack[EventQuery]) -> Event:
        """The first matching event after `since` (default: the baseline), as soon as the
        proxy has it; `EventTimeout` (with what did happen) after `timeout` seconds."""
        match = EventMatch.of(query)
        start = self._baseline if since is None else since
        cursor = start
        deadline = time.monotonic() + timeout
        while True:
            page = self._page(match, cursor)
            for event in page:
                cursor = max(cursor, int(event["seq"]))
                if match.matches(event):
                    return event
            if len(page) >= PAGE:
                continue  # more is buffered already: read on before sleeping
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._timeout(match, start, timeout)
            time.sleep(min(poll_s, left))

    def _page(self, match: EventMatch, since: int) -> builtins.list[Event]:
        return self._admin.events(since=since, limit=PAGE, **match.server_filter())

    def _timeout(self, match: EventMatch, start: int, timeout: float) -> EventTimeout:
        whose = f"group {match.group}" if match.group is not None else "the proxy"
        recent = [e for e in self._admin.events(group=match.group, limit=SUMMARY_EVENTS)
                  if int(e.get("seq", 0)) > start]
        head = (f"no {match.describe()} within {timeout:g} s (events after seq {start}); ")
        if not recent:
            return EventTimeout(head + f"no events of {whose} after seq {start} at all", [])
        lines = "\n".join(f"  {compact(e)}" for e in recent)
        return EventTimeout(head + f"the last {len(recent)} events of {whose}:\n{lines}",
                            recent)
