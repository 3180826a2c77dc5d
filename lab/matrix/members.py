"""Harness processes of one run: launch, collect their JSON lines, stop them.

Each member's stdout is read by its own thread into memory and, line by line, into the run's
evidence directory, so even a member that is later SIGKILLed leaves everything it said. A line
that is not JSON is kept as a `raw` event rather than dropped. Processes run in their own
session so that a harness launched through a wrapper (a JVM script) is stopped as a whole.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from lab.matrix.classify import MemberRun
from lab.matrix.proxyproc import child_env

GRACEFUL_STOP_S = 15.0


class Member:
    def __init__(self, index: int, command: list[str], workdir: Path,
                 on_event: Callable[[int, dict[str, Any]], None]) -> None:
        self.index = index
        self.command = command
        self.workdir = workdir
        self.on_event = on_event
        self.events: list[dict[str, Any]] = []
        self.stop_requested_at: float | None = None
        self.killed_hard = False
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._stderr: IO[bytes] | None = None

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / f"m{self.index}.cmd").write_text(" ".join(self.command) + "\n")
        self._stderr = (self.workdir / f"m{self.index}.stderr.log").open("wb")
        self._proc = subprocess.Popen(
            self.command, stdout=subprocess.PIPE, stderr=self._stderr, env=child_env(),
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, name=f"member-{self.index}",
                                        daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        with (self.workdir / f"m{self.index}.jsonl").open("w", encoding="utf-8") as out:
            for raw in self._proc.stdout:
                line = raw.decode("utf-8", errors="replace").strip()
                if not line:
                    continue
                out.write(line + "\n")
                out.flush()
                try:
                    event = json.loads(line)
                    if not isinstance(event, dict):
                        raise ValueError("not an object")
                except ValueError:
                    event = {"ts": time.time(), "event": "raw", "line": line[:2000]}
                with self._lock:
                    self.events.append(event)
                self.on_event(self.index, event)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.events)

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    def request_stop(self) -> None:
        """SIGTERM: the contract's graceful close. `stop_requested_at` marks what follows as
        teardown, so close-time errors are not mistaken for findings."""
        if self.stop_requested_at is None:
            self.stop_requested_at = time.time()
        if self.alive():
            assert self._proc is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGTERM)

    def wait_stopped(self, timeout_s: float = GRACEFUL_STOP_S) -> None:
        if self._proc is None:
            return
        try:
            self._proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.killed_hard = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait(10)
        if self._reader is not None:
            self._reader.join(5)
        if self._stderr is not None:
            self._stderr.close()

    def to_run(self) -> MemberRun:
        return MemberRun(index=self.index, events=self.snapshot(), returncode=self.returncode,
                         stop_requested_at=self.stop_requested_at, killed_hard=self.killed_hard)
