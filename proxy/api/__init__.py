"""The Python API: a Kafka chaos proxy under a test's control.

    from kafka_chaos_proxy import ChaosProxy

    with ChaosProxy.start("127.0.0.1:9092") as chaos:         # or attach(admin_url)
        with chaos.fault(api="SyncGroup", group="orders").error("NOT_COORDINATOR", times=1):
            ...  # clients use chaos.bootstrap
            chaos.events.wait(api="SyncGroup", group="orders", injected=True, timeout=10)

Modules, one job each: `chaos` (the sync handle), `aio` (the same for asyncio, by running
the sync calls in worker threads), `rules` (typed fault builders and the `Fault` handle),
`events` (listing and waiting for coordination events), `scenarios` (playing a scenario
through the lab's entry point), `launch`/`inprocess`/`process`/`options` (starting a proxy on
a thread or as `kafka-chaos-proxy run`), `errors` (what all of it raises). Everything talks to
the proxy through `proxy.client.AdminClient`, the CLI's client. `KafkaCluster` is what the
pytest plugin's `kafka_broker` fixture gives (`.bootstrap`).
"""

from kafka_chaos_proxy.proxy.api.aio import AsyncChaosProxy, AsyncEvents, AsyncFault
from kafka_chaos_proxy.proxy.api.chaos import ChaosProxy
from kafka_chaos_proxy.proxy.api.errors import (
    AdminError,
    AdminRefused,
    AdminUnreachable,
    ChaosProxyError,
    EventTimeout,
    ProxyStartError,
    RuleRejected,
    ScenarioProblem,
)
from kafka_chaos_proxy.proxy.api.events import EventMatch, Events
from kafka_chaos_proxy.proxy.api.rules import Fault, FaultBuilder
from kafka_chaos_proxy.proxy.api.scenarios import ScenarioResult, ScenarioRun, StepReport
from kafka_chaos_proxy.proxy.real_kafka.cluster import KafkaCluster

__all__ = [
    "AdminError",
    "AdminRefused",
    "AdminUnreachable",
    "AsyncChaosProxy",
    "AsyncEvents",
    "AsyncFault",
    "ChaosProxy",
    "ChaosProxyError",
    "EventMatch",
    "EventTimeout",
    "Events",
    "Fault",
    "FaultBuilder",
    "KafkaCluster",
    "ProxyStartError",
    "RuleRejected",
    "ScenarioProblem",
    "ScenarioResult",
    "ScenarioRun",
    "StepReport",
]
