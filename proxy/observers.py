"""Prometheus glue for coordination traffic and group state.

Counting lives apart from the event log and the group model so that each of those stays about
one thing, and so that every label value that reaches Prometheus passes through one place that
keeps cardinality bounded: API names come from the codec's fixed table, error names from
Kafka's fixed list, and group labels exist only while the bounded group model holds the group
(they are removed when it evicts or forgets one).
"""

from __future__ import annotations

import contextlib

from kafka_chaos_proxy.faults.decision import ActionKind, Decision, FaultDecider, RequestView
from kafka_chaos_proxy.proxy import metrics
from kafka_chaos_proxy.proxy.event_fields import all_errors, api_name, error_name
from kafka_chaos_proxy.proxy.exchange import Exchange
from kafka_chaos_proxy.proxy.groups import GroupState

# Faults whose response the broker did not write: its error codes are the proxy's, not the
# broker's, and are counted as injected by whoever synthesized them.
_SYNTHESIZED = frozenset({ActionKind.ERROR, ActionKind.ERROR_AFTER_FORWARD})


class CoordinationMetrics:
    """ExchangeObserver: client-visible latency of coordination exchanges (so an injected delay
    shows up with its spread) and the error codes brokers returned for them."""

    def observe(self, exchange: Exchange) -> None:
        api = api_name(exchange.api_key)
        if exchange.response_body is not None:
            metrics.coordination_latency_seconds.labels(api).observe(exchange.latency_s)
        if exchange.outcome != "ok" or exchange.decision.action in _SYNTHESIZED:
            return
        codes = all_errors(exchange.response_body)
        for code in codes:
            metrics.broker_errors_total.labels(api, error_name(code)).inc()


class GroupMetrics:
    """GroupListener: keeps the per-group gauges and rebalance series in step with the model."""

    def group_changed(self, group: GroupState) -> None:
        if group.generation is not None:
            metrics.group_generation.labels(group.group_id).set(group.generation)
        metrics.group_members.labels(group.group_id).set(len(group.members))

    def rebalance_completed(self, group: GroupState, duration_s: float | None) -> None:
        metrics.group_rebalances_total.labels(group.group_id).inc()
        if duration_s is not None:
            metrics.group_rebalance_seconds.labels(group.group_id).observe(duration_s)

    def group_removed(self, group_id: str) -> None:
        for series in (
            metrics.group_generation,
            metrics.group_members,
            metrics.group_rebalances_total,
            metrics.group_rebalance_seconds,
        ):
            with contextlib.suppress(KeyError):  # never had that series
                series.remove(group_id)


class ClientIdCounter:
    """FaultDecider wrapper that counts every request by client id, then asks the real decider.

    The decider is the one hook the data plane calls for every request, so this is where a
    per-client count can live without the data plane knowing about it. Client ids are chosen
    by clients, so the series are opt-in (`--metrics-client-ids`) and capped: ids beyond
    `max_ids` are counted under "other".
    """

    OTHER = "other"

    def __init__(self, decider: FaultDecider, max_ids: int = 200) -> None:
        self.decider = decider
        self.max_ids = max_ids
        self._seen: set[str] = set()

    def on_request(self, request: RequestView) -> Decision:
        client_id = request.client_id or ""
        if client_id not in self._seen:
            if len(self._seen) >= self.max_ids:
                client_id = self.OTHER
            else:
                self._seen.add(client_id)
        metrics.client_requests_total.labels(client_id).inc()
        return self.decider.on_request(request)
