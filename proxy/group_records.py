"""The records of the group model (`proxy.groups`): groups, members, rebalances, listeners.

Apart from the folding so that each module stays about one thing: what the model holds and
shows (here), how exchanges change it (`proxy.groups`), and when a member stops being one
(`proxy.group_sessions`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from kafka_chaos_proxy.proxy.event_fields import TopicPartitions, iso_time

# The broker default of session.timeout.ms (classic, since Kafka 3.0) and of
# group.consumer.session.timeout.ms (KIP-848): used for members never seen joining.
DEFAULT_SESSION_TIMEOUT_S = 45.0


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
    # Session bookkeeping (`proxy.group_sessions`): when the member last refreshed its session
    # (the answer to its Heartbeat, JoinGroup, SyncGroup or OffsetCommit), for how long a
    # session lasts, and whether it sent a LeaveGroup that was forwarded but never answered.
    alive_at: float = 0.0
    session_timeout_s: float = DEFAULT_SESSION_TIMEOUT_S
    rebalance_timeout_s: float | None = None
    leaving: bool = False

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
    # unknown | rebalancing | stable | empty: the API's words; `broker_state` names the
    # broker's (DescribeGroups) state for the same thing.
    state: str = "unknown"
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
    round_joined: bool = False  # a JoinGroup of the rebalance in progress has been answered

    @property
    def broker_state(self) -> str:
        """The state as the broker names it. A classic rebalance is PREPARING_REBALANCE until
        JoinGroup answers name the new generation's members, COMPLETING_REBALANCE until they
        have synced; a KIP-848 group is RECONCILING until every member reached the epoch."""
        if self.state != "rebalancing":
            return self.state.upper()
        if self.kind != "classic":
            return "RECONCILING"
        return "COMPLETING_REBALANCE" if self.round_joined else "PREPARING_REBALANCE"

    def summary(self) -> dict[str, Any]:
        return {
            "group_id": self.group_id,
            "kind": self.kind,
            "state": self.state,
            "broker_state": self.broker_state,
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
