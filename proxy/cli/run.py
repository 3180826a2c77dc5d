"""`kafka-chaos-proxy run`: start the proxy in front of a cluster (or a local broker).

Every option maps onto `ProxyConfig` / `ControlPlaneOptions`; the process itself is
`proxy.runtime.run`, shared with tests and benchmarks.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from proxy.config import DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_INFLIGHT, ProxyConfig, parse_bootstrap
from proxy.control_plane import ControlPlaneOptions


def _node_ports(items: list[str]) -> dict[int, int]:
    out: dict[int, int] = {}
    for item in items:
        node, sep, port = item.partition("=")
        if not sep or not node.strip().lstrip("-").isdigit() or not port.strip().isdigit():
            raise typer.BadParameter(f"expected ID=PORT, got {item!r}", param_hint="--node-port")
        out[int(node)] = int(port)
    return out


def run(
    bootstrap_server: Annotated[str | None, typer.Option(
        "--bootstrap-server", "-b",
        help="Real cluster HOST:PORT[,HOST:PORT]. Omitted: start a local Kafka broker.")] = None,
    listen_host: Annotated[str, typer.Option(help="Address the listeners bind.")] = "127.0.0.1",
    advertised_host: Annotated[str | None, typer.Option(
        help="Host clients are told to connect to (default: --listen-host).")] = None,
    port: Annotated[int, typer.Option(help="Bootstrap listener port (0: ephemeral).")] = 9192,
    port_base: Annotated[int | None, typer.Option(
        help="First broker listener port; broker N discovered gets base+N (default port+1).")
    ] = None,
    node_port: Annotated[list[str] | None, typer.Option(
        help="Explicit broker listener port, ID=PORT (repeatable).")] = None,
    max_frame_bytes: Annotated[int, typer.Option(
        help="Largest client frame accepted.")] = DEFAULT_MAX_FRAME_BYTES,
    max_inflight: Annotated[int, typer.Option(
        help="Requests awaiting a response per connection before reading pauses.")
    ] = DEFAULT_MAX_INFLIGHT,
    admin_host: Annotated[str, typer.Option(help="Admin HTTP bind address.")] = "127.0.0.1",
    admin_port: Annotated[int, typer.Option(help="Admin HTTP port (0: off).")] = 9190,
    no_admin: Annotated[bool, typer.Option("--no-admin", help="No admin HTTP server.")] = False,
    admin_token: Annotated[str | None, typer.Option(
        envvar="KCP_ADMIN_TOKEN", help="Bearer token required by the admin API.")] = None,
    faults: Annotated[Path | None, typer.Option(
        "--faults", help="YAML/JSON fault rules loaded at start-up.")] = None,
    event_log: Annotated[Path | None, typer.Option(
        help="Append coordination events to this JSON-lines file.")] = None,
    metrics_client_ids: Annotated[bool, typer.Option(
        "--metrics-client-ids",
        help="Count requests per client id in /metrics (opt-in: client ids are chosen by "
             "clients, so the series are capped; ids beyond the cap count as 'other').")
    ] = False,
    seed: Annotated[int | None, typer.Option(help="Seed for fault probabilities.")] = None,
    log_format: Annotated[str | None, typer.Option(
        help="json or console (default: console on a TTY).")] = None,
    kafka_version: Annotated[str | None, typer.Option(
        help="Version of the local broker started without --bootstrap-server.")] = None,
) -> None:
    """Run the proxy: point clients at the printed bootstrap address."""
    from proxy.logging import configure_logging
    from proxy.runtime import RunOptions
    from proxy.runtime import run as run_proxy

    if log_format not in (None, "json", "console"):
        raise typer.BadParameter("json or console", param_hint="--log-format")
    configure_logging(log_format)
    config = ProxyConfig(
        bootstrap_servers=parse_bootstrap(bootstrap_server) if bootstrap_server else [],
        listen_host=listen_host,
        advertised_host=advertised_host,
        port=port,
        port_base=port_base,
        node_ports=_node_ports(node_port or []),
        max_frame_bytes=max_frame_bytes,
        max_inflight=max_inflight,
    )
    control = ControlPlaneOptions(
        admin_host=admin_host,
        admin_port=None if no_admin or admin_port == 0 else admin_port,
        admin_token=admin_token or os.environ.get("KCP_ADMIN_TOKEN"),
        faults_file=faults,
        event_log_path=event_log,
        metrics_client_ids=metrics_client_ids,
        seed=seed,
    )
    from proxy.real_kafka import ProviderUnavailable

    try:
        code = run_proxy(RunOptions(config, control, kafka_version))
    except ProviderUnavailable as exc:  # e.g. a forced provider whose extra is not installed
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add the `run` command to the CLI app."""
    app.command("run")(run)
