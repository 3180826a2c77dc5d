"""When a member stops being one: the session rules of the group model (`proxy.groups`).

A broker removes a member when it leaves (LeaveGroup, or a KIP-848 heartbeat with epoch -1/-2)
or when its session expires: no Heartbeat, JoinGroup, SyncGroup or OffsetCommit (KIP-848: no
group heartbeat) for its session timeout. A closed connection removes nobody at a broker, so
it removes nobody here either, with one exception that only the proxy can see: a member whose
LeaveGroup was forwarded but never answered (the connection closed under it) is gone once that
connection closes, because the broker did get its LeaveGroup. So when every member's last
coordinator connection has closed, the group becomes EMPTY at once if they had all sent
LeaveGroup, and after their session timeouts otherwise.

Expiry is lazy: checked when the model is read and on each observed exchange, never on a
timer. Model time is the latest exchange's time advanced by the monotonic clock since then, so
a model fed recorded exchanges reads consistently, and tests inject the monotonic clock.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from kafka_chaos_proxy.proxy.event_fields import JOIN_GROUP
from kafka_chaos_proxy.proxy.group_records import GroupListener, GroupState, MemberState


class ModelClock:
    """The model's "now": the latest exchange time seen, advanced by real time since then."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._seen: float | None = None
        self._seen_mono = 0.0

    def saw(self, at: float) -> None:
        if self._seen is None or at > self.now():
            self._seen = at
            self._seen_mono = self._monotonic()

    def now(self) -> float:
        if self._seen is None:
            return time.time()
        return self._seen + max(0.0, self._monotonic() - self._seen_mono)


def deadline(member: MemberState, rebalancing: bool) -> float:
    """When the broker would expire `member`. A member waiting in a rebalance may be silent
    for the rebalance timeout (its JoinGroup is held that long), not only the session's."""
    budget = member.session_timeout_s
    if rebalancing and member.rebalance_timeout_s is not None:
        budget = max(budget, member.rebalance_timeout_s)
    return member.alive_at + budget


def expired(members: Iterable[MemberState], rebalancing: bool, now: float) -> list[str]:
    return [m.member_id for m in members if deadline(m, rebalancing) < now]


class ConnectionIndex:
    """Which (group, member) pairs last used each connection, so that a closed connection
    costs a lookup, not a walk over every group. Entries go stale when a member moves to
    another connection or is removed; they are checked when their connection closes."""

    def __init__(self) -> None:
        self._pairs: dict[int, set[tuple[str, str]]] = {}

    def used(self, connection: int | None, group_id: str, member_id: str) -> None:
        if connection is not None:
            self._pairs.setdefault(connection, set()).add((group_id, member_id))

    def closed(self, connection: int) -> set[tuple[str, str]]:
        return self._pairs.pop(connection, set())

    def __len__(self) -> int:
        return len(self._pairs)


class SessionRules:
    """Part of `proxy.groups.GroupStateModel`: members leaving, expiring and their sessions."""

    # Set by `GroupStateModel.__init__`.
    _groups: dict[str, GroupState]
    listeners: list[GroupListener]
    clock: ModelClock
    _connections: ConnectionIndex
    _next_expiry: float  # no member's session can end before this
    _request: Mapping[str, Any]  # the request body of the exchange being folded

    def connection_closed(self, connection_id: int) -> None:
        """Members whose forwarded LeaveGroup went unanswered on this connection are gone: the
        broker has their LeaveGroup. Anyone else stays until their session expires."""
        for group_id, member_id in self._connections.closed(connection_id):
            group = self._groups.get(group_id)
            member = group.members.get(member_id) if group is not None else None
            if group is None or member is None or member.connection != connection_id:
                continue
            if member.leaving:
                self._members_left(group, [member_id], self.clock.now())
                self._changed(group)

    def expire(self, now: float | None = None) -> None:
        """Drop the members whose session ended by `now` (model time by default)."""
        now = self.clock.now() if now is None else now
        if now <= self._next_expiry:
            return
        self._next_expiry = float("inf")
        for group in list(self._groups.values()):
            rebalancing = group.state == "rebalancing"
            gone = expired(group.members.values(), rebalancing, now)
            if gone:
                self._members_left(group, gone, now)
                self._changed(group)
            for member in group.members.values():
                self._next_expiry = min(self._next_expiry, deadline(member, rebalancing))

    def _changed(self, group: GroupState) -> None:
        for listener in self.listeners:
            listener.group_changed(group)

    @staticmethod
    def _begin_rebalance(group: GroupState, at: float) -> None:
        if group.state != "rebalancing":
            group.state = "rebalancing"
            group.rebalance_started_at = at
            group.round_joined = False

    def _refresh_session(self, group: GroupState, member: MemberState, ev: dict[str, Any]) -> None:
        """The broker refreshes a member's session when it answers one of its requests."""
        answered = ev["ts"] + (ev.get("latency_ms") or 0.0) / 1000
        member.alive_at = max(member.alive_at, answered)
        member.leaving = False
        timeouts = (self._request.get("session_timeout_ms"),
                    self._request.get("rebalance_timeout_ms"))
        if ev.get("api_key") == JOIN_GROUP:
            with contextlib.suppress(TypeError, ValueError):
                if timeouts[0] is not None and int(timeouts[0]) > 0:
                    member.session_timeout_s = int(timeouts[0]) / 1000
                if timeouts[1] is not None and int(timeouts[1]) > 0:
                    member.rebalance_timeout_s = int(timeouts[1]) / 1000
        self._connections.used(member.connection, group.group_id, member.member_id)
        self._next_expiry = min(self._next_expiry,
                                deadline(member, group.state == "rebalancing"))

    def _members_left(self, group: GroupState, member_ids: Sequence[str], at: float) -> None:
        """Members gone by leaving or expiring: the broker rebalances the rest, or the group
        is EMPTY when none is left."""
        for member_id in member_ids:
            self._drop_member(group, member_id)
        if group.members and group.state == "stable":
            self._begin_rebalance(group, at)
        elif not group.members:
            group.state = "empty"
            group.rebalance_started_at = None

    @staticmethod
    def _drop_member(group: GroupState, member_id: str) -> None:
        group.members.pop(member_id, None)
        group.assignment.pop(member_id, None)
        group.joined.discard(member_id)
        group.synced.discard(member_id)
        if group.expected is not None:
            group.expected.discard(member_id)
        if group.leader == member_id:
            group.leader = None
        if not group.members and group.state != "rebalancing":
            group.state = "empty"

    def _mark_leaving(self, group: GroupState, ev: dict[str, Any],
                      member_ids: Sequence[str]) -> None:
        """A leave the broker got (it was forwarded) but whose answer never came back: the
        member is gone once its connection closes (`connection_closed`)."""
        if ev.get("upstream_latency_ms") is None:  # never reached the broker
            return
        for member_id in member_ids:
            member = group.members.get(member_id)
            if member is not None:
                member.leaving = True
                member.connection = ev.get("connection", member.connection)
                self._connections.used(member.connection, group.group_id, member_id)
