"""Per-group state folded from the coordination traffic the proxy sees.

The broker keeps the real state; this model is what the *clients* were told, which is the view
that explains a client's behaviour under a fault: which generation it thinks it is in, who it
thinks leads, which partitions it was handed and how long the last rebalance took.

Classic groups (JoinGroup/SyncGroup): a rebalance starts with the first JoinGroup of a round (or
a REBALANCE_IN_PROGRESS answer) and ends when every member of the new generation has had its
SyncGroup answered. KIP-848 groups (ConsumerGroupHeartbeat): a rebalance starts when a member is
handed a higher epoch and ends when every known member has reached it.

Members leave as a broker removes them (`proxy.group_sessions`): on an answered LeaveGroup (or a
KIP-848 leave heartbeat), on session expiry, and never merely because a connection closed,
except a member whose forwarded LeaveGroup went unanswered, which is gone when that connection
closes. So a group whose members' coordinator connections have all closed is EMPTY at once if
they had all sent LeaveGroup, and after their session timeouts otherwise. KIP-394's
MEMBER_ID_REQUIRED answer is a step of joining and REBALANCE_IN_PROGRESS the broker's "rejoin":
neither is the group's `last_error` unless a fault injected it.

Bounded by construction: at most `max_groups` groups and `max_members` members per group; the
one seen least recently goes first. Listeners (the metrics glue) hear about changes, completed
rebalances and evictions so that gauges never outlive the groups they describe.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kafka_chaos_proxy.proxy import metrics
from kafka_chaos_proxy.proxy.event_fields import (
    CONSUMER_GROUP_HEARTBEAT,
    FIND_COORDINATOR,
    HEARTBEAT,
    JOIN_GROUP,
    LEAVE_GROUP,
    OFFSET_COMMIT,
    SHARE_GROUP_HEARTBEAT,
    SYNC_GROUP,
    event_fields,
)
from kafka_chaos_proxy.proxy.exchange import Exchange
from kafka_chaos_proxy.proxy.group_records import (
    GroupListener,
    GroupState,
    MemberState,
    RebalanceRecord,
)
from kafka_chaos_proxy.proxy.group_sessions import (
    ConnectionIndex,
    ModelClock,
    SessionRules,
    deadline,
)

__all__ = ["GroupListener", "GroupState", "GroupStateModel", "MemberState", "RebalanceRecord"]

# Error names that mean "the member you speak of is gone from the group".
_MEMBER_GONE = frozenset({"UNKNOWN_MEMBER_ID", "FENCED_INSTANCE_ID", "FENCED_MEMBER_EPOCH"})
MAX_OFFSET_PARTITIONS = 10_000  # committed offsets kept per group
# What a broker answers in every healthy rebalance: "rejoin" to a Heartbeat, OffsetCommit or
# SyncGroup of the old generation. Folded as the start of a round, not kept as an error.
_REBALANCE_SIGNALS = frozenset({"REBALANCE_IN_PROGRESS"})


def _group_error(ev: dict[str, Any]) -> bool:
    """Whether an event's error is one to show as the group's `last_error`: any a fault made
    the client see, and the broker's own except the steps of a healthy join and rebalance
    (KIP-394's MEMBER_ID_REQUIRED, REBALANCE_IN_PROGRESS)."""
    if not ev.get("error"):
        return False
    if ev.get("fault"):
        return True
    return not ev.get("step") and ev["error"] not in _REBALANCE_SIGNALS


class GroupStateModel(SessionRules):
    """The ExchangeObserver that folds coordination exchanges into `GroupState`s.

    Members leave as `proxy.group_sessions` says: on LeaveGroup, on session expiry (checked
    lazily, when the model is read and on each exchange) and, for a LeaveGroup forwarded but
    never answered, when the connection it went out on closes (`connection_closed`).
    `monotonic` is the clock that advances model time between exchanges (tests inject one).
    """

    def __init__(self, max_groups: int = 1_000, max_members: int = 1_000,
                 monotonic: Callable[[], float] | None = None) -> None:
        self.max_groups = max(1, max_groups)
        self.max_members = max(1, max_members)
        self._groups: dict[str, GroupState] = {}
        self.listeners: list[GroupListener] = []
        self.clock = ModelClock() if monotonic is None else ModelClock(monotonic)
        self._connections = ConnectionIndex()
        self._next_expiry = float("inf")  # no member's session can end before this
        self._request: Mapping[str, Any] = {}  # the request body of the exchange being folded

    def get(self, group_id: str) -> GroupState | None:
        self.expire()
        return self._groups.get(group_id)

    def list(self) -> list[GroupState]:
        self.expire()
        return sorted(self._groups.values(), key=lambda g: g.group_id)

    def __len__(self) -> int:
        return len(self._groups)

    def observe(self, exchange: Exchange) -> None:
        ev = event_fields(exchange)
        if ev.get("fault"):
            self._tell_fault(ev)
        self._request = exchange.request_body or {}
        try:
            self.apply(ev, exchange.started_at + exchange.latency_s)
        finally:
            self._request = {}

    # -- folding ---------------------------------------------------------------------------

    def apply(self, ev: dict[str, Any], ended_at: float) -> None:
        """Fold one event (as built by `event_fields`). `ended_at` is when the client got its
        answer, which is when a SyncGroup answer completes a rebalance."""
        self.clock.saw(ended_at)
        self.expire(ended_at)
        group_id = ev.get("group")
        api_key = ev.get("api_key")
        if not group_id or api_key not in _FOLDERS:
            return
        group = self._group(group_id, ev["ts"])
        group.last_seen = max(group.last_seen, ended_at)
        if _group_error(ev):
            group.last_error = ev["error"]
        _FOLDERS[api_key](self, group, ev, ended_at)
        self._changed(group)

    def _tell_fault(self, ev: dict[str, Any]) -> None:
        """Listeners with a `fault_injected` hear of faults on coordination traffic, with the
        group as the model holds it (None: no group named, or not seen yet)."""
        group = self._groups.get(ev.get("group") or "")
        for listener in self.listeners:
            hook = getattr(listener, "fault_injected", None)
            if hook is not None:
                hook(ev, group)

    def _group(self, group_id: str, now: float) -> GroupState:
        group = self._groups.get(group_id)
        if group is None:
            if len(self._groups) >= self.max_groups:
                oldest = min(self._groups.values(), key=lambda g: g.last_seen)
                self.remove(oldest.group_id)
                metrics.group_state_evictions_total.labels("group").inc()
            group = GroupState(group_id=group_id, first_seen=now, last_seen=now)
            self._groups[group_id] = group
        return group

    def remove(self, group_id: str) -> None:
        if self._groups.pop(group_id, None) is not None:
            for listener in self.listeners:
                listener.group_removed(group_id)

    def _member(self, group: GroupState, ev: dict[str, Any], member_id: str) -> MemberState:
        member = group.members.get(member_id)
        now = ev["ts"]
        if member is None:
            if len(group.members) >= self.max_members:
                oldest = min(group.members.values(), key=lambda m: m.last_seen)
                self._drop_member(group, oldest.member_id)
                metrics.group_state_evictions_total.labels("member").inc()
            member = MemberState(member_id=member_id, first_seen=now)
            group.members[member_id] = member
        member.last_seen = max(member.last_seen, now)
        member.client_id = ev.get("client_id") or member.client_id
        member.client_host = ev.get("client_host") or member.client_host
        member.connection = ev.get("connection", member.connection)
        member.instance_id = ev.get("instance_id") or member.instance_id
        member.last_api = ev.get("api")
        self._refresh_session(group, member, ev)
        return member

    def _touch(self, group: GroupState, ev: dict[str, Any]) -> MemberState | None:
        """The member a request speaks for, created if new. Only an answered request says
        anything about membership: one that never got a response (dropped, connection closed)
        must not bring back a member that has left meanwhile."""
        member_id = ev.get("member_id")
        if not member_id or ev.get("outcome") not in ("ok", "error_injected"):
            return None
        if ev.get("error") in _MEMBER_GONE:
            if member_id in group.members:  # the broker has removed it: as if it had left
                self._members_left(group, [member_id], ev["ts"])
            return None
        return self._member(group, ev, member_id)

    def _complete_rebalance(self, group: GroupState, at: float) -> None:
        started = group.rebalance_started_at
        duration = None if started is None else max(0.0, at - started)
        group.state = "stable"
        group.rebalance_count += 1
        group.last_rebalance = RebalanceRecord(group.generation, started, at, duration)
        group.rebalance_started_at = None
        for member in group.members.values():  # out of the rebalance, sessions are shorter
            self._next_expiry = min(self._next_expiry, deadline(member, False))
        for listener in self.listeners:
            listener.rebalance_completed(group, duration)

    # -- classic protocol --------------------------------------------------------------------

    def _join_group(self, group: GroupState, ev: dict[str, Any], ended_at: float) -> None:
        group.kind = "classic"
        if ev.get("protocol_type"):
            group.protocol_type = ev["protocol_type"]
        if ev.get("step") == "member_id_required" or ev.get("outcome") not in (
                "ok", "error_injected"):
            # KIP-394's first step (the broker holds a pending member, not a member yet, and
            # starts no round) or a JoinGroup never answered: no change to the group.
            return
        was_stable = group.state == "stable"
        self._begin_rebalance(group, ev["ts"])
        member = self._touch(group, ev)
        if member is not None and ev.get("subscription") is not None:
            member.subscription = ev["subscription"]
        generation = ev.get("generation")
        if ev.get("error") or generation is None:
            return
        group.round_joined = True
        if was_stable and generation == group.generation:
            # A follower rejoining with unchanged metadata is answered with the current
            # generation at once: no new round started.
            group.state = "stable"
            group.rebalance_started_at = None
        elif generation != group.generation:
            group.generation = generation
            group.joined = set()
            group.expected = None
            group.synced = set()
            group.assignment = {}
        group.protocol = ev.get("protocol") or group.protocol
        group.leader = ev.get("leader") or group.leader
        if member is not None:
            member.generation = generation
            group.joined.add(member.member_id)
        listed = ev.get("members")
        if listed:  # the leader's answer names the whole generation
            self._leader_view(group, listed, generation, ev["ts"], ended_at)

    def _leader_view(self, group: GroupState, listed: Sequence[dict[str, Any]], generation: int,
                     ts: float, answered: float) -> None:
        """The leader's JoinGroup answer lists every member of the generation: members not
        in it are gone, members in it are known (up to `max_members`)."""
        group.expected = {m["member_id"] for m in listed if m.get("member_id")}
        for gone in [mid for mid in group.members if mid not in group.expected]:
            self._drop_member(group, gone)
        for entry in listed:
            if not entry.get("member_id"):
                continue
            known = group.members.get(entry["member_id"])
            if known is None:
                known = MemberState(member_id=entry["member_id"], first_seen=ts, last_seen=ts)
                if len(group.members) < self.max_members:
                    group.members[known.member_id] = known
            known.instance_id = entry.get("instance_id") or known.instance_id
            known.generation = generation
            known.alive_at = max(known.alive_at, answered)  # the broker answered its join too
            if entry.get("subscription") is not None:
                known.subscription = entry["subscription"]

    def _sync_group(self, group: GroupState, ev: dict[str, Any], ended_at: float) -> None:
        member = self._touch(group, ev)
        generation = ev.get("generation")
        if ev.get("protocol"):
            group.protocol = ev["protocol"]
        assignments = ev.get("assignments")
        if assignments and generation == group.generation:
            group.assignment = dict(assignments)
            for member_id, parts in assignments.items():
                if member_id in group.members:
                    group.members[member_id].assignment = parts
        if member is None or ev.get("error") or ev.get("outcome") != "ok":
            return
        if generation is not None and generation != group.generation:
            # A generation we never saw joining (the proxy started mid-round): adopt it.
            group.generation = generation
            group.joined = {member.member_id}
            group.expected = None
            group.synced = set()
        member.generation = generation
        if ev.get("assignment") is not None:
            member.assignment = ev["assignment"]
            group.assignment[member.member_id] = ev["assignment"]
        group.synced.add(member.member_id)
        wanted = group.expected if group.expected is not None else group.joined
        if group.state == "rebalancing" and wanted <= group.synced:
            self._complete_rebalance(group, ended_at)
        elif group.state in ("unknown", "empty"):
            group.state = "stable"

    def _heartbeat(self, group: GroupState, ev: dict[str, Any], ended_at: float) -> None:
        member = self._touch(group, ev)
        if ev.get("error") == "REBALANCE_IN_PROGRESS":
            self._begin_rebalance(group, ev["ts"])
        elif not ev.get("error") and ev.get("outcome") == "ok":
            self._adopt_generation(group, member, ev.get("generation"))
            if group.state == "unknown":
                group.state = "stable"

    @staticmethod
    def _adopt_generation(
        group: GroupState, member: MemberState | None, generation: int | None
    ) -> None:
        """A proxy started after the group formed first learns its generation from a member's
        accepted heartbeat or commit."""
        if generation is None or generation < 0:
            return
        if group.generation is None:
            group.generation = generation
        if member is not None and generation == group.generation:
            member.generation = generation

    def _leave_group(self, group: GroupState, ev: dict[str, Any], ended_at: float) -> None:
        """v0-2 name one member (`member_id`), v3+ a batch (`members`)."""
        leaving = [m["member_id"] for m in ev.get("members") or [] if m.get("member_id")]
        if not leaving and ev.get("member_id"):
            leaving = [ev["member_id"]]
        if ev.get("outcome") == "ok":
            self._members_left(group, leaving, ev["ts"])
        else:
            self._mark_leaving(group, ev, leaving)

    def _offset_commit(self, group: GroupState, ev: dict[str, Any], ended_at: float) -> None:
        self._touch(group, ev)
        if ev.get("error") == "REBALANCE_IN_PROGRESS":
            self._begin_rebalance(group, ev["ts"])
        if ev.get("outcome") != "ok":
            return
        if not ev.get("error"):
            member = group.members.get(ev.get("member_id") or "")
            self._adopt_generation(group, member, ev.get("generation"))
        count = sum(len(parts) for parts in group.offsets.values())
        for topic, parts in (ev.get("offsets") or {}).items():
            for index, entry in parts.items():
                if entry.get("error") or entry.get("offset") is None:
                    continue
                known = group.offsets.setdefault(topic, {})
                if int(index) not in known:
                    if count >= MAX_OFFSET_PARTITIONS:
                        continue
                    count += 1
                known[int(index)] = entry["offset"]

    def _find_coordinator(self, group: GroupState, ev: dict[str, Any], ended_at: float) -> None:
        if ev.get("coordinator") is not None:
            group.coordinator = ev["coordinator"]

    # -- KIP-848 / share groups ----------------------------------------------------------------

    def _member_heartbeat(self, group: GroupState, ev: dict[str, Any], ended_at: float) -> None:
        group.kind = "share" if ev.get("api_key") == SHARE_GROUP_HEARTBEAT else "consumer"
        group.protocol_type = ev.get("protocol_type") or group.protocol_type
        group.protocol = ev.get("protocol") or group.protocol
        epoch = ev.get("generation")
        member_id = ev.get("member_id")
        if epoch is not None and epoch < 0:  # -1 leave, -2 static leave
            if member_id and not ev.get("error") and ev.get("outcome") == "ok":
                self._drop_member(group, member_id)
            elif member_id and ev.get("outcome") != "ok":
                self._mark_leaving(group, ev, [member_id])
            self._settle_epochs(group, ended_at)
            return
        member = self._touch(group, ev)
        if member is None or ev.get("error") or ev.get("outcome") != "ok":
            return
        if ev.get("subscription") is not None:
            member.subscription = ev["subscription"]
        if ev.get("assignment") is not None:
            member.assignment = ev["assignment"]
            group.assignment[member.member_id] = ev["assignment"]
        if epoch is not None:
            member.generation = epoch
            if group.generation is None or epoch > group.generation:
                group.generation = epoch
                self._begin_rebalance(group, ev["ts"])
        self._settle_epochs(group, ended_at)

    def _settle_epochs(self, group: GroupState, at: float) -> None:
        if group.state == "rebalancing" and all(
            m.generation == group.generation for m in group.members.values()
        ):
            if group.members:
                self._complete_rebalance(group, at)
            else:
                group.state = "empty"
        elif group.state == "unknown" and group.members:
            group.state = "stable"


_Folder = Callable[[GroupStateModel, GroupState, dict[str, Any], float], None]

_FOLDERS: dict[int, _Folder] = {
    JOIN_GROUP: GroupStateModel._join_group,
    SYNC_GROUP: GroupStateModel._sync_group,
    HEARTBEAT: GroupStateModel._heartbeat,
    LEAVE_GROUP: GroupStateModel._leave_group,
    OFFSET_COMMIT: GroupStateModel._offset_commit,
    FIND_COORDINATOR: GroupStateModel._find_coordinator,
    CONSUMER_GROUP_HEARTBEAT: GroupStateModel._member_heartbeat,
    SHARE_GROUP_HEARTBEAT: GroupStateModel._member_heartbeat,
}
