"""A proxy subprocess for one matrix run, and a small client for its admin API.

Why a fresh proxy per run rather than one shared proxy with faults cleared between runs:
the proxy keeps per-connection state (a client that is still closing from the previous run
holds connections, in-flight slots and group-state entries), rule statistics and a bounded
event buffer. A fresh process with its own seed and event log makes every run's evidence
self-contained and rules out one run's leftovers causing the next run's outcome; starting it
costs about a second, small next to a run.

The proxy is launched the way a user launches it (`kafka-chaos-proxy run`), so the matrix also
exercises the CLI.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from lab.paths import REPO_ROOT
from proxy.client import AdminClient

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
#: Consecutive ports kept free above the broker-listener base (broker N listens on base + N).
PORT_SPAN = 8


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_port_outside(taken: set[int], attempts: int = 50) -> int:
    for _ in range(attempts):
        port = free_port()
        if port not in taken:
            return port
    raise RuntimeError(f"no free port outside {sorted(taken)[:3]}... in {attempts} attempts")


def listener_failure(log_path: Path) -> str | None:
    """A proxy listener that could not bind (another process took the port between our check
    and the bind): the run's faults may never have reached the client, so it is not a client
    result."""
    try:
        text = log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    if "Address already in use" in text:
        return "a proxy listener could not bind its port (Address already in use)"
    return None


def free_port_range(span: int = PORT_SPAN, attempts: int = 50) -> int:
    """A base port with `span` free ports from it on (bounded attempts)."""
    for _ in range(attempts):
        base = free_port()
        if base + span < 65535 and all(_port_free(base + i) for i in range(span + 1)):
            return base
    raise RuntimeError(f"no {span + 1} consecutive free ports found in {attempts} attempts")


def proxy_command() -> list[str]:
    """`kafka-chaos-proxy` as installed, else the same entry point from this checkout."""
    script = Path(sys.executable).with_name("kafka-chaos-proxy")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from proxy.cli import main; main()"]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
    )
    env["PYTHONUNBUFFERED"] = "1"
    return env


class ProxyProcess:
    """`kafka-chaos-proxy run` on free local ports, stopped (and reaped) by `stop()`."""

    def __init__(self, upstream: str, workdir: Path, seed: int) -> None:
        self.upstream = upstream
        self.workdir = workdir
        self.seed = seed
        self.port_base = free_port_range()
        # The bootstrap and admin ports must not fall in the broker-listener range.
        taken = set(range(self.port_base, self.port_base + PORT_SPAN + 1))
        self.port = free_port_outside(taken)
        self.admin_port = free_port_outside(taken | {self.port})
        self.event_log = workdir / "proxy-events.jsonl"
        self.log_path = workdir / "proxy.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None
        self.admin: AdminClient | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def start(self) -> AdminClient:
        self.workdir.mkdir(parents=True, exist_ok=True)
        cmd = [
            *proxy_command(), "run",
            "--bootstrap-server", self.upstream,
            "--listen-host", "127.0.0.1",
            "--port", str(self.port),
            "--port-base", str(self.port_base),
            "--admin-port", str(self.admin_port),
            "--seed", str(self.seed),
            "--event-log", str(self.event_log),
            "--log-format", "json",
        ]
        self._log = self.log_path.open("wb")
        self._proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO_ROOT, env=child_env(),
            start_new_session=True,
        )
        self.admin = AdminClient(self.admin_url)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"proxy exited with {self._proc.returncode} on start; "
                                   f"see {self.log_path}")
            if self.admin.healthy() and self._listening():
                return self.admin
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"proxy did not become healthy in {START_TIMEOUT_S:g} s; "
                           f"see {self.log_path}")

    def _listening(self) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> int | None:
        if self.admin is not None:
            self.admin.close()
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(STOP_TIMEOUT_S)
        if self._log is not None:
            self._log.close()
        return proc.returncode
