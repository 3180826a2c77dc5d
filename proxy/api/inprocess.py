"""The proxy `kafka-chaos-proxy run` runs, on a thread of this process.

Exactly the CLI's proxy, built by the same code: `proxy.runtime.preflight` checks what it
can before anything starts, `proxy.runtime.upstream` supplies the broker (the given one, or
`provide_kafka`'s, owned and stopped here), and `proxy.runtime.serve` builds and runs the data
plane, the control plane (fault engine, event log, group state, triggers) and the admin API,
on its own uvloop in a daemon thread (`proxy.embedded.EmbeddedProxy`'s thread, bounded start
and stop). Blocking clients in the caller's thread (kafka-python, confluent-kafka) cannot
freeze it, and no signal handler or banner of the CLI touches the caller's process.

Listeners and the admin API bind port 0: the kernel picks free ports as they bind, and the
proxy reports what it bound (`bootstrap`, `admin_url`).
"""

from __future__ import annotations

import asyncio
import contextlib

from kafka_chaos_proxy.proxy.api.errors import ProxyStartError
from kafka_chaos_proxy.proxy.api.options import LaunchOptions
from kafka_chaos_proxy.proxy.config import ProxyConfig, parse_bootstrap
from kafka_chaos_proxy.proxy.control_plane import ControlPlaneOptions
from kafka_chaos_proxy.proxy.embedded import EmbeddedProxy
from kafka_chaos_proxy.proxy.events import EventLogOptions
from kafka_chaos_proxy.proxy.runtime import RunOptions, StartupError, preflight, serve, upstream
from kafka_chaos_proxy.proxy.server import ProxyServer


def run_options(options: LaunchOptions) -> RunOptions:
    """What `kafka-chaos-proxy run` would be given for these options, ports ephemeral."""
    config = ProxyConfig(
        parse_bootstrap(options.bootstrap) if options.bootstrap else [],
        listen_host=options.listen_host, port=0, port_base=0,
    )
    control = ControlPlaneOptions(
        admin_host="127.0.0.1", admin_port=0, admin_token=options.token,
        faults_file=options.faults_file, seed=options.seed,
        events=EventLogOptions(path=options.event_log),
    )
    return RunOptions(config, control, options.kafka_version)


class _Served(EmbeddedProxy):
    """`EmbeddedProxy`'s thread serving `proxy.runtime.serve` (control plane included)."""

    def __init__(self, config: ProxyConfig, control: ControlPlaneOptions) -> None:
        super().__init__(config)
        self.control = control
        self.admin_url: str | None = None

    async def _serve(self, stop: asyncio.Event) -> None:
        def ready(server: ProxyServer, admin_url: str | None) -> None:
            self.admin_url = admin_url
            self._started(server)

        await serve(self.config, self.control, stop=stop, on_ready=ready, banner=False)


class InProcessProxy:
    """Start with `start()`, stop with `stop()` (bounded by the options' timeouts)."""

    def __init__(self, options: LaunchOptions) -> None:
        self.options = options
        self._stack = contextlib.ExitStack()
        self._served: _Served | None = None

    def start(self) -> InProcessProxy:
        run = run_options(self.options)
        try:
            preflight(run)
            config, _ = self._stack.enter_context(upstream(run))
            served = _Served(config, run.control)
            self._served = served
            served.start(self.options.start_timeout_s)
        except StartupError as exc:
            self.stop()
            raise ProxyStartError(f"the proxy did not start: {exc}") from None
        except (RuntimeError, TimeoutError) as exc:
            self.stop()
            cause = exc.__cause__ if exc.__cause__ is not None else exc
            raise ProxyStartError(f"the proxy did not start: {cause}") from cause
        return self

    @property
    def bootstrap(self) -> str:
        assert self._served is not None, "start() first"
        return self._served.bootstrap_servers

    @property
    def admin_url(self) -> str:
        assert self._served is not None and self._served.admin_url, "start() first"
        return self._served.admin_url

    def stop(self) -> None:
        """Stop the proxy (its control plane and admin API with it), then a broker it
        started."""
        try:
            if self._served is not None:
                self._served.stop(self.options.stop_timeout_s)
        finally:
            self._stack.close()
