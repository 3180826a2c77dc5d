"""Run the whole proxy process: (optionally) a local broker, the data plane, the control plane,
until SIGINT/SIGTERM; then a graceful, bounded shutdown in reverse order.

Kept apart from the CLI so that tests and benchmarks can run exactly what `kafka-chaos-proxy
run` runs, in a subprocess or in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace

import structlog
import uvloop

from proxy.config import ProxyConfig, parse_bootstrap
from proxy.control_plane import ControlPlaneOptions, build_control_plane
from proxy.server import ProxyServer

log = structlog.get_logger("kcp.runtime")


@dataclass
class RunOptions:
    config: ProxyConfig  # bootstrap_servers empty: start a local broker
    control: ControlPlaneOptions
    kafka_version: str | None = None


def _banner(server: ProxyServer, admin_url: str | None) -> str:
    lines = [f"kafka-chaos-proxy: bootstrap servers for clients: {server.bootstrap_servers}"]
    if admin_url:
        lines.append(f"  admin API:   {admin_url}")
        lines.append(f"  metrics:     {admin_url.rstrip('/')}/metrics")
    upstream = ",".join(f"{h}:{p}" for h, p in server.config.bootstrap_servers)
    lines.append(f"  proxying:    {upstream}")
    return "\n".join(lines)


async def serve(config: ProxyConfig, control_options: ControlPlaneOptions,
                stop: asyncio.Event | None = None,
                on_ready: Callable[[ProxyServer, str | None], None] | None = None) -> None:
    """Run until `stop` is set or SIGINT/SIGTERM arrives."""
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    control = build_control_plane(control_options)
    server = ProxyServer(config, control.decider, control.observers)
    await server.start()
    try:
        await control.start(server)
        print(_banner(server, control.admin_url), file=sys.stdout, flush=True)
        if on_ready is not None:
            on_ready(server, control.admin_url)
        await stop.wait()
        log.info("shutdown_requested")
    finally:
        await server.stop()
        await control.stop()
        log.info("proxy_stopped")


def run(options: RunOptions) -> int:
    """Blocking entry point for the CLI."""
    with contextlib.ExitStack() as stack:
        config = options.config
        if not config.bootstrap_servers:
            from proxy.real_kafka import provide_kafka

            print("kafka-chaos-proxy: starting a local Kafka broker...", file=sys.stderr,
                  flush=True)
            cluster = stack.enter_context(provide_kafka(version=options.kafka_version))
            config = replace(config, bootstrap_servers=parse_bootstrap(cluster.bootstrap_servers))
        uvloop.run(serve(config, options.control))
    return 0
