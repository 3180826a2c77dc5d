"""Every metric the Grafana dashboard queries is in `/metrics` of a real proxy after a real
consumer group rebalanced through it with a fault injected.

A labelled Prometheus metric only shows up once something counted into it, so the group here
does what the dashboard shows: two aiokafka members rebalance, one SyncGroup is answered with
an injected error (faults by rule, injected errors), a delay rule slows heartbeats, the broker
answers REBALANCE_IN_PROGRESS to the other member (broker errors), and a member leaves
(connection closes).
"""

from __future__ import annotations

from typing import Any

from tests.support.chaos import ChaosProxy, consume, consumer, create_topic, produce
from tests.support.dashboard import exposed_samples, queried_metrics


async def test_every_dashboard_metric_is_exported(chaos: ChaosProxy, unique_name: Any) -> None:
    topic, group = unique_name("t"), unique_name("g")
    create_topic(chaos.bootstrap_servers, topic, 2)
    await produce(chaos.bootstrap_servers, topic, 4)
    await chaos.add_fault({"id": "dash-sync", "match": {"apis": ["SyncGroup"], "group_id": group},
                           "action": {"type": "error", "error": "REBALANCE_IN_PROGRESS"},
                           "dosage": {"skip_first": 1, "max_injections": 1}})
    await chaos.add_fault({"id": "dash-delay", "match": {"apis": ["Heartbeat"], "group_id": group},
                           "action": {"type": "delay", "fixed_ms": 20},
                           "dosage": {"max_injections": 3}})
    first = consumer(chaos.bootstrap_servers, topic, group, client_id=f"{group}-m0")
    second = consumer(chaos.bootstrap_servers, topic, group, client_id=f"{group}-m1")
    await first.start()
    try:
        await consume([first], {f"v{i}".encode() for i in range(4)})
        await second.start()
        try:
            await produce(chaos.bootstrap_servers, topic, 4, start=4)
            await consume([first, second], {f"v{i}".encode() for i in range(4, 8)})
        finally:
            await second.stop()
        wanted = queried_metrics()

        async def all_there() -> set[str] | None:
            exported = exposed_samples(await chaos.metrics())
            return exported if wanted <= exported else None

        try:
            await chaos.wait_for(all_there, "every dashboard metric in /metrics")
        except AssertionError:
            missing = wanted - exposed_samples(await chaos.metrics())
            raise AssertionError(f"dashboard metrics not in /metrics: {sorted(missing)}") from None
        assert (await chaos.fault("dash-sync"))["stats"]["injected"] == 1
    finally:
        await first.stop()
