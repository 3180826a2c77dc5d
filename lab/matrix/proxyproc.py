"""A proxy subprocess for one matrix run, and a small client for its admin API.

Why a fresh proxy per run rather than one shared proxy with faults cleared between runs:
the proxy keeps per-connection state (a client that is still closing from the previous run
holds connections, in-flight slots and group-state entries), rule statistics and a bounded
event buffer. A fresh process with its own seed and event log makes every run's evidence
self-contained and rules out one run's leftovers causing the next run's outcome; starting it
costs about a second, small next to a run.

The proxy is launched the way a user launches it (`kafka-chaos-proxy run`), so the matrix also
exercises the CLI.

Ports: the bootstrap listener and every broker listener are ephemeral (`--port 0 --port-base 0`):
the kernel picks them as it binds, so no range of consecutive ports has to be free and no other
process can take one between a check and the bind. The bootstrap address is read from the first
line of the proxy's banner (a line kept stable for tools); clients learn the broker listeners
from Metadata as always. Only the admin API needs a port chosen beforehand (`--admin-port 0`
means "no admin API"): one port, taken below the kernel's ephemeral range where outgoing
connections never land, and if another process still wins it the proxy is started again on
another port (`START_ATTEMPTS`), each failed start's log kept beside the run's.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from kafka_chaos_proxy.lab.paths import REPO_ROOT
from kafka_chaos_proxy.proxy.client import AdminClient

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
#: Starts of the proxy when its admin port was taken by another process in the meantime.
START_ATTEMPTS = 3
#: The banner's first line, which names the bootstrap listener the kernel picked.
BANNER = re.compile(r"^kafka-chaos-proxy: bootstrap servers for clients: (\S+)\s*$", re.M)
#: What the proxy says when a port it was told to bind is taken (proxy.runtime).
ADMIN_PORT_TAKEN = "(--admin-port) is already in use"
#: Lowest port considered for the admin API (well clear of the usual fixed service ports).
ADMIN_PORT_FLOOR = 20000
EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")


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


def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (Linux default 32768)."""
    try:
        return int(EPHEMERAL_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def admin_port(attempts: int = 50, rng: random.Random | None = None) -> int:
    """A free port for the admin API, below the ephemeral range when there is room: there,
    neither another proxy's ephemeral listeners nor the kernel's choice of a local port for an
    outgoing connection (hundreds per matrix run) can land on it. Else any free port."""
    rng = rng or random.Random()
    low = _ephemeral_low()
    if low - ADMIN_PORT_FLOOR >= 1000:
        for _ in range(attempts):
            port = rng.randrange(ADMIN_PORT_FLOOR, low)
            if _port_free(port):
                return port
    return free_port()


def bootstrap_from_log(text: str) -> str | None:
    """HOST:PORT of the bootstrap listener, from the banner the proxy prints when ready."""
    found = BANNER.search(text)
    return found.group(1).split(",")[0] if found else None


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


class _AdminPortTaken(RuntimeError):
    """The admin port was free when chosen and taken by the time the proxy bound it."""


def proxy_command() -> list[str]:
    """`kafka-chaos-proxy` as installed, else the same entry point from this checkout."""
    script = Path(sys.executable).with_name("kafka-chaos-proxy")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from kafka_chaos_proxy.proxy.cli import main; main()"]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
    )
    env["PYTHONUNBUFFERED"] = "1"
    return env


class ProxyProcess:
    """`kafka-chaos-proxy run` on ephemeral listener ports, stopped (and reaped) by `stop()`.

    The ports are known once `start()` returned: `bootstrap` from the proxy's banner,
    `admin_url` from the port it was given.
    """

    def __init__(self, upstream: str, workdir: Path, seed: int) -> None:
        self.upstream = upstream
        self.workdir = workdir
        self.seed = seed
        self.port = 0  # the bootstrap listener's, once started
        self.admin_port = 0
        self.event_log = workdir / "proxy-events.jsonl"
        self.log_path = workdir / "proxy.log"
        #: One line per start that failed and was retried (kept with the run's notes).
        self.start_failures: list[str] = []
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None
        self.admin: AdminClient | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def command(self) -> list[str]:
        return [
            *proxy_command(), "run",
            "--bootstrap-server", self.upstream,
            "--listen-host", "127.0.0.1",
            "--port", "0",
            "--port-base", "0",
            "--admin-port", str(self.admin_port),
            "--seed", str(self.seed),
            "--event-log", str(self.event_log),
            # Which partitions each member really fetches (the zombie-fetch observation).
            "--fetch-events",
            "--log-format", "json",
        ]

    def start(self) -> AdminClient:
        """Start the proxy; a start that failed because its admin port was taken is retried on
        another port (its log kept as proxy-start-N.log), any other failure raises."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, START_ATTEMPTS + 1):
            self.admin_port = admin_port()
            try:
                return self._start_once()
            except _AdminPortTaken as exc:
                kept = self.workdir / f"proxy-start-{attempt}.log"
                with contextlib.suppress(OSError):
                    self.log_path.replace(kept)
                self.start_failures.append(f"proxy start {attempt}: {exc}; log in {kept.name}")
                if attempt == START_ATTEMPTS:
                    raise RuntimeError(
                        f"proxy did not start in {START_ATTEMPTS} attempts: {exc}") from None
        raise AssertionError("unreachable")

    def _start_once(self) -> AdminClient:
        self._log = self.log_path.open("wb")
        self._proc = subprocess.Popen(
            self.command(), stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO_ROOT,
            env=child_env(), start_new_session=True,
        )
        self.admin = AdminClient(self.admin_url)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._log.close()
                text = self._log_text()
                last = next((ln for ln in reversed(text.splitlines()) if ln.strip()), "")
                if ADMIN_PORT_TAKEN in text:
                    self.admin.close()
                    raise _AdminPortTaken(last.strip()[:300])
                raise RuntimeError(f"proxy exited with {self._proc.returncode} on start "
                                   f"({last.strip()[:300]}); see {self.log_path}")
            if not self.port:
                found = bootstrap_from_log(self._log_text())
                if found is not None:
                    self.port = int(found.rpartition(":")[2])
            if self.port and self.admin.healthy() and self._listening():
                return self.admin
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"proxy did not become healthy in {START_TIMEOUT_S:g} s; "
                           f"see {self.log_path}")

    def _log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

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
