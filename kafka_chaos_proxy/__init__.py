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

This module imports nothing itself, so `import kafka_chaos_proxy.codec` stays as light as the
codec.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kafka-chaos-proxy")
except PackageNotFoundError:  # a checkout on sys.path without an install
    __version__ = "0+unknown"
