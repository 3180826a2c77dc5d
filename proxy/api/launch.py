"""Start a proxy the way `LaunchOptions` say: in-process or as a `kafka-chaos-proxy run`
child process. One function, so `ChaosProxy.start` does not care which."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from kafka_chaos_proxy.proxy.api.inprocess import InProcessProxy
from kafka_chaos_proxy.proxy.api.options import LaunchOptions, Running
from kafka_chaos_proxy.proxy.api.process import ProxyProcess


class SubprocessProxy:
    """`kafka-chaos-proxy run` as a child (`proxy.api.process.ProxyProcess`) with the
    options as flags; its log goes to `log_path` (default: a temporary directory, removed
    when the proxy stops)."""

    def __init__(self, options: LaunchOptions) -> None:
        self.options = options
        self._tmp: Path | None = None
        if options.log_path is not None:
            self.log_path = options.log_path
        else:
            self._tmp = Path(tempfile.mkdtemp(prefix="kafka-chaos-proxy-"))
            self.log_path = self._tmp / "proxy.log"
        args: list[str] = []
        if options.seed is not None:
            args += ["--seed", str(options.seed)]
        if options.faults_file is not None:
            args += ["--faults", str(options.faults_file)]
        if options.event_log is not None:
            args += ["--event-log", str(options.event_log)]
        if options.kafka_version is not None:
            args += ["--kafka-version", options.kafka_version]
        self.process = ProxyProcess(
            options.bootstrap, self.log_path, args=args, token=options.token,
            listen_host=options.listen_host, start_timeout_s=options.start_timeout_s,
            stop_timeout_s=options.stop_timeout_s)

    def start(self) -> SubprocessProxy:
        try:
            self.process.start()
        except BaseException:
            self.process.stop()  # the temporary log stays: the error names it
            raise
        return self

    @property
    def bootstrap(self) -> str:
        return self.process.bootstrap

    @property
    def admin_url(self) -> str:
        return self.process.admin_url

    def stop(self) -> None:
        self.process.stop()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)


def launch(options: LaunchOptions) -> Running:
    """A started proxy; `ProxyStartError` (with why) if it does not start."""
    if options.mode == "subprocess":
        return SubprocessProxy(options).start()
    return InProcessProxy(options).start()
