"""Event fields read out of codec-decoded coordination bodies."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

from kafka_chaos_proxy.faults.decision import ActionKind, CloseMode, CloseWhen, Decision, Side
from kafka_chaos_proxy.proxy.event_fields import EVENT_KEYS, event_fields


def test_join_group_leader_response_carries_members_and_subscriptions(
    build: SimpleNamespace,
) -> None:
    ev = event_fields(build.join("g1", "m-1", 4, "m-1", members=["m-1", "m-2"], topics=("a", "b")))
    assert set(ev) == set(EVENT_KEYS)
    assert ev["api"] == "JoinGroup" and ev["version"] == 7
    assert (ev["group"], ev["member_id"], ev["generation"], ev["leader"]) == ("g1", "m-1", 4, "m-1")
    assert ev["protocol_type"] == "consumer"
    assert ev["protocols"] == ["range", "roundrobin"]
    assert ev["protocol"] == "range"
    assert ev["subscription"] == ["a", "b"]
    assert [m["member_id"] for m in ev["members"]] == ["m-1", "m-2"]
    assert ev["members"][1]["subscription"] == ["a", "b"]
    assert ev["error"] is None and ev["fault"] is None and ev["outcome"] == "ok"
    assert ev["latency_ms"] == 4.0
    assert ev["time"].startswith("2023-11-14T22:13:20")


def test_join_group_error_has_no_generation(build: SimpleNamespace) -> None:
    ev = event_fields(build.join("g1", "m-9", 0, "", error=79))  # MEMBER_ID_REQUIRED
    assert ev["error"] == "MEMBER_ID_REQUIRED" and ev["error_code"] == 79
    assert ev["generation"] is None
    assert ev["member_id"] == "m-9"  # the id the broker handed out


def test_sync_group_leader_assignments_and_own_assignment(build: SimpleNamespace) -> None:
    ex = build.sync(
        "g1",
        "m-1",
        4,
        {"a": [0, 2]},
        assignments={"m-1": {"a": [0, 2]}, "m-2": {"a": [1], "b": [0]}},
    )
    ev = event_fields(ex)
    assert ev["generation"] == 4 and ev["protocol"] == "range"
    assert ev["assignments"] == {"m-1": {"a": [0, 2]}, "m-2": {"a": [1], "b": [0]}}
    assert ev["assignment"] == {"a": [0, 2]}


def test_sync_group_error_has_no_assignment(build: SimpleNamespace) -> None:
    ev = event_fields(build.sync("g1", "m-2", 4, {}, error=27))
    assert ev["error"] == "REBALANCE_IN_PROGRESS"
    assert ev["assignment"] is None and ev["assignments"] is None


def test_offset_commit_offsets_and_first_partition_error(build: SimpleNamespace) -> None:
    ex = build.commit("g1", "m-1", 4, {"a": {0: 10, 1: 20}, "b": {0: 5}}, {"b": {0: 27}})
    ev = event_fields(ex)
    assert ev["generation"] == 4
    assert ev["offsets"] == {
        "a": {"0": {"offset": 10, "error": None}, "1": {"offset": 20, "error": None}},
        "b": {"0": {"offset": 5, "error": "REBALANCE_IN_PROGRESS"}},
    }
    assert ev["error"] == "REBALANCE_IN_PROGRESS"


def test_offset_commit_old_version_generation_field(build: SimpleNamespace) -> None:
    ev = event_fields(build.commit("g1", "m-1", 2, {"a": {0: 1}}, version=2))
    assert ev["generation"] == 2 and ev["offsets"]["a"]["0"]["offset"] == 1


def test_offset_fetch_batched_form(build: SimpleNamespace) -> None:
    request = {
        "groups": [{"group_id": "g1", "topics": [{"name": "a", "partition_indexes": [0]}]}],
        "require_stable": True,
    }
    response = {
        "groups": [
            {
                "group_id": "g1",
                "topics": [
                    {
                        "name": "a",
                        "partitions": [
                            {"partition_index": 0, "committed_offset": 42, "error_code": 0}
                        ],
                    }
                ],
                "error_code": 0,
            }
        ]
    }
    ev = event_fields(build.exchange(9, 8, request, response))
    assert ev["group"] == "g1"
    assert ev["offsets"] == {"a": {"0": {"offset": 42, "error": None}}}


def test_find_coordinator_single_and_batched(build: SimpleNamespace) -> None:
    old = build.exchange(
        10,
        2,
        {"key": "g1", "key_type": 0},
        {"error_code": 0, "node_id": 2, "host": "127.0.0.1", "port": 9092},
    )
    assert (event_fields(old)["group"], event_fields(old)["coordinator"]) == ("g1", 2)
    new = build.exchange(
        10,
        4,
        {"key_type": 0, "coordinator_keys": ["g2"]},
        {"coordinators": [{"key": "g2", "node_id": -1, "host": "", "port": -1, "error_code": 15}]},
    )
    ev = event_fields(new)
    assert ev["group"] == "g2" and ev["coordinator"] is None
    assert ev["error"] == "COORDINATOR_NOT_AVAILABLE"
    txn = build.exchange(10, 4, {"key_type": 1, "coordinator_keys": ["tx"]}, {"coordinators": []})
    assert event_fields(txn)["group"] is None


def test_leave_group_members(build: SimpleNamespace) -> None:
    ev = event_fields(build.leave("g1", "m-2"))
    assert ev["member_id"] == "m-2" and ev["members"][0]["member_id"] == "m-2"


def test_consumer_group_heartbeat_kip848(build: SimpleNamespace) -> None:
    topic_id = uuid.UUID("3c5f4d8e-6a5b-4b7e-9a1d-2c3b4a5d6e7f")
    request = {
        "group_id": "g848",
        "member_id": "m-a",
        "member_epoch": 0,
        "rebalance_timeout_ms": 6000,
        "subscribed_topic_names": ["a"],
        "server_assignor": "uniform",
        "topic_partitions": [],
    }
    response = {
        "error_code": 0,
        "member_id": "m-a",
        "member_epoch": 5,
        "heartbeat_interval_ms": 1000,
        "assignment": {"topic_partitions": [{"topic_id": topic_id, "partitions": [1, 0]}]},
    }
    ev = event_fields(build.exchange(68, 0, request, response))
    assert ev["api"] == "ConsumerGroupHeartbeat"
    assert (ev["group"], ev["member_id"], ev["generation"]) == ("g848", "m-a", 5)
    assert ev["subscription"] == ["a"] and ev["protocol"] == "uniform"
    assert ev["assignment"] == {str(topic_id): [0, 1]}


def test_fault_fields(build: SimpleNamespace) -> None:
    injected = Decision(action=ActionKind.ERROR, rule_id="r1", error_code=16)
    ex = build.sync("g1", "m-1", 4, {}, error=16, outcome="error_injected", decision=injected)
    ev = event_fields(ex)
    # NOT_COORDINATOR is an answer a real broker gives on this API: not synthetic.
    assert ev["fault"] == {"rule": "r1", "action": "error", "error": "NOT_COORDINATOR",
                           "synthetic": False}
    assert ev["outcome"] == "error_injected" and ev["error"] == "NOT_COORDINATOR"

    delayed = Decision(action=ActionKind.DELAY, rule_id="slow", delay_s=0.25, side=Side.RESPONSE)
    ev = event_fields(build.heartbeat("g1", "m-1", 4, decision=delayed))
    assert ev["fault"] == {"rule": "slow", "action": "delay", "delay_ms": 250.0, "side": "response"}

    closing = Decision(
        action=ActionKind.CLOSE, rule_id="c", close_when=CloseWhen.AFTER, close_mode=CloseMode.RESET
    )
    dropped = build.exchange(12, 4, {"group_id": "g1"}, None, outcome="closed", decision=closing)
    ev = event_fields(dropped)
    assert ev["fault"]["close"] == "after/reset" and ev["outcome"] == "closed"
    assert ev["error"] is None and ev["upstream_latency_ms"] is None


def test_unreadable_body_keeps_the_event(build: SimpleNamespace) -> None:
    ex = build.heartbeat("g1", "m-1", 4)
    ex.request_body = {"group_id": 5, "generation_id": "x", "member_id": ["odd"]}
    ex.response_body = {"error_code": "?"}
    ev = event_fields(ex)
    assert ev["api"] == "Heartbeat" and ev["generation"] is None


def test_the_principal_is_an_event_field_null_when_unknown(build: SimpleNamespace) -> None:
    import dataclasses

    exchange = build.join("g1", "m-1", 4, "m-1")
    assert event_fields(exchange)["principal"] is None
    named = dataclasses.replace(exchange, principal="alice")
    assert event_fields(named)["principal"] == "alice"
