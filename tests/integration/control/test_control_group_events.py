"""A real two-member aiokafka group through the proxy, seen in the event log and /groups."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter
from typer.testing import CliRunner

from proxy.admin.schemas import BrokerInfo, ConnectionInfo
from proxy.cli import app as cli_app
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
