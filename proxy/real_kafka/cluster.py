"""The handle tests get: where the cluster is and, for local clusters, how to fail nodes.

Why a plain dataclass with an optional controller: tests written against an external or a
container broker use the same fields, and only failover tests (local kind) call
`stop_node`/`start_node`; those raise a clear error elsewhere instead of doing nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


class NodeControl(Protocol):
    """What a provider must offer for per-node failure injection."""

    def stop_node(self, node_id: int, *, graceful: bool = True) -> None: ...

    def start_node(self, node_id: int) -> None: ...

    def is_running(self, node_id: int) -> bool: ...


@dataclass
class KafkaCluster:
    """A running Kafka cluster.

    `nodes` maps node id -> (host, port) of the client listener; `log_paths` are the server
    logs to read (or print) when something fails; `kind` is "external", "testcontainers" or
    "local".
    """

    bootstrap_servers: str
    nodes: dict[int, tuple[str, int]]
    version: str
    log_paths: list[Path]
    kind: str
    control: NodeControl | None = field(default=None, repr=False, compare=False)

    @property
    def bootstrap(self) -> str:
        """`bootstrap_servers`, by the name the Python API and the pytest plugin use
        (`kafka_broker.bootstrap`, `ChaosProxy.bootstrap`)."""
        return self.bootstrap_servers

    def _control(self) -> NodeControl:
        if self.control is None:
            raise NotImplementedError(
                f"per-node control needs a local cluster; this one is {self.kind!r}"
            )
        return self.control

    def stop_node(self, node_id: int, *, graceful: bool = True) -> None:
        """Stop one node: SIGTERM (controlled shutdown) or, with graceful=False, SIGKILL."""
        self._control().stop_node(node_id, graceful=graceful)

    def start_node(self, node_id: int) -> None:
        """Restart a stopped node with its old ports and data; returns once it serves."""
        self._control().start_node(node_id)

    def is_running(self, node_id: int) -> bool:
        return self._control().is_running(node_id)

    def log_path(self, node_id: int) -> Path | None:
        """The server log of one node, if known (local kind)."""
        for path in self.log_paths:
            if path.parent.name == f"node-{node_id}":
                return path
        return None
