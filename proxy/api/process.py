"""`kafka-chaos-proxy run` as a child process on ephemeral ports, ready when `start()` returns.

The proxy is launched the way a user launches it, so what a caller gets is exactly the CLI's
proxy. The Python API's subprocess mode and the lab's matrix (`lab.matrix.proxyproc`, which
adds its seed, event log and environment) both start theirs here.

Ports: the bootstrap listener and every broker listener are ephemeral (`--port 0 --port-base 0`):
the kernel picks them as it binds, so no range of consecutive ports has to be free and no other
process can take one between a check and the bind. The bootstrap address is read from the first
line of the proxy's banner (a line kept stable for tools); clients learn the broker listeners
from Metadata as always. Only the admin API needs a port chosen beforehand (`--admin-port 0`
means "no admin API"): one port, taken below the kernel's ephemeral range where outgoing
connections never land, and if another process still wins it the proxy is started again on
another port (`START_ATTEMPTS`), each failed start's log kept beside the log file.

Stopping is bounded: SIGTERM to the proxy's process group (a local broker it started goes
with it), SIGKILL after `stop_timeout_s`.
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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from kafka_chaos_proxy.proxy.api.errors import ProxyStartError
from kafka_chaos_proxy.proxy.client import TOKEN_ENV, AdminClient

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
#: Lines of the proxy's log quoted when it failed to start.
_LOG_TAIL_LINES = 5


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


def proxy_command() -> list[str]:
    """`kafka-chaos-proxy` as installed beside this interpreter, else the same entry point
    run by it (a checkout on sys.path, an interpreter without scripts)."""
    script = Path(sys.executable).with_name("kafka-chaos-proxy")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "kafka_chaos_proxy"]


class _AdminPortTaken(RuntimeError):
    """The admin port was free when chosen and taken by the time the proxy bound it."""


class ProxyProcess:
    """`kafka-chaos-proxy run` on ephemeral listener ports, stopped (and reaped) by `stop()`.

    `upstream` None lets the child pick the broker as `run` does without --bootstrap-server
    (KAFKA_BOOTSTRAP_SERVERS, testcontainers, or a local broker it starts and stops); give it
    a `start_timeout_s` that covers a broker start. `args` are more `run` flags, `env` and
    `cwd` the child's (default: this process's); a `token` reaches the child through
    KCP_ADMIN_TOKEN, never its command line. The ports are known once `start()` returned:
    `bootstrap` from the proxy's banner, `admin_url` from the port it was given.
    """

    def __init__(self, upstream: str | None, log_path: Path, *, args: Sequence[str] = (),
                 env: Mapping[str, str] | None = None, cwd: Path | None = None,
                 token: str | None = None, listen_host: str = "127.0.0.1",
                 start_timeout_s: float = START_TIMEOUT_S,
                 stop_timeout_s: float = STOP_TIMEOUT_S) -> None:
        self.upstream = upstream
        self.log_path = log_path
        self.args = list(args)
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.token = token
        self.listen_host = listen_host
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.port = 0  # the bootstrap listener's, once started
        self.admin_port = 0
        #: One line per start that failed and was retried (kept with the run's notes).
        self.start_failures: list[str] = []
        self.admin: AdminClient | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.listen_host}:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def command(self) -> list[str]:
        upstream = ["--bootstrap-server", self.upstream] if self.upstream else []
        return [
            *proxy_command(), "run",
            *upstream,
            "--listen-host", self.listen_host,
            "--port", "0",
            "--port-base", "0",
            "--admin-host", "127.0.0.1",
            "--admin-port", str(self.admin_port),
            *self.args,
        ]

    def start(self) -> AdminClient:
        """Start the proxy; a start that failed because its admin port was taken is retried on
        another port (its log kept as <log>-start-N<suffix>), any other failure raises
        `ProxyStartError`."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, START_ATTEMPTS + 1):
            self.admin_port = admin_port()
            try:
                return self._start_once()
            except _AdminPortTaken as exc:
                kept = self.log_path.with_name(
                    f"{self.log_path.stem}-start-{attempt}{self.log_path.suffix}")
                with contextlib.suppress(OSError):
                    self.log_path.replace(kept)
                self.start_failures.append(f"proxy start {attempt}: {exc}; log in {kept.name}")
                if attempt == START_ATTEMPTS:
                    raise ProxyStartError(
                        f"proxy did not start in {START_ATTEMPTS} attempts: {exc}") from None
        raise AssertionError("unreachable")

    def _child_env(self) -> dict[str, str] | None:
        if self.token is None:
            return self.env
        env = dict(os.environ if self.env is None else self.env)
        env[TOKEN_ENV] = self.token
        return env

    def _start_once(self) -> AdminClient:
        self._log = self.log_path.open("wb")
        self._proc = subprocess.Popen(
            self.command(), stdout=self._log, stderr=subprocess.STDOUT, cwd=self.cwd,
            env=self._child_env(), start_new_session=True,
        )
        self.admin = AdminClient(self.admin_url, self.token)
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._log.close()
                text = self._log_text()
                last = next((ln for ln in reversed(text.splitlines()) if ln.strip()), "")
                self.admin.close()
                if ADMIN_PORT_TAKEN in text:
                    raise _AdminPortTaken(last.strip()[:300])
                raise ProxyStartError(f"proxy exited with {self._proc.returncode} on start "
                                      f"({self._log_tail()}); see {self.log_path}")
            if not self.port:
                found = bootstrap_from_log(self._log_text())
                if found is not None:
                    self.port = int(found.rpartition(":")[2])
            if self.port and self.admin.healthy() and self._listening():
                return self.admin
            time.sleep(0.1)
        tail = self._log_tail()
        self.stop()
        raise ProxyStartError(f"proxy did not become healthy in {self.start_timeout_s:g} s "
                              f"({tail}); see {self.log_path}")

    def _log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def _log_tail(self) -> str:
        lines = [ln.strip() for ln in self._log_text().splitlines() if ln.strip()]
        return " | ".join(lines[-_LOG_TAIL_LINES:])[-600:] or "no output"

    def _listening(self) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            host = "127.0.0.1" if self.listen_host in ("0.0.0.0", "") else self.listen_host
            return s.connect_ex((host, self.port)) == 0

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> int | None:
        """Stop the proxy (SIGTERM to its process group, SIGKILL after `stop_timeout_s`);
        its exit code, None if it never started."""
        if self.admin is not None:
            self.admin.close()
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(self.stop_timeout_s)
        if self._log is not None:
            self._log.close()
        return proc.returncode
