"""Per-group state folded from the coordination traffic the proxy sees.

The broker keeps the real state; this model is what the *clients* were told, which is the view
that explains a client's behaviour under a fault: which generation it thinks it is in, who it
thinks leads, which partitions it was handed and how long the last rebalance took.

Classic groups (JoinGroup/SyncGroup): a rebalance starts with the first JoinGroup of a round (or
a REBALANCE_IN_PROGRESS answer) and ends when every member of the new generation has had its
SyncGroup answered. KIP-848 groups (ConsumerGroupHeartbeat): a rebalance starts when a member is
handed a higher epoch and ends when every known member has reached it.

Bounded by construction: at most `max_groups` groups and `max_members` members per group; the
one seen least recently goes first. Listeners (the metrics glue) hear about changes, completed
rebalances and evictions so that gauges never outlive the groups they describe.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from proxy import metrics
from proxy.event_fields import (
    CONSUMER_GROUP_HEARTBEAT,
    FIND_COORDINATOR,
    HEARTBEAT,
    JOIN_GROUP,
    LEAVE_GROUP,
    OFFSET_COMMIT,
    SHARE_GROUP_HEARTBEAT,
    SYNC_GROUP,
    TopicPartitions,
    event_fields,
    iso_time,
)
from proxy.exchange import Exchange

# Error names that mean "the member you speak of is gone from the group".
_MEMBER_GONE = frozenset({"UNKNOWN_MEMBER_ID", "FENCED_INSTANCE_ID", "FENCED_MEMBER_EPOCH"})
MAX_OFFSET_PARTITIONS = 10_000  # committed offsets kept per group


@dataclass
class MemberState:
    member_id: str
    instance_id: str | None = None
    client_id: str | None = None
    client_host: str | None = None
    connection: int | None = None
    first_seen: float = 0.0
    last_seen: float = 0.0
    generation: int | None = None
    subscription: list[str] | None = None
    assignment: TopicPartitions | None = None
    last_api: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "member_id": self.member_id,
            "instance_id": self.instance_id,
            "client_id": self.client_id,
            "client_host": self.client_host,
            "connection": self.connection,
            "first_seen": iso_time(self.first_seen),
            "last_seen": iso_time(self.last_seen),
            "generation": self.generation,
            "subscription": self.subscription,
            "assignment": self.assignment,
            "last_api": self.last_api,
        }


@dataclass
class RebalanceRecord:
    generation: int | None
    started_at: float | None
    ended_at: float
    duration_s: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "started_at": iso_time(self.started_at) if self.started_at is not None else None,
            "ended_at": iso_time(self.ended_at),
            "duration_ms": None if self.duration_s is None else round(self.duration_s * 1000, 3),
        }


@dataclass
class GroupState:
    group_id: str
    kind: str = "classic"  # classic | consumer (KIP-848) | share
    state: str = "unknown"  # unknown | rebalancing | stable | empty
    protocol_type: str | None = None
    protocol: str | None = None
    generation: int | None = None
    leader: str | None = None
    coordinator: int | None = None
    members: dict[str, MemberState] = field(default_factory=dict)
    assignment: dict[str, TopicPartitions] = field(default_factory=dict)
    offsets: dict[str, dict[int, int]] = field(default_factory=dict)
    rebalance_started_at: float | None = None
    last_rebalance: RebalanceRecord | None = None
    rebalance_count: int = 0
    last_error: str | None = None
    first_seen: float = 0.0
    last_seen: float = 0.0
    # Members of the current classic generation: answered by JoinGroup, named by the leader's
    # JoinGroup answer, and answered by SyncGroup. The round ends when synced covers expected.
    joined: set[str] = field(default_factory=set)
    expected: set[str] | None = None
    synced: set[str] = field(default_factory=set)

    def summary(self) -> dict[str, Any]:
        return {
            "group_id": self.group_id,
            "kind": self.kind,
            "state": self.state,
            "protocol_type": self.protocol_type,
            "protocol": self.protocol,
            "generation": self.generation,
            "leader": self.leader,
            "coordinator": self.coordinator,
            "member_count": len(self.members),
            "rebalance_count": self.rebalance_count,
            "rebalance_started_at": (
                iso_time(self.rebalance_started_at)
                if self.state == "rebalancing" and self.rebalance_started_at is not None
                else None
            ),
            "last_rebalance": self.last_rebalance.to_dict() if self.last_rebalance else None,
            "last_error": self.last_error,
            "last_seen": iso_time(self.last_seen),
        }

    def detail(self) -> dict[str, Any]:
        out = self.summary()
        out["members"] = [m.to_dict() for m in self.members.values()]
        out["assignment"] = self.assignment
        out["offsets"] = {
            topic: {str(p): o for p, o in sorted(parts.items())}
            for topic, parts in self.offsets.items()
        }
        return out


class GroupListener(Protocol):
    def group_changed(self, group: GroupState) -> None: ...

    def rebalance_completed(self, group: GroupState, duration_s: float | None) -> None: ...

    def group_removed(self, group_id: str) -> None: ...


class GroupStateModel:
    """The ExchangeObserver that folds coordination exchanges into `GroupState`s."""

    def __init__(self, max_groups: int = 1_000, max_members: int = 1_000) -> None:
        self.max_groups = max(1, max_groups)
        self.max_members = max(1, max_members)
        self._groups: dict[str, GroupState] = {}
        self.listeners: list[GroupListener] = []

    def get(self, group_id: str) -> GroupState | None:
        return self._groups.get(group_id)

    def list(self) -> list[GroupState]:
        return sorted(self._groups.values(), key=lambda g: g.group_id)

    def __len__(self) -> int:
        return len(self._groups)

    def observe(self, exchange: Exchange) -> None:
        self.apply(event_fields(exchange), exchange.started_at + exchange.latency_s)

    # -- folding ---------------------------------------------------------------------------

    def apply(self, ev: dict[str, Any], ended_at: float) -> None:
        """Fold one event (as built by `event_fields`). `ended_at` is when the client got its
        answer, which is when a SyncGroup answer completes a rebalance."""
        group_id = ev.get("group")
        api_key = ev.get("api_key")
        if not group_id or api_key not in _FOLDERS:
            return
        group = self._group(group_id, ev["ts"])
        group.last_seen = max(group.last_seen, ended_at)
        if ev.get("error"):
            group.last_error = ev["error"]
        _FOLDERS[api_key](self, group, ev, ended_at)
        for listener in self.listeners:
            listener.group_changed(group)

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
        return member

    def _touch(self, group: GroupState, ev: dict[str, Any]) -> MemberState | None:
        member_id = ev.get("member_id")
        if not member_id:
            return None
        if ev.get("error") in _MEMBER_GONE:
            self._drop_member(group, member_id)
            return None
        return self._member(group, ev, member_id)

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

    @staticmethod
    def _begin_rebalance(group: GroupState, at: float) -> None:
        if group.state != "rebalancing":
            group.state = "rebalancing"
            group.rebalance_started_at = at

    def _complete_rebalance(self, group: GroupState, at: float) -> None:
        started = group.rebalance_started_at
        duration = None if started is None else max(0.0, at - started)
        group.state = "stable"
        group.rebalance_count += 1
        group.last_rebalance = RebalanceRecord(group.generation, started, at, duration)
        group.rebalance_started_at = None
        for listener in self.listeners:
            listener.rebalance_completed(group, duration)

    # -- classic protocol --------------------------------------------------------------------

    def _join_group(self, group: GroupState, ev: dict[str, Any], ended_at: float) -> None:
        group.kind = "classic"
        was_stable = group.state == "stable"
        self._begin_rebalance(group, ev["ts"])
        member = self._touch(group, ev)
        if ev.get("protocol_type"):
            group.protocol_type = ev["protocol_type"]
        if member is not None and ev.get("subscription") is not None:
            member.subscription = ev["subscription"]
        generation = ev.get("generation")
        if ev.get("error") or generation is None:
            return
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
            self._leader_view(group, listed, generation, ev["ts"])

    def _leader_view(self, group: GroupState, listed: Sequence[dict[str, Any]], generation: int,
                     ts: float) -> None:
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
        if ev.get("outcome") != "ok":
            return
        leaving = [m["member_id"] for m in ev.get("members") or [] if m.get("member_id")]
        if not leaving and ev.get("member_id"):
            leaving = [ev["member_id"]]
        for member_id in leaving:
            self._drop_member(group, member_id)
        if group.members and group.state == "stable":
            self._begin_rebalance(group, ev["ts"])
        elif not group.members:
            group.state = "empty"
            group.rebalance_started_at = None

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
