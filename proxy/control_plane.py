"""Everything around the data plane that a running proxy needs: the fault engine, the
observers of coordination traffic (event log, group state, metrics) and the admin HTTP server.

The data plane (`proxy.server`) only knows the two small interfaces it is handed here: a
`FaultDecider` and a list of `ExchangeObserver`s. Keeping their construction in one place lets
the CLI, the tests and the benchmarks start exactly the same proxy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from faults.decision import PASS, Decision, FaultDecider, RequestView
from proxy.exchange import ExchangeObserver


class ProxyInfo(Protocol):
    """What the admin API may ask of the running data plane."""

    def list_connections(self) -> list[dict[str, Any]]: ...

    def list_brokers(self) -> list[dict[str, Any]]: ...


@dataclass
class ControlPlaneOptions:
    admin_host: str = "127.0.0.1"
    admin_port: int | None = 9190  # None: no admin HTTP server
    admin_token: str | None = None
    faults_file: Path | None = None
    event_log_path: Path | None = None
    event_buffer_size: int = 10_000
    metrics_client_ids: bool = False
    seed: int | None = None


class _NoFaults:
    def on_request(self, request: RequestView) -> Decision:
        return PASS


@dataclass
class ControlPlane:
    options: ControlPlaneOptions
    decider: FaultDecider = field(default_factory=_NoFaults)
    observers: list[ExchangeObserver] = field(default_factory=list)
    admin_url: str | None = None

    async def start(self, proxy: ProxyInfo) -> None:
        """Start the admin HTTP server (if configured) on the running event loop."""

    async def stop(self) -> None:
        """Stop the admin HTTP server and flush the event log."""


def build_control_plane(options: ControlPlaneOptions) -> ControlPlane:
    return ControlPlane(options=options)
