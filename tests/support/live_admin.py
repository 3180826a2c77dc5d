"""A real admin API (the whole control plane: fault engine, event log, group state) served by
uvicorn on 127.0.0.1 from an event loop in a background thread, without a data plane: tests
feed it coordination exchanges (`observe`) and talk to it over HTTP as any client would."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from kafka_chaos_proxy.proxy.control_plane import (
    ControlPlane,
    ControlPlaneOptions,
    build_control_plane,
)
from kafka_chaos_proxy.proxy.exchange import Exchange


class NoProxy:
    def list_connections(self) -> list[dict[str, Any]]:
        return []

    def list_brokers(self) -> list[dict[str, Any]]:
        return []


def heartbeat(group: str, member: str, error: int = 0) -> Exchange:
    return Exchange(
        connection_id=2,
        client_host="127.0.0.1",
        broker_node=1,
        client_id="cli-test",
        api_key=12,
        api_version=4,
        correlation_id=1,
        request_body={"group_id": group, "generation_id": 5, "member_id": member},
        response_body={"error_code": error},
        started_at=1_700_000_000.0,
        latency_s=0.003,
        upstream_latency_s=0.002,
    )


class LiveAdmin:
    """A control plane serving its admin API from an event loop in a background thread."""

    def __init__(self, token: str | None = None, port: int = 0) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.cp: ControlPlane = build_control_plane(
            ControlPlaneOptions(admin_port=port, admin_token=token)
        )
        self.call(self.cp.start(NoProxy()))
        assert self.cp.admin_url is not None
        self.url: str = self.cp.admin_url

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def observe(self, *exchanges: Exchange) -> None:
        async def run() -> None:
            for ex in exchanges:
                for observer in self.cp.observers:
                    observer.observe(ex)

        self.call(run())

    def close(self) -> None:
        self.call(self.cp.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()
