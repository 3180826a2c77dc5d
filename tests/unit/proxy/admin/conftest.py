"""An admin app over a real fault engine, event log and group model, served in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from kafka_chaos_proxy.faults.engine import FaultEngine
from kafka_chaos_proxy.proxy.admin import AdminContext, create_app
from kafka_chaos_proxy.proxy.events import EventLog
from kafka_chaos_proxy.proxy.groups import GroupStateModel

TOKEN = "s3cret-token"


class FakeProxy:
    """The two questions the admin API asks the data plane, answered from fixed lists."""

    def list_connections(self) -> list[dict[str, Any]]:
        return [{"id": 1, "client": "127.0.0.1:50000", "broker": 1}]

    def list_brokers(self) -> list[dict[str, Any]]:
        return [
            {
                "node_id": 1,
                "broker_host": "127.0.0.1",
                "broker_port": 9092,
                "rack": None,
                "proxy_host": "127.0.0.1",
                "proxy_port": 19092,
                "connections": 1,
            }
        ]


@pytest.fixture
def ctx() -> AdminContext:
    return AdminContext(
        engine=FaultEngine(seed=1),
        events=EventLog(capacity=100),
        groups=GroupStateModel(),
        proxy=FakeProxy(),
        stream_keepalive_s=0.05,
    )


@pytest.fixture
async def client(ctx: AdminContext) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(ctx))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
        yield c
