"""Every Prometheus metric the proxy exports, in one registry.

One module owns the names, labels and buckets so that the data plane, the fault engine glue, the
event log and the admin endpoint all count into the same series, and so that label cardinality
stays bounded by construction: labels are API names, error names, directions, reasons, rule ids,
actions and group ids; client ids only when the operator opts in.

API and error labels come from closed sets (invariant 5): a key or code the codec does not know
(a newer client, junk, a broker newer than the specs) is `unknown`, never its number, so a peer
cannot mint series. The metrics labelled by them normalise in `labels()` themselves
(`ClosedCounter`, `ClosedHistogram`), whoever calls them; `api_metric_label` and
`error_metric_label` are the same mapping for callers that want the label up front.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)

from kafka_chaos_proxy.codec import API_NAMES, ERROR_CODES
from kafka_chaos_proxy.proxy.frame_counts import FrameCounts

# A `_created` series per labelled child doubles the series count for no use on a dashboard.
disable_created_metrics()

REGISTRY = CollectorRegistry(auto_describe=True)

UNKNOWN = "unknown"
_API_BY_KEY: dict[int, str] = dict(API_NAMES)
_API_NAMES = frozenset(API_NAMES.values())
_ERROR_BY_CODE: dict[int, str] = {code: name for name, code in ERROR_CODES.items()}
_ERROR_NAMES = frozenset(ERROR_CODES)


def api_metric_label(api_key: object) -> str:
    """The `api` label of an API key (or of an API name): its name, or `unknown`."""
    if isinstance(api_key, int):
        return _API_BY_KEY.get(api_key, UNKNOWN)
    return api_key if api_key in _API_NAMES else UNKNOWN


def error_metric_label(code: object) -> str:
    """The `error` label of an error code (or of an error name): its name, or `unknown`."""
    if isinstance(code, int):
        return _ERROR_BY_CODE.get(code, UNKNOWN)
    return code if code in _ERROR_NAMES else UNKNOWN


_CLOSED: dict[str, Callable[[object], str]] = {"api": api_metric_label,
                                               "error": error_metric_label}


def _closed_values(names: tuple[str, ...], values: tuple[Any, ...],
                   kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if values:
        values = tuple(_CLOSED[n](v) if n in _CLOSED else v
                       for n, v in zip(names, values, strict=False))
    if kwargs:
        kwargs = {n: _CLOSED[n](v) if n in _CLOSED else v for n, v in kwargs.items()}
    return values, kwargs


class ClosedCounter(Counter):
    """A Counter whose `api`/`error` label values are mapped into their closed sets."""

    def labels(self, *labelvalues: Any, **labelkwargs: Any) -> ClosedCounter:
        values, kwargs = _closed_values(self._labelnames, labelvalues, labelkwargs)
        return super().labels(*values, **kwargs)


class ClosedHistogram(Histogram):
    """A Histogram whose `api` label values are mapped into their closed set."""

    def labels(self, *labelvalues: Any, **labelkwargs: Any) -> ClosedHistogram:
        values, kwargs = _closed_values(self._labelnames, labelvalues, labelkwargs)
        return super().labels(*values, **kwargs)


# Upstream latency in seconds: sub-millisecond resolution for the pass-through path, and long
# buckets for group APIs that legitimately wait (JoinGroup waits for the rebalance).
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)

# No version label: versions multiply the series for little use, and a peer picks them.
# `kcp_requests_total`, `kcp_responses_total`, `kcp_upstream_latency_seconds` and
# `kcp_bytes_total` are bumped on every frame, so they are plain integers exported when
# scraped (`proxy.frame_counts`), not prometheus-client objects with a lock per bump.
frame_counts = FrameCounts(API_NAMES, LATENCY_BUCKETS)
REGISTRY.register(frame_counts)
broker_errors_total = ClosedCounter(
    "kcp_broker_errors_total",
    "Non-zero error codes the broker returned (group and coordinator APIs).",
    ["api", "error"],
    registry=REGISTRY,
)
injected_errors_total = ClosedCounter(
    "kcp_injected_errors_total",
    "Error codes the proxy synthesized instead of or on top of the broker's answer.",
    ["api", "error"],
    registry=REGISTRY,
)
connections_active = Gauge(
    "kcp_connections_active", "Client connections open now.", ["broker"], registry=REGISTRY
)
connections_total = Counter(
    "kcp_connections_total", "Client connections accepted.", ["broker"], registry=REGISTRY
)
connection_closes_total = Counter(
    "kcp_connection_closes_total", "Client connections closed, by reason.", ["reason"],
    registry=REGISTRY,
)
listener_refusals_total = Counter(
    "kcp_listener_refusals_total",
    "Broker listeners not opened (over --max-brokers, port out of range), by reason.",
    ["reason"],
    registry=REGISTRY,
)
frame_errors_total = Counter(
    "kcp_frame_errors_total",
    "Malformed or over-limit frames that closed a connection, by reason.",
    ["reason"],
    registry=REGISTRY,
)
connection_refusals_total = Counter(
    "kcp_connection_refusals_total",
    "Client connections closed on accept, by reason: max_connections, max_connections_per_ip,"
    " fd_limit (the open-files limit leaves no room for more).",
    ["reason"],
    registry=REGISTRY,
)
faults_injected_total = Counter(
    "kcp_faults_injected_total", "Faults applied, by rule and action.", ["rule", "action"],
    registry=REGISTRY,
)
group_generation = Gauge(
    "kcp_group_generation", "Current generation (or group epoch) seen for a group.", ["group"],
    registry=REGISTRY,
)
group_members = Gauge(
    "kcp_group_members", "Members in the group's current generation.", ["group"], registry=REGISTRY
)
group_rebalances_total = Counter(
    "kcp_group_rebalances_total", "Completed rebalances seen for a group.", ["group"],
    registry=REGISTRY,
)
group_rebalance_seconds = Histogram(
    "kcp_group_rebalance_seconds",
    "Rebalance duration: first JoinGroup of a generation to the last SyncGroup response.",
    ["group"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
    registry=REGISTRY,
)
client_requests_total = Counter(
    "kcp_client_requests_total",
    "Requests by client id (only counted when --metrics-client-ids is on).",
    ["client_id"],
    registry=REGISTRY,
)
event_subscriber_drops_total = Counter(
    "kcp_event_subscriber_drops_total",
    "Events a live event-stream subscriber lost because it read too slowly.",
    registry=REGISTRY,
)
group_state_evictions_total = Counter(
    "kcp_group_state_evictions_total",
    "Groups or members dropped from the group-state model to keep it bounded, by kind.",
    ["kind"],
    registry=REGISTRY,
)
coordination_latency_seconds = ClosedHistogram(
    "kcp_coordination_latency_seconds",
    "Client-visible time of coordination exchanges: request in to response out, faults included.",
    ["api"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
tls_errors_total = Counter(
    "kcp_tls_errors_total",
    "TLS failures that closed a connection, by side (client: a client of the listeners; "
    "upstream: a connection to a broker) and reason (a closed set, proxy.tls.errors).",
    ["side", "reason"],
    registry=REGISTRY,
)
