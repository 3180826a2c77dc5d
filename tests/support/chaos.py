"""Helpers of the control-plane integration tests: the `ChaosProxy` handle, topics, producing
and consuming with a real aiokafka group tuned for quick fault recovery.

A module with its own name (not conftest) so test modules can import it unambiguously.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from confluent_kafka.admin import AdminClient as KafkaAdminClient
from confluent_kafka.admin import NewTopic

from kafka_chaos_proxy.proxy.client import AdminClient, AdminRefused
from kafka_chaos_proxy.proxy.control_plane import ControlPlane
from kafka_chaos_proxy.proxy.embedded import EmbeddedProxy

T = TypeVar("T")

# Client settings that keep fault recovery quick: a dead member is noticed in seconds.
FAST_GROUP: dict[str, Any] = {
    "session_timeout_ms": 6000,
    "heartbeat_interval_ms": 1000,
    "request_timeout_ms": 5000,
    "retry_backoff_ms": 100,
    "metadata_max_age_ms": 5000,
    "auto_offset_reset": "earliest",
    "enable_auto_commit": False,
}
WAIT_S = 60.0  # upper bound for any one condition; tests never assert on elapsed time


class ChaosProxy:
    """The proxy under test, driven through the project's own admin client (a blocking
    client: its calls run in a worker thread so this test's event loop keeps going)."""

    def __init__(self, proxy: EmbeddedProxy, cp: ControlPlane, admin: AdminClient) -> None:
        self.proxy = proxy
        self.cp = cp
        self.admin = admin

    @property
    def bootstrap_servers(self) -> str:
        return self.proxy.bootstrap_servers

    async def call(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(method, *args, **kwargs)

    async def add_fault(self, rule: dict[str, Any]) -> dict[str, Any]:
        return await self.call(self.admin.add_rule, rule)

    async def fault(self, rule_id: str) -> dict[str, Any]:
        return await self.call(self.admin.rule, rule_id)

    async def remove_fault(self, rule_id: str) -> None:
        await self.call(self.admin.remove_rule, rule_id)

    async def metrics(self) -> str:
        return await self.call(self.admin.metrics)

    async def events(self, **params: Any) -> list[dict[str, Any]]:
        params.setdefault("limit", 10_000)
        return await self.call(self.admin.events, **params)

    async def group(self, group_id: str) -> dict[str, Any] | None:
        try:
            return await self.call(self.admin.group, group_id)
        except AdminRefused as exc:
            if exc.status == 404:
                return None
            raise

    async def wait_for(
        self, check: Callable[[], Awaitable[T | None]], what: str, timeout_s: float = WAIT_S
    ) -> T:
        """Poll `check` until it returns something truthy; bounded in time and count."""
        for _ in range(int(timeout_s / 0.1)):
            result = await check()
            if result:
                return result
            await asyncio.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}")


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = KafkaAdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)


async def produce(bootstrap: str, topic: str, count: int, start: int = 0) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(start, start + count):
            await producer.send_and_wait(topic, f"v{i}".encode(), key=f"k{i}".encode())
    finally:
        await producer.stop()


def consumer(bootstrap: str, topic: str, group: str, **overrides: Any) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        client_id=overrides.pop("client_id", f"{group}-client"),
        **{**FAST_GROUP, **overrides},
    )


async def consume(
    members: list[AIOKafkaConsumer], wanted: set[bytes], timeout_s: float = WAIT_S
) -> set[bytes]:
    """Poll every member until all `wanted` values were seen (by any member); bounded."""
    seen: set[bytes] = set()
    for _ in range(int(timeout_s / 0.5)):
        for member in members:
            batches = await member.getmany(timeout_ms=250)
            for records in batches.values():
                seen.update(r.value for r in records if r.value is not None)
        if wanted <= seen:
            return seen
    raise AssertionError(f"consumed {len(seen & wanted)} of {len(wanted)} records")
