"""kafka-chaos-proxy: a Kafka protocol proxy that logs consumer-group coordination and injects
faults on demand.

Everything the distribution installs lives under this one name, so nothing collides with a
user's own `proxy` or `faults` module. The sub-packages are the repository's top-level folders
(linked here in a checkout, copied in a wheel), and their dependencies point one way:
`lab -> proxy -> faults -> codec`:

* `kafka_chaos_proxy.codec`  the Kafka wire protocol, generated from Kafka's message specs; pure;
* `kafka_chaos_proxy.faults` fault rules, their matching, triggers and the engine; pure;
* `kafka_chaos_proxy.proxy`  the network side: listeners, pipeline, event log, admin API, CLI,
  the public Python API and the pytest plugin, the local real-Kafka provider;
* `kafka_chaos_proxy.lab`    the client matrix and scenario runner, beside the product.

The public Python API (`ChaosProxy`, `AsyncChaosProxy`, `Fault`, the exceptions, ...:
`kafka_chaos_proxy.proxy.api`) is importable from here too, `from kafka_chaos_proxy import
ChaosProxy`, but loaded only when first asked for (a module `__getattr__`): this module
imports nothing itself, so `import kafka_chaos_proxy.codec` stays as light as the codec.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kafka_chaos_proxy.proxy.api import (
        AdminError,
        AdminRefused,
        AdminUnreachable,
        AsyncChaosProxy,
        ChaosProxy,
        ChaosProxyError,
        EventTimeout,
        Fault,
        KafkaCluster,
        ProxyStartError,
        RuleRejected,
        ScenarioProblem,
        ScenarioResult,
    )

try:
    __version__ = version("kafka-chaos-proxy")
except PackageNotFoundError:  # a checkout on sys.path without an install
    __version__ = "0+unknown"

#: `__version__`, and the names of `kafka_chaos_proxy.proxy.api` offered here.
__all__ = [
    "AdminError",
    "AdminRefused",
    "AdminUnreachable",
    "AsyncChaosProxy",
    "ChaosProxy",
    "ChaosProxyError",
    "EventTimeout",
    "Fault",
    "KafkaCluster",
    "ProxyStartError",
    "RuleRejected",
    "ScenarioProblem",
    "ScenarioResult",
    "__version__",
]
_API = frozenset(__all__) - {"__version__"}


def __getattr__(name: str) -> Any:
    """The public API's names, imported on first use."""
    if name in _API:
        from kafka_chaos_proxy.proxy import api

        value = getattr(api, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
