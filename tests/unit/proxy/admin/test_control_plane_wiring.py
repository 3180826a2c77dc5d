"""build_control_plane + start/stop: rule file, injection counter, client-id metric, the real
uvicorn server on an ephemeral port, and live streams ending when the proxy stops."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from kafka_chaos_proxy.faults.decision import ActionKind
from kafka_chaos_proxy.faults.engine import FaultEngine
from kafka_chaos_proxy.proxy import metrics
from kafka_chaos_proxy.proxy.control_plane import ControlPlaneOptions, build_control_plane
from kafka_chaos_proxy.proxy.events import EventLog, EventLogOptions
from kafka_chaos_proxy.proxy.groups import GroupStateModel
from kafka_chaos_proxy.proxy.observers import ClientIdCounter, CoordinationMetrics
from kafka_chaos_proxy.proxy.trigger_feed import TriggerFeed


@dataclass
class View:
    """A SyncGroup request as the fault engine sees it."""

    connection_id: int = 1
    client_host: str = "127.0.0.1"
    broker_node: int = 1
    api_key: int = 14
    api_version: int = 5
    correlation_id: int = 1
    client_id: str | None = "wiring-client"

    def body(self) -> dict[str, Any] | None:
        return {"group_id": "wiring-g", "generation_id": 1, "member_id": "m"}


class NoProxy:
    def list_connections(self) -> list[dict[str, Any]]:
        return []

    def list_brokers(self) -> list[dict[str, Any]]:
        return [{"node_id": 1}]


def _rules_file(tmp_path: Path) -> Path:
    engine = FaultEngine()
    engine.add(
        {
            "id": "wired",
            "match": {"apis": ["SyncGroup"], "group_id": "wiring-g"},
            "action": {"type": "error", "error": "NOT_COORDINATOR"},
        }
    )
    path = tmp_path / "rules.yaml"
    path.write_text(engine.export("yaml"))
    return path


def test_build_loads_rules_and_counts_injections(tmp_path: Path) -> None:
    cp = build_control_plane(
        ControlPlaneOptions(admin_port=None, faults_file=_rules_file(tmp_path), seed=3)
    )
    assert cp.engine is not None and [r.id for r in cp.engine.list()] == ["wired"]
    assert cp.decider is cp.engine
    kinds = {type(o) for o in cp.observers}
    assert kinds == {EventLog, GroupStateModel, TriggerFeed, CoordinationMetrics}

    counter = metrics.faults_injected_total.labels("wired", "error")
    before = counter._value.get()
    decision = cp.decider.on_request(View())
    assert decision.action is ActionKind.ERROR and decision.on_applied is not None
    decision.on_applied()
    assert counter._value.get() - before == 1


def test_client_id_metric_is_opt_in_and_capped() -> None:
    cp = build_control_plane(ControlPlaneOptions(admin_port=None, metrics_client_ids=True))
    assert isinstance(cp.decider, ClientIdCounter)
    cp.decider.max_ids = 1
    before = metrics.client_requests_total.labels("wiring-client")._value.get()
    other = metrics.client_requests_total.labels("other")._value.get()
    cp.decider.on_request(View())
    cp.decider.on_request(View(client_id="someone-else"))
    assert metrics.client_requests_total.labels("wiring-client")._value.get() - before == 1
    assert metrics.client_requests_total.labels("other")._value.get() - other == 1


async def test_admin_server_serves_and_stops_with_open_stream(tmp_path: Path) -> None:
    cp = build_control_plane(
        ControlPlaneOptions(admin_port=0, events=EventLogOptions(path=tmp_path / "ev.jsonl"))
    )
    await cp.start(NoProxy())
    try:
        assert cp.admin_url is not None and not cp.admin_url.endswith(":0")
        async with httpx.AsyncClient(base_url=cp.admin_url, timeout=10) as client:
            assert (await client.get("/healthz")).json() == {"status": "ok"}
            assert (await client.get("/brokers")).json() == [{"node_id": 1}]
            async with client.stream("GET", "/events/stream") as stream:
                lines = stream.aiter_lines()
                assert await asyncio.wait_for(anext(lines), 10) == ": connected"
                assert cp.events is not None and cp.events.subscriber_count == 1
                await asyncio.wait_for(cp.stop(), 15)  # must not wait for the reader
                rest = [line async for line in lines]
                assert all(not line.startswith("data:") for line in rest)
    finally:
        await cp.stop()
    assert (tmp_path / "ev.jsonl").exists()


async def test_busy_port_fails_start() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        cp = build_control_plane(ControlPlaneOptions(admin_port=port))
        with pytest.raises(OSError):
            await cp.start(NoProxy())
        await cp.stop()
        assert cp.admin_url is None
