"""Every Prometheus metric the proxy exports, in one registry.

One module owns the names, labels and buckets so that the data plane, the fault engine glue, the
event log and the admin endpoint all count into the same series, and so that label cardinality
stays bounded by construction: labels are API names, error names, directions, reasons, rule ids,
actions and group ids; client ids only when the operator opts in.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

# Upstream latency in seconds: sub-millisecond resolution for the pass-through path, and long
# buckets for group APIs that legitimately wait (JoinGroup waits for the rebalance).
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)

requests_total = Counter(
    "kcp_requests_total", "Requests received from clients.", ["api", "version"], registry=REGISTRY
)
responses_total = Counter(
    "kcp_responses_total", "Responses sent to clients.", ["api", "version"], registry=REGISTRY
)
broker_errors_total = Counter(
    "kcp_broker_errors_total",
    "Non-zero error codes the broker returned (group and coordinator APIs).",
    ["api", "error"],
    registry=REGISTRY,
)
injected_errors_total = Counter(
    "kcp_injected_errors_total",
    "Error codes the proxy synthesized instead of or on top of the broker's answer.",
    ["api", "error"],
    registry=REGISTRY,
)
upstream_latency_seconds = Histogram(
    "kcp_upstream_latency_seconds",
    "Time from forwarding a request to receiving its response from the broker.",
    ["api"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
bytes_total = Counter(
    "kcp_bytes_total",
    "Bytes moved, by direction (client_to_broker, broker_to_client).",
    ["direction"],
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
coordination_latency_seconds = Histogram(
    "kcp_coordination_latency_seconds",
    "Client-visible time of coordination exchanges: request in to response out, faults included.",
    ["api"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
