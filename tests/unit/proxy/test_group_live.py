"""The group's live state for rule conditions: pending JoinGroups and the rounds they open,
rebalances counted since the group was first stable, members without partitions."""

from __future__ import annotations

from typing import Any

from kafka_chaos_proxy.faults.patterns import compile_glob
from kafka_chaos_proxy.proxy.group_live import GroupLiveState
from kafka_chaos_proxy.proxy.groups import GroupStateModel


class Join:
    api_key = 11
    api_version = 7
    client_host = "h"
    broker_node = 1

    def __init__(self, connection: int, correlation: int, client_id: str = "app-m0") -> None:
        self.connection_id = connection
        self.correlation_id = correlation
        self.client_id = client_id

    def body(self) -> dict[str, Any]:
        return {"group_id": "g", "member_id": ""}


def ended(api: str, connection: int, correlation: int, **fields: Any) -> dict[str, Any]:
    return {"api": api, "group": "g", "connection": connection, "correlation_id": correlation,
            **fields}


def test_a_join_is_pending_until_its_exchange_ends_or_its_connection_closes() -> None:
    live = GroupLiveState(GroupStateModel())
    live.request_arrived(Join(1, 5))
    live.request_arrived(Join(2, 6))
    assert live.join_pending("g") and not live.join_pending("other")
    live.exchange_ended(ended("JoinGroup", 1, 5, generation=1))
    assert live.join_pending("g")
    live.connection_closed(2)
    assert not live.join_pending("g")


def test_the_round_a_join_opens_creates_the_next_generation() -> None:
    live = GroupLiveState(GroupStateModel())
    live.request_arrived(Join(1, 1))
    assert live.round_generation("g") == 1  # a group never seen is taken as new
    live.exchange_ended(ended("JoinGroup", 1, 1, error="MEMBER_ID_REQUIRED", generation=None))
    live.request_arrived(Join(1, 2))
    assert live.round_generation("g") == 1  # the same round (KIP-394's second JoinGroup)
    live.exchange_ended(ended("JoinGroup", 1, 2, generation=1))
    assert live.round_generation("g") is None  # closed: no round open


def test_rebalances_count_from_the_first_stable_generation_and_members_without_partitions(
) -> None:
    groups = GroupStateModel()
    live = GroupLiveState(groups)
    state = groups._group("g", 0.0)
    live.request_arrived(Join(1, 1))
    assert live.rebalance_number("g") == 0  # forming is not a rebalance
    live.exchange_ended(ended("JoinGroup", 1, 1, generation=1))
    state.state = "stable"
    live.exchange_ended(ended("SyncGroup", 1, 2))
    live.request_arrived(Join(2, 3, client_id="app-m1"))
    assert live.rebalance_number("g") == 1
    live.request_arrived(Join(1, 4))
    assert live.rebalance_number("g") == 1  # the same rebalance
    assert live.unassigned("g", compile_glob("*-m1"))  # nobody matches: unassigned
