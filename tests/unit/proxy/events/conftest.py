"""Exchanges as the data plane builds them, with bodies that went through the real codec.

Each body is encoded with `codec.encode_body` and decoded back with `codec.decode_body`, so the
event log is tested against exactly the dict shapes (field names, UUIDs, bytes) the proxy will
hand it, at the versions real clients negotiate.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.codec import consumer_protocol
from kafka_chaos_proxy.faults.decision import PASS, Decision
from kafka_chaos_proxy.proxy.exchange import Exchange


def wire(api_key: int, version: int, direction: str, value: dict[str, Any]) -> dict[str, Any]:
    return codec.decode_body(
        api_key, version, direction, codec.encode_body(api_key, version, direction, value)
    )


def subscription(*topics: str) -> bytes:
    return consumer_protocol.encode_subscription(
        {"topics": list(topics), "user_data": None, "owned_partitions": []}, 1
    )


def assignment(parts: dict[str, list[int]]) -> bytes:
    return consumer_protocol.encode_assignment(
        {
            "assigned_partitions": [{"topic": t, "partitions": p} for t, p in parts.items()],
            "user_data": None,
        },
        1,
    )


class Clock:
    """Exchange timestamps that advance by a fixed step: no wall clock in assertions."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def tick(self, seconds: float = 0.1) -> float:
        self.now += seconds
        return self.now


def exchange(
    api_key: int,
    version: int,
    request: dict[str, Any],
    response: dict[str, Any] | None,
    *,
    at: float = 1_700_000_000.0,
    latency_s: float = 0.004,
    connection: int = 1,
    client_id: str = "consumer-1",
    outcome: str = "ok",
    decision: Decision = PASS,
    broker: int = 1,
) -> Exchange:
    return Exchange(
        connection_id=connection,
        client_host="127.0.0.1",
        broker_node=broker,
        client_id=client_id,
        api_key=api_key,
        api_version=version,
        correlation_id=7,
        request_body=wire(api_key, version, "request", request),
        response_body=None if response is None else wire(api_key, version, "response", response),
        started_at=at,
        latency_s=latency_s,
        upstream_latency_s=None if response is None else latency_s / 2,
        outcome=outcome,
        decision=decision,
    )


def join(
    group: str,
    member: str,
    generation: int,
    leader: str,
    *,
    topics: tuple[str, ...] = ("orders",),
    members: list[str] | None = None,
    request_member: str = "",
    error: int = 0,
    **kw: Any,
) -> Exchange:
    request = {
        "group_id": group,
        "session_timeout_ms": 6000,
        "rebalance_timeout_ms": 6000,
        "member_id": request_member,
        "group_instance_id": None,
        "protocol_type": "consumer",
        "protocols": [
            {"name": "range", "metadata": subscription(*topics)},
            {"name": "roundrobin", "metadata": subscription(*topics)},
        ],
    }
    response = {
        "error_code": error,
        "generation_id": generation if not error else -1,
        "protocol_type": "consumer",
        "protocol_name": "range",
        "leader": leader if not error else "",
        "member_id": member,
        "members": [
            {"member_id": m, "group_instance_id": None, "metadata": subscription(*topics)}
            for m in (members or [])
        ],
    }
    return exchange(11, 7, request, response, **kw)


def sync(
    group: str,
    member: str,
    generation: int,
    mine: dict[str, list[int]],
    *,
    assignments: dict[str, dict[str, list[int]]] | None = None,
    error: int = 0,
    **kw: Any,
) -> Exchange:
    request = {
        "group_id": group,
        "generation_id": generation,
        "member_id": member,
        "group_instance_id": None,
        "protocol_type": "consumer",
        "protocol_name": "range",
        "assignments": [
            {"member_id": m, "assignment": assignment(a)} for m, a in (assignments or {}).items()
        ],
    }
    response = {
        "error_code": error,
        "protocol_type": "consumer",
        "protocol_name": "range",
        "assignment": b"" if error else assignment(mine),
    }
    return exchange(14, 5, request, response, **kw)


def heartbeat(group: str, member: str, generation: int, error: int = 0, **kw: Any) -> Exchange:
    request = {"group_id": group, "generation_id": generation, "member_id": member}
    return exchange(12, 4, request, {"error_code": error}, **kw)


def leave(group: str, member: str, **kw: Any) -> Exchange:
    request = {"group_id": group, "members": [{"member_id": member, "group_instance_id": None}]}
    response = {
        "error_code": 0,
        "members": [{"member_id": member, "group_instance_id": None, "error_code": 0}],
    }
    return exchange(13, 5, request, response, **kw)


def commit(
    group: str,
    member: str,
    generation: int,
    offsets: dict[str, dict[int, int]],
    errors: dict[str, dict[int, int]] | None = None,
    version: int = 8,
    **kw: Any,
) -> Exchange:
    errors = errors or {}
    request = {
        "group_id": group,
        "generation_id_or_member_epoch": generation,
        "member_id": member,
        "group_instance_id": None,
        "topics": [
            {
                "name": topic,
                "partitions": [
                    {"partition_index": p, "committed_offset": o, "committed_metadata": ""}
                    for p, o in parts.items()
                ],
            }
            for topic, parts in offsets.items()
        ],
    }
    response = {
        "topics": [
            {
                "name": topic,
                "partitions": [
                    {"partition_index": p, "error_code": errors.get(topic, {}).get(p, 0)}
                    for p in parts
                ],
            }
            for topic, parts in offsets.items()
        ]
    }
    return exchange(8, version, request, response, **kw)


@pytest.fixture
def build() -> SimpleNamespace:
    return SimpleNamespace(
        exchange=exchange,
        join=join,
        sync=sync,
        heartbeat=heartbeat,
        leave=leave,
        commit=commit,
        wire=wire,
        subscription=subscription,
        assignment=assignment,
        Clock=Clock,
    )
