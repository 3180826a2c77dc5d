"""Run the whole proxy process: (optionally) a local broker, the data plane, the control plane,
until SIGINT/SIGTERM; then a graceful, bounded shutdown in reverse order.

Kept apart from the CLI so that tests and benchmarks can run exactly what `kafka-chaos-proxy
run` runs, in a subprocess or in-process.

Start-up checks what it can before anything starts (the faults file, every port, Java and
Maven), so that a mistake costs a second, not a broker start, and leaves nothing behind; what
fails later is still turned into one `StartupError` line after everything started is stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import structlog
import uvloop

from kafka_chaos_proxy.proxy.config import ProxyConfig, parse_bootstrap
from kafka_chaos_proxy.proxy.control_plane import ControlPlaneOptions, build_control_plane
from kafka_chaos_proxy.proxy.server import ProxyServer

log = structlog.get_logger("kcp.runtime")


class StartupError(RuntimeError):
    """The proxy cannot start for a reason the user can fix: the message is one line that
    names it (the CLI prints it and exits 2)."""


@dataclass
class RunOptions:
    config: ProxyConfig  # bootstrap_servers empty: start a local broker
    control: ControlPlaneOptions
    kafka_version: str | None = None


def _banner(server: ProxyServer, admin_url: str | None, upstream_note: str = "") -> str:
    """What a new user needs: where clients connect, the ports behind it, the admin API and
    how to drive it. The first line is parsed by tools (bench), so it keeps its shape."""
    bootstrap = server.bootstrap_servers
    lines = [f"kafka-chaos-proxy: bootstrap servers for clients: {bootstrap}",
             f"  clients:     point bootstrap.servers at {bootstrap}; they learn the broker "
             "listeners from it"]
    host = server.config.advertised
    brokers = sorted((int(str(b["node_id"])), b["proxy_port"]) for b in server.list_brokers())
    listed = ", ".join(f"{host}:{port} (node {node})" for node, port in brokers)
    base = server.config.listener_port_base
    rule = (f"broker N listens on {base}+N, N counting the brokers found from 0 (--port-base)"
            if base else "")
    lines.append(f"  brokers:     {'; '.join(p for p in (listed, rule) if p) or 'none yet'}")
    if admin_url:
        lines.append(f"  admin API:   {admin_url}")
        lines.append(f"  metrics:     {admin_url.rstrip('/')}/metrics")
    upstream = ",".join(f"{h}:{p}" for h, p in server.config.bootstrap_servers)
    lines.append(f"  proxying:    {upstream}{upstream_note}")
    lines += _security_lines(server.config)
    lines.append("  CLI:         scripts/kcp --help, e.g. scripts/kcp faults list; "
                 "Ctrl-C stops the proxy")
    return "\n".join(lines)


def _security_lines(config: ProxyConfig) -> list[str]:
    """What a client needs to connect over TLS, and how the brokers are reached."""
    from kafka_chaos_proxy.proxy.tls.contexts import self_signed_ca_file

    lines: list[str] = []
    tls = config.listener_tls
    if tls is not None:
        ca = self_signed_ca_file(tls)
        how = (f"trust the CA {ca} (self-signed for {', '.join(tls.names)})" if ca
               else f"certificate {tls.cert_file}")
        mtls = (f"; client certificates verified against {tls.client_ca_file}"
                if tls.client_ca_file else "")
        lines.append(f"  TLS:         clients connect with TLS ({tls.min_version}+); {how}{mtls}")
    up = config.upstream_tls
    if up is not None:
        verified = ("NOT VERIFIED (--upstream-tls-insecure: for tests only)" if up.insecure
                    else f"verified against {up.ca_file}" if up.ca_file
                    else "verified against the system's trust store")
        cert = f", client certificate {up.cert_file}" if up.cert_file else ""
        lines.append(f"  upstream:    TLS to the brokers, {verified}{cert}")
    if config.upstream_sasl is not None:
        lines.append(f"  own login:   SASL {config.upstream_sasl.mechanism} as "
                     f"{config.upstream_sasl.username!r} (discovery, broker-consistent faults)")
    return lines


def _check_tls(config: ProxyConfig) -> None:
    """Build the TLS contexts now (cached for the server): a bad file is one line."""
    from kafka_chaos_proxy.proxy.tls.contexts import (
        TlsConfigError,
        listener_context,
        upstream_context,
    )

    try:
        if config.listener_tls is not None:
            listener_context(config.listener_tls)
        if config.upstream_tls is not None:
            upstream_context(config.upstream_tls)
    except TlsConfigError as exc:
        raise StartupError(str(exc)) from None


@contextlib.contextmanager
def _bind_errors(host: str, port: int, flag: str) -> Iterator[None]:
    """A listener that cannot bind (taken since the start-up check) is a start-up error."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            raise
        raise StartupError(describe_bind_error(exc, host, port, flag)) from None


async def serve(config: ProxyConfig, control_options: ControlPlaneOptions,
                stop: asyncio.Event | None = None,
                on_ready: Callable[[ProxyServer, str | None], None] | None = None,
                upstream_note: str = "", banner: bool = True) -> None:
    """Run until `stop` is set or (on the main thread) SIGINT/SIGTERM arrives.

    On another thread (the Python API's in-process proxy) the process's signals belong to
    its owner, so none are taken; `banner=False` leaves the owner's stdout alone too (it
    learns the addresses from `on_ready`)."""
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
    control = build_control_plane(control_options)
    fetch_event_sink = control.events.record if control.events is not None else None
    server = ProxyServer(config, control.decider, control.observers, control.triggers,
                         fetch_event_sink)
    with _bind_errors(config.listen_host, config.port, "--port"):
        await server.start()
    try:
        with _bind_errors(control_options.admin_host, control_options.admin_port or 0,
                          "--admin-port"):
            await control.start(server)
        if banner:
            print(_banner(server, control.admin_url, upstream_note), file=sys.stdout,
                  flush=True)
        if on_ready is not None:
            on_ready(server, control.admin_url)
        if threading.current_thread() is threading.main_thread():
            # Everything made at start-up (modules, codec tables, the app) lives as long as
            # the process: out of the collector's sight, a collection walks only the objects
            # of live connections. Not in someone else's process (the in-process API).
            gc.freeze()
        await stop.wait()
        log.info("shutdown_requested")
    finally:
        await server.stop()
        await control.stop()
        log.info("proxy_stopped")


def _ports_to_bind(config: ProxyConfig, admin_host: str, admin_port: int | None
                   ) -> list[tuple[str, int, str]]:
    """(host, port, the flag that set it) of every fixed port start-up binds: the bootstrap
    listener, the first broker listener, explicit broker ports and the admin API."""
    out: list[tuple[str, int, str]] = []
    if config.port:
        out.append((config.listen_host, config.port, "--port"))
    if config.listener_port_base:  # 0: ephemeral broker listeners
        flag = "--port-base" if config.port_base is not None else (
            "--port-base (default: --port + 1)")
        out.append((config.listen_host, config.listener_port_base, flag))
    out += [(config.listen_host, port, f"--node-port {node}={port}")
            for node, port in sorted(config.node_ports.items()) if port]
    if admin_port:
        out.append((admin_host, admin_port, "--admin-port"))
    return out


def _check_ports(config: ProxyConfig, admin_host: str, admin_port: int | None) -> str | None:
    """The first port that cannot be bound, said in one line; None when all can."""
    from kafka_chaos_proxy.proxy.listeners import bind_socket

    for host, port, flag in _ports_to_bind(config, admin_host, admin_port):
        try:
            bind_socket(host, port, backlog=1).close()
        except OSError as exc:
            return describe_bind_error(exc, host, port, flag)
    return None


def describe_bind_error(exc: OSError, host: str, port: int, flag: str) -> str:
    """One line: the port, the flag that set it, what holds it (when /proc tells)."""
    if exc.errno != errno.EADDRINUSE:
        return f"cannot listen on {host}:{port} ({flag}): {exc.strerror or exc}"
    holder = port_holder(port)
    held = f"held by {holder}" if holder else "held by another process"
    return (f"port {port} ({flag}) is already in use, {held}: stop it or choose another "
            f"port with {flag.split()[0]}")


def port_holder(port: int) -> str | None:
    """"name (pid N)" of a process listening on TCP `port`, best effort: the listening
    socket's inode from /proc/net/tcp{,6}, then the /proc/*/fd link that points at it."""
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    links = {f"socket:[{inode}]" for inode in inodes}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if any(os.readlink(fd) in links for fd in (proc / "fd").iterdir()):
                return f"{_process_name(proc)} (pid {proc.name})"
    return None


def _process_name(proc: Path) -> str:
    """The command's name: `comm` is cut at 15 characters ("kafka-chaos-pro"), so a
    script run by an interpreter is named by the script from its command line."""
    comm = (proc / "comm").read_text().strip()
    with contextlib.suppress(OSError):
        args = [a for a in (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
                if a]
        if args and Path(args[0]).name.startswith("python") and len(args) > 1:
            if args[1] == "-m":
                return " ".join(["python", *args[1:3]])
            if not args[1].startswith("-"):
                return Path(args[1]).name
        elif args:
            return Path(args[0]).name
    return comm


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()  # sl local rem st ... uid timeout inode
            if (len(fields) > 9 and fields[3] == "0A"  # TCP_LISTEN
                    and int(fields[1].rsplit(":", 1)[1], 16) == port and fields[9] != "0"):
                inodes.add(fields[9])
    return inodes


def preflight(options: RunOptions) -> None:
    """Every check that needs nothing started: the faults file, the ports, and (for a local
    broker) Java and Maven. Raises `StartupError`."""
    control = options.control
    if control.faults_file is not None:
        from kafka_chaos_proxy.faults.loader import RulesFileError, load_rules_file

        try:
            load_rules_file(control.faults_file)
        except RulesFileError as exc:
            raise StartupError("; ".join(str(exc).splitlines())) from None
    problem = _check_ports(options.config, control.admin_host, control.admin_port)
    if problem:
        raise StartupError(problem)
    _check_tls(options.config)
    if not options.config.bootstrap_servers:
        from kafka_chaos_proxy.proxy.real_kafka import MissingToolError, check_tools
        from kafka_chaos_proxy.proxy.real_kafka.provider import choose_kind

        try:
            if choose_kind() == "local":
                check_tools(options.kafka_version)
        except (MissingToolError, ValueError) as exc:
            raise StartupError(str(exc)) from None


@contextlib.contextmanager
def upstream(options: RunOptions) -> Iterator[tuple[ProxyConfig, str]]:
    """The data plane's config with its upstream, and a note for the banner: as given, or,
    without bootstrap servers, a broker from `provide_kafka` (KAFKA_BOOTSTRAP_SERVERS,
    testcontainers, or a local broker started here and stopped on exit). `StartupError`
    when that broker cannot be had."""
    if options.config.bootstrap_servers:
        yield options.config, ""
        return
    from kafka_chaos_proxy.proxy.real_kafka import (
        BrokerStartError,
        MavenError,
        ProviderUnavailable,
        provide_kafka,
    )

    print("kafka-chaos-proxy: starting a local Kafka broker...", file=sys.stderr, flush=True)
    with contextlib.ExitStack() as stack:
        try:
            cluster = stack.enter_context(provide_kafka(version=options.kafka_version))
        except (BrokerStartError, MavenError, ProviderUnavailable, ValueError) as exc:
            raise StartupError(str(exc).splitlines()[0]) from None
        config = replace(options.config,
                         bootstrap_servers=parse_bootstrap(cluster.bootstrap_servers))
        yield config, f" (a local Kafka {cluster.version} broker, stopped with the proxy)"


def run(options: RunOptions) -> int:
    """Blocking entry point for the CLI; `StartupError` when the proxy cannot start."""
    preflight(options)
    with upstream(options) as (config, note):
        uvloop.run(serve(config, options.control, upstream_note=note))
    return 0
