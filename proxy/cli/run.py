"""`kafka-chaos-proxy run`: start the proxy in front of a cluster (or a local broker).

Every setting comes from a flag, a `KCP_<FLAG_NAME>` variable or a `--config` file, in that
order (`proxy.settings`); the options here only parse flags and group them in `--help`. The
settings map onto `ProxyConfig` / `ControlPlaneOptions`; the process itself is
`proxy.runtime.run`, shared with tests and benchmarks.
"""

from __future__ import annotations

from dataclasses import replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from kafka_chaos_proxy.faults.engine import DEFAULT_MAX_RULES
from kafka_chaos_proxy.proxy.cli import security_options as sec
from kafka_chaos_proxy.proxy.config import (
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
from kafka_chaos_proxy.proxy.control_plane import ControlPlaneOptions
from kafka_chaos_proxy.proxy.events import (
    DEFAULT_BUFFER_BYTES,
    DEFAULT_FILE_KEEP,
    DEFAULT_FILE_MAX_BYTES,
    EventLogOptions,
)
from kafka_chaos_proxy.proxy.settings import RunSettings, SettingsProblem, load_settings

_LISTENERS = "Listeners (where clients connect)"
_UPSTREAM = "Upstream (the real cluster, or a local broker)"
_ADMIN = "Admin (HTTP API and /metrics)"
_FAULTS = "Faults"
_EVENTS = "Events (coordination log)"
_LIMITS = "Limits (everything a peer sends is bounded)"
_LOGGING = "Logging"


def package_version() -> str:
    """The installed distribution's version: one number, kept in pyproject.toml only."""
    try:
        return version("kafka-chaos-proxy")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def _node_ports(items: list[str]) -> dict[int, int]:
    out: dict[int, int] = {}
    for item in items:
        node, sep, port = item.partition("=")
        if not sep or not node.strip().lstrip("-").isdigit() or not port.strip().isdigit():
            raise typer.BadParameter(f"expected ID=PORT, got {item!r}", param_hint="--node-port")
        out[int(node)] = int(port)
    return out


def run(
    ctx: typer.Context,
    config_file: Annotated[Path | None, typer.Option(
        "--config", help="TOML or YAML file of settings (keys: these flags with underscores). "
        "Precedence: flag > KCP_<FLAG_NAME> variable > this file > default.")] = None,
    bootstrap_server: Annotated[str | None, typer.Option(
        "--bootstrap-server", "-b", rich_help_panel=_UPSTREAM,
        help="Real cluster HOST:PORT[,HOST:PORT]. Omitted: start a local Kafka broker.")] = None,
    kafka_version: Annotated[str | None, typer.Option(
        rich_help_panel=_UPSTREAM,
        help="Version of the local broker started without --bootstrap-server.")] = None,
    listen_host: Annotated[str, typer.Option(
        help="Address the listeners bind.", rich_help_panel=_LISTENERS)] = "127.0.0.1",
    advertised_host: Annotated[str | None, typer.Option(
        help="Host clients are told to connect to (default: --listen-host).",
        rich_help_panel=_LISTENERS)] = None,
    port: Annotated[int, typer.Option(
        help="Bootstrap listener port (0: ephemeral).", rich_help_panel=_LISTENERS)] = 9192,
    port_base: Annotated[int | None, typer.Option(
        help="First broker listener port; broker N discovered gets base+N (default port+1).",
        rich_help_panel=_LISTENERS)] = None,
    node_port: Annotated[list[str] | None, typer.Option(
        help="Explicit broker listener port, ID=PORT (repeatable).",
        rich_help_panel=_LISTENERS)] = None,
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
    admin_host: Annotated[str, typer.Option(
        help="Admin HTTP bind address.", rich_help_panel=_ADMIN)] = "127.0.0.1",
    admin_port: Annotated[int, typer.Option(
        help="Admin HTTP port (0: off).", rich_help_panel=_ADMIN)] = 9190,
    no_admin: Annotated[bool, typer.Option(
        "--no-admin", help="No admin HTTP server.", rich_help_panel=_ADMIN)] = False,
    admin_token: Annotated[str | None, typer.Option(
        help="Bearer token required by the admin API. Visible to other users in `ps`: "
             "prefer KCP_ADMIN_TOKEN or --admin-token-file.", rich_help_panel=_ADMIN)] = None,
    admin_token_file: Annotated[Path | None, typer.Option(
        help="File whose first line is the admin API's bearer token.",
        rich_help_panel=_ADMIN)] = None,
    admin_allowed_host: Annotated[list[str] | None, typer.Option(
        help="Host name the admin API also answers to, besides localhost and --admin-host "
             "(repeatable; '*' for any, e.g. behind a container's port mapping).",
        rich_help_panel=_ADMIN)] = None,
    metrics_client_ids: Annotated[bool, typer.Option(
        "--metrics-client-ids", rich_help_panel=_ADMIN,
        help="Count requests per client id in /metrics (opt-in: client ids are chosen by "
             "clients, so the series are capped; ids beyond the cap count as 'other').")
    ] = False,
    faults: Annotated[Path | None, typer.Option(
        "--faults", help="YAML/JSON fault rules loaded at start-up (checked before anything "
        "starts).", rich_help_panel=_FAULTS)] = None,
    seed: Annotated[int | None, typer.Option(
        help="Seed for fault probabilities.", rich_help_panel=_FAULTS)] = None,
    max_rules: Annotated[int, typer.Option(
        min=1, help="Fault rules held at most (adding more is refused with 409).",
        rich_help_panel=_LIMITS)] = DEFAULT_MAX_RULES,
    event_log: Annotated[Path | None, typer.Option(
        help="Append coordination events to this JSON-lines file.",
        rich_help_panel=_EVENTS)] = None,
    event_log_max_bytes: Annotated[int, typer.Option(
        min=1, help="Rotate the event log file past this size.", rich_help_panel=_EVENTS)
    ] = DEFAULT_FILE_MAX_BYTES,
    event_log_keep: Annotated[int, typer.Option(
        min=0, help="Rotated event log files kept (<file>.1 ...).", rich_help_panel=_EVENTS)
    ] = DEFAULT_FILE_KEEP,
    event_buffer_bytes: Annotated[int, typer.Option(
        min=1, help="Bytes of recent events kept in memory for the admin API.",
        rich_help_panel=_EVENTS)] = DEFAULT_BUFFER_BYTES,
    fetch_events: Annotated[bool, typer.Option(
        "--fetch-events", rich_help_panel=_EVENTS,
        help="Also log which partitions each connection fetches (a Fetch event when its "
             "fetch session's partitions change, else at most one a second per connection). "
             "Costs CPU on the data path: every Fetch request's body is decoded, and every "
             "Metadata answer whole (for topic ids).")] = False,
    log_format: Annotated[str | None, typer.Option(
        help="json or console (default: console on a TTY).", rich_help_panel=_LOGGING)] = None,
    log_level: Annotated[str, typer.Option(
        help="debug, info, warning or error.", rich_help_panel=_LOGGING)] = "info",
    capture: Annotated[Path | None, typer.Option(
        help="Write the frames crossing the proxy to this file (read it with `decode "
             "--capture`).", rich_help_panel=_LOGGING)] = None,
    capture_api: Annotated[list[str] | None, typer.Option(
        help="Capture only this API, e.g. JoinGroup (repeatable; default: all).",
        rich_help_panel=_LOGGING)] = None,
    # TLS and SASL (`proxy.cli.security_options`: help, panels, checks)
    tls_cert: sec.TlsCert = None,
    tls_key: sec.TlsKey = None,
    tls_client_ca: sec.TlsClientCa = None,
    tls_min_version: sec.TlsMinVersion = sec.DEFAULT_TLS_MIN_VERSION,
    tls_self_signed: sec.TlsSelfSigned = False,
    tls_self_signed_dir: sec.TlsSelfSignedDir = None,
    upstream_tls: sec.UpstreamTlsOn = False,
    upstream_tls_ca: sec.UpstreamTlsCa = None,
    upstream_tls_cert: sec.UpstreamTlsCert = None,
    upstream_tls_key: sec.UpstreamTlsKey = None,
    upstream_tls_insecure: sec.UpstreamTlsInsecure = False,
    upstream_tls_min_version: sec.UpstreamTlsMinVersion = sec.DEFAULT_TLS_MIN_VERSION,
    upstream_sasl_mechanism: sec.UpstreamSaslMechanism = None,
    upstream_sasl_username: sec.UpstreamSaslUsername = None,
    upstream_sasl_password_file: sec.UpstreamSaslPasswordFile = None,
) -> None:
    """Run the proxy: point clients at the printed bootstrap address."""
    from kafka_chaos_proxy.proxy.logging import configure_logging
    from kafka_chaos_proxy.proxy.runtime import RunOptions, StartupError
    from kafka_chaos_proxy.proxy.runtime import run as run_proxy

    flags = _given_flags(ctx)
    try:
        settings = load_settings(flags, config_file)
    except SettingsProblem as exc:
        _startup_error(str(exc))
    configure_logging(settings.log_format, settings.log_level)
    config, control = _build(settings, flags)
    try:
        control.check()
    except ValueError as exc:
        _startup_error(str(exc))
    try:
        code = run_proxy(RunOptions(config, control, settings.kafka_version))
    except StartupError as exc:
        _startup_error(str(exc))
    raise typer.Exit(code)


def _given_flags(ctx: typer.Context) -> dict[str, Any]:
    """The options typed on the command line: only they may override KCP_* and the file."""
    def typed(name: str) -> bool:
        # By name: typer ships its own click, whose ParameterSource is not click's.
        source = ctx.get_parameter_source(name)
        return source is not None and source.name == "COMMANDLINE"

    return {name: value for name, value in ctx.params.items()
            if name != "config_file" and typed(name)}


def _build(settings: RunSettings, flags: dict[str, Any]
           ) -> tuple[ProxyConfig, ControlPlaneOptions]:
    """The data plane's and the control plane's options from the settings."""
    s = settings
    try:
        upstream = parse_bootstrap(s.bootstrap_server) if s.bootstrap_server else []
    except ValueError as exc:
        _startup_error(f"--bootstrap-server: {exc}")
    try:
        node_ports = _node_ports(s.node_port)
    except typer.BadParameter as exc:  # from KCP_NODE_PORT or the file too: one line
        _startup_error(f"--node-port: {exc.message}")
    config = ProxyConfig(
        bootstrap_servers=upstream,
        listen_host=s.listen_host,
        advertised_host=s.advertised_host,
        port=s.port,
        port_base=s.port_base,
        node_ports=node_ports,
        max_frame_bytes=s.max_frame_bytes,
        max_inflight=s.max_inflight,
        max_brokers=s.max_brokers,
        listen_backlog=s.listen_backlog,
        max_connections=s.max_connections,
        max_connections_per_ip=s.max_connections_per_ip,
        max_buffered_bytes_per_connection=s.max_buffered_bytes_per_connection,
        max_buffered_bytes_total=s.max_buffered_bytes_total,
        idle_timeout_s=s.idle_timeout_s or None,
        request_timeout_s=s.request_timeout_s or None,
        handshake_timeout_s=s.handshake_timeout_s or None,
        capture_path=s.capture,
        capture_apis=tuple(s.capture_api),
        fetch_events=s.fetch_events,
    )
    try:
        config = replace(config, **sec.security_config(s, s.listen_host, config.advertised))
    except SettingsProblem as exc:
        _startup_error(str(exc))
    control = ControlPlaneOptions(
        admin_host=s.admin_host,
        admin_port=None if s.no_admin or s.admin_port == 0 else s.admin_port,
        admin_token=_admin_token(s, flags),
        faults_file=s.faults,
        max_rules=s.max_rules,
        seed=s.seed,
        metrics_client_ids=s.metrics_client_ids,
        admin_allowed_hosts=tuple(s.admin_allowed_host),
        events=EventLogOptions(path=s.event_log, buffer_bytes=s.event_buffer_bytes,
                               file_max_bytes=s.event_log_max_bytes,
                               file_keep=s.event_log_keep),
    )
    return config, control


def _startup_error(message: str) -> NoReturn:
    """A start-up mistake: one line naming what to fix, exit code 2."""
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    raise typer.Exit(2)


def _admin_token(settings: RunSettings, flags: dict[str, Any]) -> str | None:
    """--admin-token, then --admin-token-file, each from the command line before the same
    setting from KCP_* or the config file (a typed flag beats an exported variable)."""
    value, path = settings.admin_token, settings.admin_token_file
    if "admin_token_file" in flags and "admin_token" not in flags:
        value = None
    if value:
        if "admin_token" in flags:
            typer.echo("warning: --admin-token is visible to other users in `ps`; prefer "
                       "KCP_ADMIN_TOKEN or --admin-token-file", err=True)
        return value
    if path is not None:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            _startup_error(f"--admin-token-file: cannot read {path}: {exc}")
        token = lines[0].strip() if lines else ""
        if not token:
            _startup_error(f"--admin-token-file: {path} has an empty first line")
        return token
    return None


def register(app: typer.Typer) -> None:
    """Add the `run` command to the CLI app."""
    app.command("run")(run)
