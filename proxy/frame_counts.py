"""The per-frame counters as plain integers, turned into Prometheus families when scraped.

Why: every request and response bumps a request count, a response count, a latency histogram
and a byte count. Through prometheus-client each of those takes a lock (and the histogram a
linear bucket walk), per frame; at tens of thousands of small frames a second that was a
visible share of the proxy's profile. Here a bump is one dict or attribute increment on the
event loop, and the work of building the families happens only when `/metrics` is read.

The exported series are the same as before (`kcp_requests_total`, `kcp_responses_total`,
`kcp_upstream_latency_seconds`, `kcp_bytes_total`, same labels and buckets); an API key the
codec does not know counts under `unknown`, so no peer can mint a series (invariant 5), and
the tables hold only the codec's keys (a few dozen entries: bounded by construction).

Written to from the event loop only; a scrape on another thread reads a snapshot that may be
a frame behind, which is what a scrape is anyway. Imports nothing from the proxy.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

UNKNOWN = "unknown"


class _Latency:
    """One histogram child: a count per bucket (the last one +Inf) and the sum."""

    __slots__ = ("counts", "total")

    def __init__(self, size: int) -> None:
        self.counts = [0] * size
        self.total = 0.0


class ByteCount:
    """Bytes moved one way; `inc` like a prometheus-client counter child, without its lock."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def inc(self, amount: int = 1) -> None:
        self.value += amount


class FrameCounts:
    """Requests, responses and upstream latency per API key, and bytes per direction."""

    def __init__(self, api_names: Mapping[int, str], latency_buckets: Iterable[float]) -> None:
        self._names = dict(api_names)
        self._bounds = tuple(latency_buckets)
        self.requests: dict[int, int] = dict.fromkeys(self._names, 0)
        self.responses: dict[int, int] = dict.fromkeys(self._names, 0)
        self._latency: dict[int, _Latency] = {}
        self._unknown = {"requests": 0, "responses": 0}
        self._unknown_latency = _Latency(len(self._bounds) + 1)
        self.c2b = ByteCount()  # client_to_broker
        self.b2c = ByteCount()  # broker_to_client

    # ----------------------------------------------------------------- the hot path

    def request(self, api_key: int) -> None:
        try:
            self.requests[api_key] += 1
        except KeyError:
            self._unknown["requests"] += 1

    def response(self, api_key: int) -> None:
        try:
            self.responses[api_key] += 1
        except KeyError:
            self._unknown["responses"] += 1

    def latency(self, api_key: int, seconds: float) -> None:
        child = self._latency.get(api_key)
        if child is None:
            child = self._latency_child(api_key)
        child.counts[bisect_left(self._bounds, seconds)] += 1  # a bucket's bound is inclusive
        child.total += seconds

    def _latency_child(self, api_key: int) -> _Latency:
        if api_key not in self._names:
            return self._unknown_latency
        child = self._latency[api_key] = _Latency(len(self._bounds) + 1)
        return child

    # ----------------------------------------------------------------- the scrape

    def collect(self) -> Iterator[Metric]:
        """The four families, as prometheus-client's registry asks a collector for them."""
        yield self._counter("kcp_requests_total", "Requests received from clients.",
                            self.requests, self._unknown["requests"])
        yield self._counter("kcp_responses_total", "Responses sent to clients.",
                            self.responses, self._unknown["responses"])
        latency = HistogramMetricFamily(
            "kcp_upstream_latency_seconds",
            "Time from forwarding a request to receiving its response from the broker.",
            labels=["api"])
        children = [(self._names[key], child) for key, child in list(self._latency.items())]
        if sum(self._unknown_latency.counts):
            children.append((UNKNOWN, self._unknown_latency))
        for label, child in children:
            cumulative, buckets = 0, []
            for bound, count in zip((*self._bounds, float("inf")), list(child.counts),
                                    strict=True):
                cumulative += count
                buckets.append((floatToGoString(bound), cumulative))
            latency.add_metric([label], buckets, child.total)
        yield latency
        moved = CounterMetricFamily(
            "kcp_bytes_total", "Bytes moved, by direction (client_to_broker, broker_to_client).",
            labels=["direction"])
        moved.add_metric(["client_to_broker"], self.c2b.value)
        moved.add_metric(["broker_to_client"], self.b2c.value)
        yield moved

    def describe(self) -> Iterator[Metric]:
        """The families without samples, so the registry knows the names up front (it refuses
        a second collector with the same names)."""
        for family in self.collect():
            family.samples = []
            yield family

    def _counter(self, name: str, documentation: str, counts: Mapping[int, int],
                 unknown: int) -> CounterMetricFamily:
        family = CounterMetricFamily(name, documentation, labels=["api"])
        for key, count in list(counts.items()):
            if count:
                family.add_metric([self._names[key]], count)
        if unknown:
            family.add_metric([UNKNOWN], unknown)
        return family
