"""A proxy subprocess for one matrix run.

Why a fresh proxy per run rather than one shared proxy with faults cleared between runs:
the proxy keeps per-connection state (a client that is still closing from the previous run
holds connections, in-flight slots and group-state entries), rule statistics and a bounded
event buffer. A fresh process with its own seed and event log makes every run's evidence
self-contained and rules out one run's leftovers causing the next run's outcome; starting it
costs about a second, small next to a run.

Launching it (`kafka-chaos-proxy run` on ephemeral ports, the bootstrap address from its
banner, an admin port below the ephemeral range, retried when another process took it) is
the product's `proxy.api.process.ProxyProcess`, the same the Python API's subprocess mode
uses. What is the matrix's own is here: each run's seed and event log in the run's
directory, JSON logs, the checkout on the child's PYTHONPATH, and `listener_failure`, which
tells an infrastructure failure from a client result.
"""

from __future__ import annotations

import os
from pathlib import Path

from kafka_chaos_proxy.lab.paths import REPO_ROOT
from kafka_chaos_proxy.proxy.api import process
from kafka_chaos_proxy.proxy.api.process import START_TIMEOUT_S, bootstrap_from_log, free_port

__all__ = ["START_TIMEOUT_S", "ProxyProcess", "bootstrap_from_log", "child_env", "free_port",
           "listener_failure"]


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


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
    )
    env["PYTHONUNBUFFERED"] = "1"
    return env


class ProxyProcess(process.ProxyProcess):
    """The product's proxy process with one matrix run's settings: its seed, its event log
    and log in the run's directory (`workdir`), run from the checkout."""

    def __init__(self, upstream: str, workdir: Path, seed: int) -> None:
        self.workdir = workdir
        self.seed = seed
        self.event_log = workdir / "proxy-events.jsonl"
        super().__init__(upstream, workdir / "proxy.log", env=child_env(), cwd=REPO_ROOT)

    def command(self) -> list[str]:
        return [
            *super().command(),
            "--seed", str(self.seed),
            "--event-log", str(self.event_log),
            # Which partitions each member really fetches (the zombie-fetch observation).
            "--fetch-events",
            "--log-format", "json",
        ]
