"""The plain-integer frame counters scrape exactly as prometheus-client's own Counter and
Histogram would for the same bumps: same names, labels, buckets and values, `unknown` for a
key the codec does not know."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from kafka_chaos_proxy.codec import API_NAMES
from kafka_chaos_proxy.proxy.frame_counts import FrameCounts
from kafka_chaos_proxy.proxy.metrics import LATENCY_BUCKETS, api_metric_label

KEYS = st.sampled_from([0, 1, 3, 11, 14, 9999, -1])  # known keys, and two the codec lacks
bumps = st.lists(st.tuples(st.sampled_from(["request", "response", "latency", "c2b", "b2c"]),
                           KEYS, st.floats(0, 100, allow_nan=False)), max_size=40)


def reference(events: list[tuple[str, int, float]]) -> bytes:
    registry = CollectorRegistry()
    req = Counter("kcp_requests_total", "Requests received from clients.", ["api"],
                  registry=registry)
    resp = Counter("kcp_responses_total", "Responses sent to clients.", ["api"],
                   registry=registry)
    lat = Histogram("kcp_upstream_latency_seconds",
                    "Time from forwarding a request to receiving its response from the broker.",
                    ["api"], buckets=LATENCY_BUCKETS, registry=registry)
    moved = Counter("kcp_bytes_total",
                    "Bytes moved, by direction (client_to_broker, broker_to_client).",
                    ["direction"], registry=registry)
    moved.labels("client_to_broker")
    moved.labels("broker_to_client")
    for kind, key, value in events:
        label = api_metric_label(key)
        if kind == "request":
            req.labels(label).inc()
        elif kind == "response":
            resp.labels(label).inc()
        elif kind == "latency":
            lat.labels(label).observe(value)
        else:
            moved.labels("client_to_broker" if kind == "c2b" else "broker_to_client").inc(
                int(value))
    return generate_latest(registry)


def ours(events: list[tuple[str, int, float]]) -> bytes:
    registry = CollectorRegistry()
    counts = FrameCounts(API_NAMES, LATENCY_BUCKETS)
    registry.register(counts)
    for kind, key, value in events:
        if kind == "request":
            counts.request(key)
        elif kind == "response":
            counts.response(key)
        elif kind == "latency":
            counts.latency(key, value)
        else:
            (counts.c2b if kind == "c2b" else counts.b2c).inc(int(value))
    return generate_latest(registry)


def samples(text: bytes) -> set[str]:
    """The sample lines (order of children may differ; `_created` is not exported here)."""
    return {line for line in text.decode().splitlines()
            if line and not line.startswith("#") and "_created" not in line}


@settings(max_examples=200, deadline=None)
@given(events=bumps)
def test_scrape_equals_prometheus_client_for_the_same_bumps(
        events: list[tuple[str, int, float]]) -> None:
    assert samples(ours(events)) == samples(reference(events))


def test_families_are_known_before_the_first_frame() -> None:
    text = ours([]).decode()
    for name in ("kcp_requests_total", "kcp_responses_total", "kcp_upstream_latency_seconds",
                 "kcp_bytes_total"):
        assert f"# TYPE {name} " in text
