"""Metric labels come from closed sets (invariant 5): no peer can mint series."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator

import pytest

from kafka_chaos_proxy.proxy import metrics
from kafka_chaos_proxy.proxy.metrics import UNKNOWN, api_metric_label, error_metric_label
from tests.support.wire_fakes import Client, FakeCluster, raw_request_frame, start_proxy

# Family names (a counter's family has no `_total`).
_LABELLED = ("kcp_requests", "kcp_responses", "kcp_upstream_latency_seconds",
             "kcp_injected_errors", "kcp_broker_errors")


def _series() -> dict[str, int]:
    """Samples per metric family in the registry (what a scrape would carry)."""
    counts: dict[str, int] = {}
    for family in metrics.REGISTRY.collect():
        counts[family.name] = len(family.samples)
    return counts


@pytest.fixture
async def upstream() -> AsyncIterator[FakeCluster]:
    fake = await FakeCluster().start()
    yield fake
    await fake.stop()


def test_label_functions_map_into_closed_sets() -> None:
    assert api_metric_label(12) == api_metric_label("Heartbeat") == "Heartbeat"
    assert api_metric_label(999) == api_metric_label("999") == api_metric_label(None) == UNKNOWN
    assert error_metric_label(25) == error_metric_label("UNKNOWN_MEMBER_ID") == "UNKNOWN_MEMBER_ID"
    assert error_metric_label(31337) == error_metric_label("UNKNOWN_ERROR_31337") == UNKNOWN


def test_metrics_normalise_whoever_labels_them() -> None:
    before = _series()
    for code in range(10_000, 10_500):
        metrics.broker_errors_total.labels("Heartbeat", f"UNKNOWN_ERROR_{code}").inc()
        metrics.injected_errors_total.labels(str(code), code).inc()
        metrics.coordination_latency_seconds.labels(str(code)).observe(0.001)
    after = _series()
    for name in ("kcp_broker_errors", "kcp_injected_errors"):
        assert after[name] - before[name] <= 1
    buckets = len(metrics.LATENCY_BUCKETS) + 3  # +Inf, _count, _sum
    assert after["kcp_coordination_latency_seconds"] - before[
        "kcp_coordination_latency_seconds"] <= buckets


def test_no_created_series() -> None:
    assert not any(s.name.endswith("_created")
                   for family in metrics.REGISTRY.collect() for s in family.samples)


async def test_a_thousand_unknown_apis_leave_the_series_bounded(upstream: FakeCluster) -> None:
    server = await start_proxy(upstream)
    client = await Client.connect(*server.bootstrap_address)
    await client.send(raw_request_frame(30_000, 0, 0))  # `unknown` series exist from here on
    await client.recv()
    before = _series()
    frames = [raw_request_frame(20_000 + i, i % 300, i + 1) for i in range(1000)]
    client.writer.write(b"".join(frames))
    await client.writer.drain()
    got = [await client.recv() for _ in frames]
    assert [struct.unpack_from(">i", r, 4)[0] for r in got] == list(range(1, 1001))
    after = _series()
    for name in _LABELLED:
        assert after.get(name, 0) == before.get(name, 0), name
    client.close()
    await server.stop()
