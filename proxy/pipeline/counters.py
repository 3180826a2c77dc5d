"""Per-frame metric updates for the pipeline, with the label children cached.

`prometheus_client` resolves label values under a lock on every `.labels()` call; at tens of
thousands of frames per second that shows up in profiles, so the pipeline keeps the children it
uses in plain dicts (bounded: API keys x versions, two directions).
"""

from __future__ import annotations

from typing import Any

from codec import api_label
from proxy import metrics


class _Counters:
    """Cached metric children: prometheus label lookups are too slow for every frame."""

    def __init__(self) -> None:
        self.req: dict[tuple[int, int], Any] = {}
        self.resp: dict[tuple[int, int], Any] = {}
        self.lat: dict[int, Any] = {}
        self.c2b = metrics.bytes_total.labels("client_to_broker")
        self.b2c = metrics.bytes_total.labels("broker_to_client")

    def request(self, api_key: int, api_version: int) -> None:
        c = self.req.get((api_key, api_version))
        if c is None:
            c = self.req[(api_key, api_version)] = metrics.requests_total.labels(
                api_label(api_key), str(api_version))
        c.inc()

    def response(self, api_key: int, api_version: int) -> None:
        c = self.resp.get((api_key, api_version))
        if c is None:
            c = self.resp[(api_key, api_version)] = metrics.responses_total.labels(
                api_label(api_key), str(api_version))
        c.inc()

    def latency(self, api_key: int, seconds: float) -> None:
        h = self.lat.get(api_key)
        if h is None:
            h = self.lat[api_key] = metrics.upstream_latency_seconds.labels(api_label(api_key))
        h.observe(seconds)


COUNTERS: _Counters | None = None


def counters() -> _Counters:
    global COUNTERS
    if COUNTERS is None:
        COUNTERS = _Counters()
    return COUNTERS
