"""The group's live state for rule conditions (`faults.triggers.GroupView`).

`proxy.groups.GroupStateModel` folds each exchange once it has ended: what clients were told.
A condition such as "while a JoinGroup of this group is pending" or "the JoinGroup that will
create generation 3" is about requests still in flight, which only the request side sees. This
module adds exactly that, and reads the rest (generation, members, assignments, stable or not)
from the group model, so each fact has one home.

Fed by `proxy.trigger_feed.TriggerFeed`: `request_arrived` before a coordination request is
decided, `exchange_ended` after the group model folded its exchange, `connection_closed`.

Bounded: at most `max_groups` groups (the least recently seen goes), at most
`MAX_PENDING_JOINS` pending JoinGroups per group (more are not tracked; a JoinGroup is
pending for at most the broker's rebalance timeout anyway).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kafka_chaos_proxy.faults.decision import RequestView
from kafka_chaos_proxy.faults.patterns import ClientIdPattern
from kafka_chaos_proxy.faults.triggers import request_group
from kafka_chaos_proxy.proxy.groups import GroupStateModel

MAX_PENDING_JOINS = 10_000
DEFAULT_MAX_GROUPS = 1_000
_JOIN_GROUP = 11


@dataclass
class _Live:
    pending: set[tuple[int, int]] = field(default_factory=set)  # (connection, correlation)
    round_open: bool = False
    round_generation: int | None = None
    been_stable: bool = False
    rebalancing: bool = False
    rebalances: int = 0  # started since the group was first stable


class GroupLiveState:
    """Implements `faults.triggers.GroupView` over the group model plus in-flight joins."""

    def __init__(self, groups: GroupStateModel, max_groups: int = DEFAULT_MAX_GROUPS) -> None:
        self.groups = groups
        self.max_groups = max(1, max_groups)
        self._live: dict[str, _Live] = {}

    def _get(self, group_id: str) -> _Live:
        live = self._live.pop(group_id, None)  # re-inserted: dict order = least recent first
        if live is None:
            live = _Live()
            if len(self._live) >= self.max_groups:
                del self._live[next(iter(self._live))]
        self._live[group_id] = live
        return live

    # -- feeding

    def request_arrived(self, request: RequestView) -> None:
        if request.api_key != _JOIN_GROUP:
            return
        group_id = request_group(request)
        if not group_id:
            return
        live = self._get(group_id)
        if len(live.pending) < MAX_PENDING_JOINS:
            live.pending.add((request.connection_id, request.correlation_id))
        if not live.round_open:
            live.round_open = True
            state = self.groups.get(group_id)
            # A group the proxy has never seen answered is taken as new (generation 0).
            generation = state.generation if state is not None else None
            live.round_generation = (generation or 0) + 1
        self._begin_rebalance(live)

    def exchange_ended(self, ev: dict[str, object]) -> None:
        """One ended coordination exchange, as `proxy.event_fields.event_fields` built it."""
        group_id = ev.get("group")
        if not isinstance(group_id, str) or not group_id:
            return
        live = self._live.get(group_id)
        if live is None and ev.get("api") != "JoinGroup":
            live = self._get(group_id) if self.groups.get(group_id) is not None else None
        if live is None:
            return
        if ev.get("api") == "JoinGroup":
            key = (ev.get("connection"), ev.get("correlation_id"))
            live.pending.discard(key)
            generation = ev.get("generation")
            if isinstance(generation, int) and generation >= 0 and not ev.get("error"):
                live.round_open = False
        self._sync_stability(group_id, live)

    def connection_closed(self, connection_id: int) -> None:
        for live in self._live.values():
            if live.pending:
                live.pending = {p for p in live.pending if p[0] != connection_id}

    def _sync_stability(self, group_id: str, live: _Live) -> None:
        state = self.groups.get(group_id)
        if state is None:
            return
        # Stable again only once no join of ours is open either: the model folds exchanges as
        # they end, so between two JoinGroups of one round it may still say "stable".
        if state.state == "stable" and not live.round_open and not live.pending:
            live.been_stable = True
            live.rebalancing = False
        elif state.state == "rebalancing":
            self._begin_rebalance(live)

    @staticmethod
    def _begin_rebalance(live: _Live) -> None:
        if live.been_stable and not live.rebalancing:
            live.rebalances += 1
        live.rebalancing = True

    # -- GroupView

    def join_pending(self, group_id: str) -> bool:
        live = self._live.get(group_id)
        return live is not None and bool(live.pending)

    def unassigned(self, group_id: str, client_id: ClientIdPattern) -> bool:
        state = self.groups.get(group_id)
        members = [] if state is None else [
            m for m in state.members.values() if client_id.fullmatch(m.client_id or "")]
        if not members:
            return True
        return any(not any(m.assignment.values()) if m.assignment else True for m in members)

    def rebalance_number(self, group_id: str) -> int:
        live = self._live.get(group_id)
        return 0 if live is None else live.rebalances

    def round_generation(self, group_id: str) -> int | None:
        live = self._live.get(group_id)
        return None if live is None or not live.round_open else live.round_generation
