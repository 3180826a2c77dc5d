"""`kafka-chaos-proxy run`: start the proxy in front of a cluster (or a local broker).

Every option maps onto `ProxyConfig` / `ControlPlaneOptions`; the process itself is
`proxy.runtime.run`, shared with tests and benchmarks.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from faults.engine import DEFAULT_MAX_RULES
from proxy.config import (
    DEFAULT_HANDSHAKE_TIMEOUT_S,
    DEFAULT_IDLE_TIMEOUT_S,
    DEFAULT_LISTEN_BACKLOG,
    DEFAULT_MAX_BROKERS,
    DEFAULT_MAX_BUFFERED_BYTES_PER_CONNECTION,
    DEFAULT_MAX_BUFFERED_BYTES_TOTAL,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_CONNECTIONS_PER_IP,
    DEFAULT_MAX_FRAME_BYTES,
    DEFAULT_MAX_INFLIGHT,
    DEFAULT_REQUEST_TIMEOUT_S,
    ProxyConfig,
    parse_bootstrap,
)
from proxy.control_plane import ControlPlaneOptions
from proxy.events import (
    DEFAULT_BUFFER_BYTES,
    DEFAULT_FILE_KEEP,
    DEFAULT_FILE_MAX_BYTES,
    EventLogOptions,
)

_LIMITS = "Limits (everything a peer sends is bounded)"


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
        help="Largest client frame accepted.", rich_help_panel=_LIMITS)
    ] = DEFAULT_MAX_FRAME_BYTES,
    max_inflight: Annotated[int, typer.Option(
        help="Requests awaiting a response per connection before reading pauses.",
        rich_help_panel=_LIMITS)] = DEFAULT_MAX_INFLIGHT,
    max_brokers: Annotated[int, typer.Option(
        min=1, help="Broker listeners opened at most (brokers beyond are refused, logged).",
        rich_help_panel=_LIMITS)] = DEFAULT_MAX_BROKERS,
    listen_backlog: Annotated[int, typer.Option(
        min=1, help="Listen backlog of every listener.", rich_help_panel=_LIMITS)
    ] = DEFAULT_LISTEN_BACKLOG,
    max_connections: Annotated[int, typer.Option(
        min=1, help="Client connections at once; more are refused (logged, counted).",
        rich_help_panel=_LIMITS)] = DEFAULT_MAX_CONNECTIONS,
    max_connections_per_ip: Annotated[int | None, typer.Option(
        min=1, help="Client connections at once from one address (default: no cap).",
        rich_help_panel=_LIMITS)] = DEFAULT_MAX_CONNECTIONS_PER_IP,
    max_buffered_bytes_per_connection: Annotated[int, typer.Option(
        min=1, help="Bytes of frames one connection may have assembled at once.",
        rich_help_panel=_LIMITS)] = DEFAULT_MAX_BUFFERED_BYTES_PER_CONNECTION,
    max_buffered_bytes_total: Annotated[int, typer.Option(
        min=1, help="Bytes of frames all connections together may have assembled.",
        rich_help_panel=_LIMITS)] = DEFAULT_MAX_BUFFERED_BYTES_TOTAL,
    idle_timeout_s: Annotated[float, typer.Option(
        min=0, help="Close a connection idle this long (0: never).",
        rich_help_panel=_LIMITS)] = DEFAULT_IDLE_TIMEOUT_S or 0,
    request_timeout_s: Annotated[float, typer.Option(
        min=0, help="Close a connection whose frame takes longer to arrive (0: never).",
        rich_help_panel=_LIMITS)] = DEFAULT_REQUEST_TIMEOUT_S or 0,
    handshake_timeout_s: Annotated[float, typer.Option(
        min=0, help="Close a connection with no complete request this long after accept "
        "(0: never).", rich_help_panel=_LIMITS)] = DEFAULT_HANDSHAKE_TIMEOUT_S or 0,
    admin_host: Annotated[str, typer.Option(help="Admin HTTP bind address.")] = "127.0.0.1",
    admin_port: Annotated[int, typer.Option(help="Admin HTTP port (0: off).")] = 9190,
    no_admin: Annotated[bool, typer.Option("--no-admin", help="No admin HTTP server.")] = False,
    admin_token: Annotated[str | None, typer.Option(
        help="Bearer token required by the admin API. Visible to other users in `ps`: "
             "prefer KCP_ADMIN_TOKEN or --admin-token-file.")] = None,
    admin_token_file: Annotated[Path | None, typer.Option(
        help="File whose first line is the admin API's bearer token.")] = None,
    admin_allowed_host: Annotated[list[str] | None, typer.Option(
        help="Host name the admin API also answers to, besides localhost and --admin-host "
             "(repeatable; '*' for any, e.g. behind a container's port mapping).")] = None,
    faults: Annotated[Path | None, typer.Option(
        "--faults", help="YAML/JSON fault rules loaded at start-up.")] = None,
    event_log: Annotated[Path | None, typer.Option(
        help="Append coordination events to this JSON-lines file.")] = None,
    event_log_max_bytes: Annotated[int, typer.Option(
        min=1, help="Rotate the event log file past this size.")] = DEFAULT_FILE_MAX_BYTES,
    event_log_keep: Annotated[int, typer.Option(
        min=0, help="Rotated event log files kept (<file>.1 ...).")] = DEFAULT_FILE_KEEP,
    event_buffer_bytes: Annotated[int, typer.Option(
        min=1, help="Bytes of recent events kept in memory for the admin API.")
    ] = DEFAULT_BUFFER_BYTES,
    metrics_client_ids: Annotated[bool, typer.Option(
        "--metrics-client-ids",
        help="Count requests per client id in /metrics (opt-in: client ids are chosen by "
             "clients, so the series are capped; ids beyond the cap count as 'other').")
    ] = False,
    seed: Annotated[int | None, typer.Option(help="Seed for fault probabilities.")] = None,
    max_rules: Annotated[int, typer.Option(
        min=1, help="Fault rules held at most (adding more is refused with 409).",
        rich_help_panel=_LIMITS)] = DEFAULT_MAX_RULES,
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
        max_brokers=max_brokers,
        listen_backlog=listen_backlog,
        max_connections=max_connections,
        max_connections_per_ip=max_connections_per_ip,
        max_buffered_bytes_per_connection=max_buffered_bytes_per_connection,
        max_buffered_bytes_total=max_buffered_bytes_total,
        idle_timeout_s=idle_timeout_s or None,
        request_timeout_s=request_timeout_s or None,
        handshake_timeout_s=handshake_timeout_s or None,
    )
    control = ControlPlaneOptions(
        admin_host=admin_host,
        admin_port=None if no_admin or admin_port == 0 else admin_port,
        admin_token=_admin_token(admin_token, admin_token_file),
        faults_file=faults,
        max_rules=max_rules,
        seed=seed,
        metrics_client_ids=metrics_client_ids,
        admin_allowed_hosts=tuple(admin_allowed_host or ()),
        events=EventLogOptions(path=event_log, buffer_bytes=event_buffer_bytes,
                               file_max_bytes=event_log_max_bytes, file_keep=event_log_keep),
    )
    try:
        control.check()
    except ValueError as exc:
        _startup_error(str(exc))
    from proxy.real_kafka import ProviderUnavailable

    try:
        code = run_proxy(RunOptions(config, control, kafka_version))
    except ProviderUnavailable as exc:  # e.g. a forced provider whose extra is not installed
        _startup_error(str(exc))
    raise typer.Exit(code)


def _startup_error(message: str) -> NoReturn:
    """A start-up mistake: one line naming what to fix, exit code 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _admin_token(flag: str | None, path: Path | None) -> str | None:
    """The token from the flag, the file or KCP_ADMIN_TOKEN, in that order."""
    if flag:
        typer.echo("warning: --admin-token is visible to other users in `ps`; prefer "
                   "KCP_ADMIN_TOKEN or --admin-token-file", err=True)
        return flag
    if path is not None:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            _startup_error(f"--admin-token-file: cannot read {path}: {exc}")
        token = lines[0].strip() if lines else ""
        if not token:
            _startup_error(f"--admin-token-file: {path} has an empty first line")
        return token
    return os.environ.get("KCP_ADMIN_TOKEN") or None


def register(app: typer.Typer) -> None:
    """Add the `run` command to the CLI app."""
    app.command("run")(run)
