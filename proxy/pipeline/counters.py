"""Per-frame metric updates for the pipeline, with the label children cached.

`prometheus_client` resolves label values under a lock on every `.labels()` call; at tens of
thousands of frames per second that shows up in profiles, so the pipeline keeps the children it
uses in plain dicts keyed by API key. Bounded by construction: only keys the codec knows are
cached (a few dozen); an unknown key is counted under `unknown` without a cache entry, so no
sequence of junk keys grows anything.
"""

from __future__ import annotations

from typing import Any

from kafka_chaos_proxy.proxy import metrics
from kafka_chaos_proxy.proxy.metrics import UNKNOWN, api_metric_label


def _child(cache: dict[int, Any], metric: Any, api_key: int) -> Any:
    label = api_metric_label(api_key)
    child = metric.labels(label)
    if label != UNKNOWN:
        cache[api_key] = child
    return child


class _Counters:
    """Cached metric children: prometheus label lookups are too slow for every frame."""

    def __init__(self) -> None:
        self.req: dict[int, Any] = {}
        self.resp: dict[int, Any] = {}
        self.lat: dict[int, Any] = {}
        self.c2b = metrics.bytes_total.labels("client_to_broker")
        self.b2c = metrics.bytes_total.labels("broker_to_client")

    def request(self, api_key: int) -> None:
        c = self.req.get(api_key)
        if c is None:
            c = _child(self.req, metrics.requests_total, api_key)
        c.inc()

    def response(self, api_key: int) -> None:
        c = self.resp.get(api_key)
        if c is None:
            c = _child(self.resp, metrics.responses_total, api_key)
        c.inc()

    def latency(self, api_key: int, seconds: float) -> None:
        h = self.lat.get(api_key)
        if h is None:
            h = _child(self.lat, metrics.upstream_latency_seconds, api_key)
        h.observe(seconds)


COUNTERS: _Counters | None = None


def counters() -> _Counters:
    global COUNTERS
    if COUNTERS is None:
        COUNTERS = _Counters()
    return COUNTERS
