"""Fetch sample events through the pipeline (`ProxyConfig.fetch_events`), against the loopback
upstream: events at the request's arrival with the session's whole set, topic ids named from a
Metadata answer, one event a second while nothing changes, frames forwarded byte for byte; and
with the option off, not one Fetch body decoded."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kafka_chaos_proxy.codec import ApiKey
from kafka_chaos_proxy.proxy.event_fields import EVENT_KEYS, FETCH_EVENT_KEYS
from kafka_chaos_proxy.proxy.events import EventLog
from kafka_chaos_proxy.proxy.pipeline.request_context import RequestContext
from tests.support.wire_fakes import (
    Client,
    FakeCluster,
    request_frame,
    response_frame,
    start_proxy,
)

FETCH, METADATA = int(ApiKey.FETCH), int(ApiKey.METADATA)
TOPIC_ID = uuid.UUID("8e1f3f6c-29a8-4f3e-9b55-3bb1b9c9f001")


def fetch_body(topics: dict[Any, list[int]], epoch: int = 0, session_id: int = 0,
               forgotten: dict[Any, list[int]] | None = None) -> dict[str, Any]:
    return {"replica_id": -1, "max_wait_ms": 100, "min_bytes": 1, "max_bytes": 1 << 20,
            "session_id": session_id, "session_epoch": epoch,
            "topics": [{"topic_id": t, "partitions": [
                {"partition": p, "fetch_offset": 0, "partition_max_bytes": 1024} for p in ps]}
                for t, ps in topics.items()],
            "forgotten_topics_data": [{"topic_id": t, "partitions": ps}
                                      for t, ps in (forgotten or {}).items()]}


def metadata_answer(api_key: int, api_version: int, corr: int, frame: bytes) -> bytes:
    return response_frame(api_key, api_version, corr, {"topics": [
        {"error_code": 0, "name": "orders", "topic_id": TOPIC_ID, "partitions": []}]})


@pytest.fixture
async def upstream() -> AsyncIterator[FakeCluster]:
    fake = await FakeCluster(responders={METADATA: metadata_answer}).start()
    yield fake
    await fake.stop()


async def test_fetch_events_carry_the_sessions_set_with_topic_names(
        upstream: FakeCluster) -> None:
    log = EventLog()
    server = await start_proxy(upstream, fetch_event_sink=log.record, fetch_events=True)
    client = await Client.connect(*server.bootstrap_address)
    frames = [request_frame(METADATA, 12, 1, {"topics": None}, client_id="app-m0"),
              request_frame(FETCH, 13, 2, fetch_body({TOPIC_ID: [1, 0]}), client_id="app-m0"),
              request_frame(FETCH, 13, 3, fetch_body({TOPIC_ID: [1]}, 1, 77), client_id="app-m0"),
              request_frame(FETCH, 13, 4, fetch_body({}, 2, 77, forgotten={TOPIC_ID: [0]}),
                            client_id="app-m0")]
    for frame in frames:
        await client.send(frame)
        await client.recv()
    assert [r.frame for r in upstream.received] == frames  # forwarded byte for byte
    events = list(log)
    # The first request (a change from nothing), not the second (same set, within a
    # second), the third (a partition forgotten: a change, covering both).
    assert [e["correlation_id"] for e in events] == [2, 4]
    first, second = events
    assert list(first) == ["seq", *EVENT_KEYS[1:], *FETCH_EVENT_KEYS]
    assert first["api"] == "Fetch" and first["api_key"] == FETCH and first["version"] == 13
    assert (first["outcome"], first["group"], first["client_id"]) == ("observed", None, "app-m0")
    assert first["partitions"] == {"orders": [0, 1]}
    assert (first["fetches"], first["session_id"], first["session_epoch"]) == (1, 0, 0)
    assert second["partitions"] == {"orders": [1]}
    assert (second["fetches"], second["session_id"], second["session_epoch"]) == (2, 77, 2)
    assert first["connection"] == second["connection"]
    assert first["partitions_dropped"] == 0 and first["latency_ms"] is None
    client.close()
    await server.stop()


async def test_an_unchanged_set_is_told_once_a_second(upstream: FakeCluster) -> None:
    log = EventLog()
    server = await start_proxy(upstream, fetch_event_sink=log.record, fetch_events=True)
    client = await Client.connect(*server.bootstrap_address)
    unknown = uuid.uuid4()
    for corr in range(1, 14):  # 13 fetches over about 1.3 s
        await client.send(request_frame(FETCH, 13, corr, fetch_body({unknown: [3]})))
        await client.recv()
        await asyncio.sleep(0.1)
    events = list(log)
    assert len(events) == 2
    assert events[0]["partitions"] == {f"topic_id:{unknown}": [3]}  # no Metadata named it
    assert events[1]["ts"] - events[0]["ts"] >= 1.0
    assert sum(e["fetches"] for e in events) <= 13
    client.close()
    await server.stop()


async def test_off_by_default_no_fetch_body_is_decoded(
        upstream: FakeCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    decoded: list[int] = []
    original = RequestContext.body

    def counting(self: RequestContext) -> Any:
        decoded.append(self.api_key)
        return original(self)

    monkeypatch.setattr(RequestContext, "body", counting)
    log = EventLog()
    # Somewhere to send events does not turn it on: the option does.
    server = await start_proxy(upstream, fetch_event_sink=log.record)
    assert server.fetch_sink is None
    client = await Client.connect(*server.bootstrap_address)
    for corr in range(1, 4):
        await client.send(request_frame(FETCH, 13, corr, fetch_body({TOPIC_ID: [0]})))
        await client.recv()
    assert decoded == [] and len(log) == 0
    assert len(server.topic_names) == 0
    client.close()
    await server.stop()
