"""A proxy with its whole control plane (fault engine, event log, group state, admin HTTP API)
in front of the session's real broker, driven the way a user drives it: over the admin API.

`chaos`: a `ChaosProxy` (tests/support/chaos.py) whose `.bootstrap_servers` clients use, with the
project's own `AdminClient` on the admin API (`.admin`) and helpers to add faults and read
events.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kafka_chaos_proxy.proxy.client import AdminClient
from kafka_chaos_proxy.proxy.config import ProxyConfig, parse_bootstrap
from kafka_chaos_proxy.proxy.control_plane import ControlPlaneOptions, build_control_plane
from kafka_chaos_proxy.proxy.embedded import EmbeddedProxy
from kafka_chaos_proxy.proxy.events import EventLogOptions
from kafka_chaos_proxy.proxy.real_kafka import KafkaCluster
from tests.support.chaos import ChaosProxy


@pytest.fixture
async def chaos(kafka_cluster: KafkaCluster, tmp_path: Path) -> AsyncIterator[ChaosProxy]:
    cp = build_control_plane(
        ControlPlaneOptions(admin_port=0, events=EventLogOptions(path=tmp_path / "events.jsonl"),
                            seed=11)
    )
    config = ProxyConfig(
        parse_bootstrap(kafka_cluster.bootstrap_servers), listen_host="127.0.0.1", port=0
    )
    proxy = EmbeddedProxy(config, cp.decider, cp.observers, cp.triggers).start()
    assert proxy.loop is not None and proxy.server is not None
    try:
        await asyncio.wrap_future(
            asyncio.run_coroutine_threadsafe(cp.start(proxy.server), proxy.loop)
        )
        assert cp.admin_url is not None
        with AdminClient(cp.admin_url) as admin:
            yield ChaosProxy(proxy, cp, admin)
    finally:
        stopping = asyncio.run_coroutine_threadsafe(cp.stop(), proxy.loop)
        await asyncio.wait_for(asyncio.wrap_future(stopping), 15)
        proxy.stop()
