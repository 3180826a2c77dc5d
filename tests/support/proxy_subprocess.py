"""`kafka-chaos-proxy run` as a subprocess with the argv and environment a test gives it, for
the tests that run the proxy the way a container or a user's test suite starts it
(tests/integration/container, tests/integration/clients/test_thin_admin_clients.py).

Ports: the caller chooses them (a container's ports are fixed numbers, and a token-protected
admin API needs its port known beforehand); `free_ports(n)` hands out distinct free ones below
the kernel's ephemeral range, where outgoing connections never land.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from kafka_chaos_proxy.proxy.api.process import admin_port

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


def free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = admin_port()
        if port not in ports:
            ports.append(port)
    return ports


class ProxySubprocess:
    """A proxy process, healthy (GET /healthz answered 200) once `start()` returned."""

    def __init__(self, argv: list[str], env: dict[str, str], admin_url: str, log_path: Path,
                 cwd: Path) -> None:
        self.argv, self.env, self.admin_url = argv, env, admin_url
        self.log_path, self.cwd = log_path, cwd
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ProxySubprocess:
        self.cwd.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(self.argv, env=self.env, cwd=self.cwd, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.admin_url}/healthz", timeout=1).status_code == 200:
                    return self
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"the proxy did not become healthy ({self.argv}):\n"
                                     f"{self.log()[-3000:]}")
            time.sleep(0.2)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int | None:
        """Send `sig` (SIGTERM: what `docker stop` sends) and wait; SIGKILL past the bound."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(STOP_TIMEOUT_S)
                raise AssertionError(f"the proxy ignored {sig.name}:\n{self.log()[-3000:]}"
                                     ) from None
        return proc.returncode
