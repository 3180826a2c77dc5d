"""How the Python API starts a proxy: the settings both ways of starting share.

`inprocess` runs `kafka-chaos-proxy run`'s proxy (data plane, control plane, admin API) on a
thread of the caller's process: fast to start, nothing to install on PATH. `subprocess` runs
the `kafka-chaos-proxy run` command itself: the proxy a user runs, isolated from the caller
(its own GIL, its own crash). Either listens on ephemeral ports on `listen_host` and serves
its admin API on 127.0.0.1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, TypedDict

Mode = Literal["inprocess", "subprocess"]
MODES: tuple[Mode, ...] = ("inprocess", "subprocess")

#: A local broker's cold start (Maven fetching the jars) takes about 15 s; a proxy in front
#: of a given broker about one.
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class LaunchOptions:
    """`bootstrap` None: the broker `provide_kafka` picks (KAFKA_BOOTSTRAP_SERVERS,
    testcontainers, or a local broker started with the proxy and stopped with it)."""

    bootstrap: str | None = None
    mode: Mode = "inprocess"
    token: str | None = None  # bearer token the admin API requires
    seed: int | None = None  # for fault probabilities and jitter
    faults_file: Path | None = None  # rules loaded at start-up
    event_log: Path | None = None  # coordination events also go to this JSON-lines file
    kafka_version: str | None = None  # of a local broker
    listen_host: str = "127.0.0.1"
    start_timeout_s: float = START_TIMEOUT_S
    stop_timeout_s: float = STOP_TIMEOUT_S
    log_path: Path | None = None  # subprocess: its output (default: a temporary file)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")


class StartArgs(TypedDict, total=False):
    """`ChaosProxy.start`'s keywords besides `bootstrap` (for the async API's `start`)."""

    mode: Mode
    token: str | None
    seed: int | None
    faults_file: str | Path | None
    event_log: str | Path | None
    kafka_version: str | None
    listen_host: str
    log_path: str | Path | None
    start_timeout_s: float
    stop_timeout_s: float


class Running(Protocol):
    """A started proxy, as `ChaosProxy` holds it."""

    @property
    def bootstrap(self) -> str: ...

    @property
    def admin_url(self) -> str: ...

    def stop(self) -> None: ...
