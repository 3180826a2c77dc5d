"""In-proxy triggers, holds and chains on the real pipeline, against a loopback upstream:
the order of events on the wire is what these features are about, so they are shown on it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from kafka_chaos_proxy.faults.engine import FaultEngine
from kafka_chaos_proxy.proxy.groups import GroupStateModel
from kafka_chaos_proxy.proxy.server import ProxyServer
from kafka_chaos_proxy.proxy.trigger_feed import TriggerFeed
from tests.support.wire_fakes import (
    Client,
    FakeCluster,
    decode_response,
    request_frame,
    response_frame,
    start_proxy,
)

JOIN, JOIN_V = 11, 7
COMMIT, COMMIT_V = 8, 8
HB, HB_V = 12, 4
SYNC, SYNC_V = 14, 5
REBALANCE_IN_PROGRESS = 27
NOT_COORDINATOR = 16


@dataclass
class Rig:
    engine: FaultEngine
    feed: TriggerFeed
    server: ProxyServer
    upstream: FakeCluster

    async def client(self) -> Client:
        host, port = self.server.bootstrap_address
        return await Client.connect(host, port)

    def received(self, api_key: int) -> int:
        return sum(1 for r in self.upstream.received if r.api_key == api_key)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    upstream = await FakeCluster().start()
    engine = FaultEngine(seed=3)
    groups = GroupStateModel()
    feed = TriggerFeed(engine, groups)
    server = await start_proxy(upstream, engine, [groups, feed], triggers=feed)
    yield Rig(engine, feed, server, upstream)
    await server.stop()
    await upstream.stop()


def commit(corr: int, group: str = "g") -> bytes:
    return request_frame(COMMIT, COMMIT_V, corr, {
        "group_id": group, "generation_id_or_member_epoch": 1, "member_id": "m0",
        "topics": [{"name": "t", "partitions": [
            {"partition_index": 0, "committed_offset": 5, "committed_leader_epoch": -1,
             "committed_metadata": ""}]}]}, client_id="app-m0")


def join(corr: int, group: str = "g", client_id: str = "app-m1") -> bytes:
    return request_frame(JOIN, JOIN_V, corr, {
        "group_id": group, "session_timeout_ms": 10000, "rebalance_timeout_ms": 10000,
        "member_id": "", "protocol_type": "consumer", "protocols": []}, client_id=client_id)


def heartbeat(corr: int, client_id: str = "app-m0") -> bytes:
    return request_frame(HB, HB_V, corr, {"group_id": "g", "generation_id": 1,
                                          "member_id": "m0"}, client_id=client_id)


def error_of(frame: bytes, api_key: int, version: int) -> int:
    body = decode_response(frame, api_key, version)[1]
    if "error_code" in body:
        return int(body["error_code"])
    return int(body["topics"][0]["partitions"][0]["error_code"]) if body.get("topics") else 0


async def test_a_commit_held_until_a_join_is_pending_then_failed(rig: Rig) -> None:
    # The broker keeps every JoinGroup pending (as during a rebalance).
    rig.upstream.responders[JOIN] = lambda *_: None
    rig.engine.load([
        {"id": "hold-commit", "chain": True, "match": {"apis": ["OffsetCommit"]},
         "action": {"type": "hold", "until": {"api": "JoinGroup", "phase": "request"},
                    "timeout_ms": 5000, "on_timeout": "drop"},
         "dosage": {"max_injections": 1}},
        {"id": "fail-it", "match": {"apis": ["OffsetCommit"]},
         "action": {"type": "error", "error": "REBALANCE_IN_PROGRESS"},
         "dosage": {"max_injections": 1}},
    ])
    member0, member1 = await rig.client(), await rig.client()
    await member0.send(commit(1))
    assert await member0.nothing_within(0.3)  # held: no answer
    assert len(rig.feed.holds) == 1 and rig.received(COMMIT) == 0
    await member1.send(join(1))
    answer = await member0.recv()
    assert error_of(answer, COMMIT, COMMIT_V) == REBALANCE_IN_PROGRESS
    assert rig.received(COMMIT) == 0 and rig.received(JOIN) == 1  # failed at the proxy
    assert len(rig.feed.holds) == 0 and rig.feed.holds.ended["until"] == 1
    # Once both rules are spent, commits go through again.
    await member0.send(commit(2))
    assert error_of(await member0.recv(), COMMIT, COMMIT_V) == 0


async def test_a_rule_armed_by_another_rules_injection(rig: Rig) -> None:
    rig.engine.load([
        {"id": "slow-first", "match": {"apis": ["Heartbeat"]},
         "action": {"type": "delay", "fixed_ms": 10}, "dosage": {"max_injections": 1}},
        {"id": "then-fail", "match": {"apis": ["Heartbeat"]},
         "action": {"type": "error", "error": "NOT_COORDINATOR"},
         "when": {"after": {"rule": "slow-first"}}},
    ])
    member = await rig.client()
    await member.send(heartbeat(1))
    assert error_of(await member.recv(), HB, HB_V) == 0  # delayed, answered by the broker
    await member.send(heartbeat(2))
    assert error_of(await member.recv(), HB, HB_V) == NOT_COORDINATOR
    shown = rig.engine.rule_json("then-fail")
    assert shown["trigger"]["armed"] is True and shown["stats"]["injected"] == 1


async def test_a_rule_disarmed_by_an_event(rig: Rig) -> None:
    rig.engine.add({"id": "fail-until-join", "match": {"apis": ["Heartbeat"]},
                    "action": {"type": "error", "error": "NOT_COORDINATOR"},
                    "when": {"until": {"api": "JoinGroup", "client_id": "*-m1"}}})
    member = await rig.client()
    await member.send(heartbeat(1))
    assert error_of(await member.recv(), HB, HB_V) == NOT_COORDINATOR
    await member.send(join(2, client_id="app-m1"))
    await member.recv()  # the join's answer ends the exchange: the response-phase event
    await member.send(heartbeat(3))
    assert error_of(await member.recv(), HB, HB_V) == 0


async def test_a_condition_on_a_pending_join(rig: Rig) -> None:
    held: list[Any] = []

    def hold_join(api_key: int, version: int, corr: int, frame: bytes) -> None:
        held.append(corr)

    rig.upstream.responders[JOIN] = hold_join
    rig.engine.add({"id": "commit-during-join", "match": {"apis": ["OffsetCommit"]},
                    "action": {"type": "error", "error": "REBALANCE_IN_PROGRESS"},
                    "when": {"group": {"join_pending": True}}})
    member0, member1 = await rig.client(), await rig.client()
    await member0.send(commit(1))
    assert error_of(await member0.recv(), COMMIT, COMMIT_V) == 0  # no join pending
    await member1.send(join(1))
    await asyncio.sleep(0.05)
    assert rig.feed.live.join_pending("g")
    await member0.send(commit(2))
    assert error_of(await member0.recv(), COMMIT, COMMIT_V) == REBALANCE_IN_PROGRESS
    member1.close()  # the pending join's connection goes: nothing is pending any more
    for _ in range(100):
        if not rig.feed.live.join_pending("g"):
            break
        await asyncio.sleep(0.01)
    await member0.send(commit(3))
    assert error_of(await member0.recv(), COMMIT, COMMIT_V) == 0


async def test_the_join_that_creates_a_generation(rig: Rig) -> None:
    rig.engine.add({"id": "second-round", "match": {"apis": ["JoinGroup"]},
                    "action": {"type": "error", "error": "NOT_COORDINATOR"},
                    "when": {"group": {"creates_generation": 2}}})
    rig.upstream.responders[JOIN] = lambda _k, v, corr, _f: response_frame(
        JOIN, v, corr, {"generation_id": 1, "member_id": "m1", "leader": "m1",
                        "protocol_name": "range", "members": []})
    member = await rig.client()
    await member.send(join(1))
    assert error_of(await member.recv(), JOIN, JOIN_V) == 0  # round of generation 1
    await member.send(join(2))
    assert error_of(await member.recv(), JOIN, JOIN_V) == NOT_COORDINATOR  # the next round


async def test_a_delay_then_an_error_on_one_request(rig: Rig) -> None:
    rig.engine.load([
        {"id": "slow", "chain": True, "match": {"apis": ["Heartbeat"]},
         "action": {"type": "delay", "fixed_ms": 200}},
        {"id": "fail", "match": {"apis": ["Heartbeat"]},
         "action": {"type": "error", "error": "NOT_COORDINATOR"}},
    ])
    member = await rig.client()
    await member.send(heartbeat(1))
    assert await member.nothing_within(0.1)  # still delayed
    assert error_of(await member.recv(), HB, HB_V) == NOT_COORDINATOR
    assert rig.received(HB) == 0
    assert [rig.engine.stats(r).injected for r in ("slow", "fail")] == [1, 1]


async def test_an_error_after_forward_then_a_close(rig: Rig) -> None:
    rig.engine.load([
        {"id": "lie", "chain": True, "match": {"apis": ["Heartbeat"]},
         "action": {"type": "error_after_forward", "error": "NOT_COORDINATOR"}},
        {"id": "hang-up", "match": {"apis": ["Heartbeat"]},
         "action": {"type": "close", "when": "after"}},
    ])
    member = await rig.client()
    await member.send(heartbeat(1))
    assert error_of(await member.recv(), HB, HB_V) == NOT_COORDINATOR  # delivered first
    assert await member.at_eof()  # then closed
    assert rig.received(HB) == 1  # the broker did get it


async def test_a_hold_times_out_into_an_error_or_is_released(rig: Rig) -> None:
    rig.engine.add({"id": "park", "match": {"apis": ["Heartbeat"]},
                    "action": {"type": "hold", "side": "response", "timeout_ms": 150,
                               "on_timeout": "error", "error": "NOT_COORDINATOR"},
                    "dosage": {"max_injections": 2}})
    member = await rig.client()
    await member.send(heartbeat(1))
    assert error_of(await member.recv(), HB, HB_V) == NOT_COORDINATOR  # timed out
    assert rig.received(HB) == 1  # the broker answered; the client got the error instead
    await member.send(heartbeat(2))
    for _ in range(100):
        if len(rig.feed.holds):
            break
        await asyncio.sleep(0.005)
    (hold,) = rig.feed.holds.list()
    assert hold["rule"] == "park" and hold["side"] == "response"
    rig.feed.holds.release(hold["id"])
    assert error_of(await member.recv(), HB, HB_V) == 0  # the broker's own answer


async def test_a_closed_connection_forgets_its_holds(rig: Rig) -> None:
    rig.engine.add({"id": "park", "match": {"apis": ["Heartbeat"]},
                    "action": {"type": "hold", "timeout_ms": 60000}})
    member = await rig.client()
    await member.send(heartbeat(1))
    for _ in range(100):
        if len(rig.feed.holds):
            break
        await asyncio.sleep(0.005)
    assert len(rig.feed.holds) == 1
    member.close()
    for _ in range(200):
        if not len(rig.feed.holds):
            break
        await asyncio.sleep(0.005)
    assert len(rig.feed.holds) == 0 and rig.received(HB) == 0
