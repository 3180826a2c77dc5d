"""Broker error codes of coordination APIs reach Prometheus; synthesized ones do not."""

from __future__ import annotations

from types import SimpleNamespace

from kafka_chaos_proxy.faults.decision import ActionKind, Decision
from kafka_chaos_proxy.proxy import metrics
from kafka_chaos_proxy.proxy.observers import CoordinationMetrics


def _count(api: str, error: str) -> float:
    return metrics.broker_errors_total.labels(api, error)._value.get()


def test_broker_errors_counted_once_per_code(build: SimpleNamespace) -> None:
    observer = CoordinationMetrics()
    before = _count("OffsetCommit", "REBALANCE_IN_PROGRESS")
    observer.observe(build.commit("g", "m", 1, {"t": {0: 1, 1: 2}}, {"t": {0: 27, 1: 27}}))
    assert _count("OffsetCommit", "REBALANCE_IN_PROGRESS") - before == 1

    before = _count("SyncGroup", "NOT_COORDINATOR")
    injected = Decision(action=ActionKind.ERROR, rule_id="r", error_code=16)
    observer.observe(
        build.sync("g", "m", 1, {}, error=16, outcome="error_injected", decision=injected)
    )
    after_forward = Decision(action=ActionKind.ERROR_AFTER_FORWARD, rule_id="r", error_code=16)
    observer.observe(build.sync("g", "m", 1, {}, error=16, decision=after_forward))
    assert _count("SyncGroup", "NOT_COORDINATOR") == before

    observer.observe(build.sync("g", "m", 1, {}, error=16))
    assert _count("SyncGroup", "NOT_COORDINATOR") - before == 1


def test_client_visible_latency_histogram(build: SimpleNamespace) -> None:
    def count() -> float:
        return metrics.coordination_latency_seconds.labels("Heartbeat")._sum.get()

    before = count()
    observer = CoordinationMetrics()
    observer.observe(build.heartbeat("g", "m", 1, latency_s=0.3))
    observer.observe(build.heartbeat("g", "m", 1, latency_s=0.7))
    assert abs(count() - before - 1.0) < 1e-9
