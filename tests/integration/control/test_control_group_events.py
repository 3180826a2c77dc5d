"""A real two-member aiokafka group through the proxy, seen in the event log and /groups."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter
from structlog.testing import capture_logs
from typer.testing import CliRunner

from kafka_chaos_proxy.proxy.admin.schemas import BrokerInfo, ConnectionInfo
from kafka_chaos_proxy.proxy.cli import app as cli_app
from tests.support.chaos import ChaosProxy, consume, consumer, create_topic, produce


async def test_two_member_group_in_event_log_and_groups(
    chaos: ChaosProxy, unique_name: Any, tmp_path: Path
) -> None:
    topic, group = unique_name("t"), unique_name("g")
    bs = chaos.bootstrap_servers
    create_topic(bs, topic, partitions=4)
    await produce(bs, topic, 8)

    first = consumer(bs, topic, group, client_id="member-a")
    second = consumer(bs, topic, group, client_id="member-b")
    await first.start()
    try:
        await consume([first], {f"v{i}".encode() for i in range(8)})
        await second.start()
        try:

            async def both_assigned() -> bool:
                await consume([first, second], set(), timeout_s=1)
                return bool(first.assignment()) and bool(second.assignment())

            await chaos.wait_for(both_assigned, "both members to hold partitions")
            await produce(bs, topic, 8, start=8)
            await consume([first, second], {f"v{i}".encode() for i in range(8, 16)})

            async def settled() -> dict[str, Any] | None:
                state = await chaos.group(group)
                if state and state["state"] == "stable" and state["member_count"] == 2:
                    return state
                return None

            state = await chaos.wait_for(settled, "the group state to settle")
            connections = await chaos.call(chaos.admin.connections)
            brokers = await chaos.call(chaos.admin.brokers)
        finally:
            await second.stop()
    finally:
        await first.stop()

    joins = [e for e in await chaos.events(group=group, api="JoinGroup") if not e["error"]]
    syncs = [e for e in await chaos.events(group=group, api="SyncGroup") if not e["error"]]
    members = {e["member_id"] for e in joins}
    assert len(members) >= 2
    assert {e["client_id"] for e in joins} >= {"member-a", "member-b"}
    generations = sorted({e["generation"] for e in joins})
    assert len(generations) >= 2 and generations[-1] > generations[0]  # the bump
    assert all(e["subscription"] == [topic] for e in joins)

    # The leader's SyncGroup for the two-member generation carries the decoded plan.
    plan = next(
        e["assignments"]
        for e in syncs
        if e["assignments"]
        and len(e["assignments"]) == 2
        and e["generation"] == state["generation"]
    )
    partitions = sorted(p for parts in plan.values() for p in parts.get(topic, []))
    assert partitions == [0, 1, 2, 3]
    # Each member's SyncGroup answer shows its share of that plan.
    answered = {
        e["member_id"]: e["assignment"] for e in syncs if e["generation"] == state["generation"]
    }
    assert answered == plan

    assert state["generation"] == generations[-1]
    assert state["protocol_type"] == "consumer" and state["leader"] in plan
    assert {m["member_id"] for m in state["members"]} == set(plan)
    assert state["rebalance_count"] >= 2
    assert state["assignment"] == plan

    # The data plane's real shapes are what the OpenAPI models of these routes say.
    assert len(TypeAdapter(list[ConnectionInfo]).validate_python(connections)) >= 2
    assert TypeAdapter(list[BrokerInfo]).validate_python(brokers)

    # The CLI reads the same API; by now both members have left (LeaveGroup on stop).
    runner = CliRunner()
    shown = await asyncio.to_thread(
        runner.invoke, cli_app, ["groups", group, "--admin-url", chaos.cp.admin_url]
    )
    assert shown.exit_code == 0, shown.output
    assert f"group {group} (classic): empty, generation {state['generation']}" in shown.output
    assert "no members" in shown.output
    tailed = await asyncio.to_thread(
        runner.invoke,
        cli_app,
        [
            "events",
            "tail",
            "--admin-url",
            chaos.cp.admin_url,
            "--since",
            "0",
            "--group",
            group,
            "--api",
            "SyncGroup",
            "--limit",
            str(len(syncs)),
        ],
    )
    assert tailed.exit_code == 0, tailed.output
    assert len(tailed.output.splitlines()) == len(syncs) and "plan[" in tailed.output

    # Offsets are not committed (auto commit off), but the same events went to the file.
    lines = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert {e["seq"] for e in lines} >= {e["seq"] for e in joins + syncs}


async def test_console_lines_for_a_fault_and_the_rebalance(
    chaos: ChaosProxy, unique_name: Any
) -> None:
    """What a new user watching the console sees: one info line for the injected fault (with
    its rule, API, group, member and connection) and one for the rebalance it delayed; the
    connections' own lines are debug."""
    topic, group = unique_name("t"), unique_name("g")
    bs = chaos.bootstrap_servers
    create_topic(bs, topic, partitions=1)
    await produce(bs, topic, 2)
    await chaos.add_fault(
        {
            "id": "sync-nc-console",
            "match": {"apis": ["SyncGroup"], "group_id": group},
            "action": {"type": "error", "error": "NOT_COORDINATOR"},
            "dosage": {"max_injections": 1},
        }
    )
    member = consumer(bs, topic, group, client_id="console-member")
    with capture_logs() as logs:
        await member.start()
        try:
            await consume([member], {b"v0", b"v1"})

            async def rebalanced() -> bool:
                return any(e["event"] == "rebalance_completed" and e.get("group") == group
                           for e in list(logs))

            await chaos.wait_for(rebalanced, "a rebalance_completed line")
        finally:
            await member.stop()
    mine = [e for e in logs if e.get("group") == group]
    faults = [e for e in mine if e["event"] == "fault_injected"]
    assert len(faults) == 1, faults
    fault = faults[0]
    assert (fault["log_level"], fault["rule"], fault["action"], fault["api"], fault["error"]) == (
        "info", "sync-nc-console", "error", "SyncGroup", "NOT_COORDINATOR")
    assert fault["member"] and isinstance(fault["connection"], int)
    done = [e for e in mine if e["event"] == "rebalance_completed"]
    assert done and all(e["log_level"] == "info" and e["members"] == 1 for e in done)
    assert done[-1]["generation"] >= 1 and done[-1]["duration_ms"] is not None
    connection_lines = [e for e in logs if e["event"] in ("connection_open", "connection_closed")]
    assert connection_lines and {e["log_level"] for e in connection_lines} == {"debug"}
