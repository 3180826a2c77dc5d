"""Harness processes of one run: launch, collect their JSON lines, stop them.

Each member's stdout is read by its own thread into memory and, line by line, into the run's
evidence directory, so even a member that is later SIGKILLed leaves everything it said. A line
that is not JSON is kept as a `raw` event rather than dropped. Processes run in their own
session so that a harness launched through a wrapper (a JVM script) is stopped as a whole.

Member control (scenario steps): `kill` is SIGKILL, `pause` SIGSTOP and `resume` SIGCONT, each
sent to the harness's process group. Every harness command is the real program (the Python
interpreter, the `java` binary, the Go binary), started in its own session, so the group is
that process and whatever it forked; a kill or pause reaches the consumer itself, never only a
wrapper. Each signal is recorded (`control`) so the evidence says the scenario did it: a killed
member is not a crashed client.
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

from kafka_chaos_proxy.lab.matrix.classify import MemberRun
from kafka_chaos_proxy.lab.matrix.proxyproc import child_env

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
        #: When a scenario step SIGKILLed this member (None: it never did).
        self.killed_by_scenario_at: float | None = None
        #: Signals sent by scenario steps: {"ts", "action": kill|pause|resume, "pid"}.
        self.control: list[dict[str, Any]] = []
        self.paused = False
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

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def _signal(self, sig: signal.Signals, action: str) -> bool:
        """Signal the harness's process group; False if it is not running."""
        if not self.alive():
            return False
        assert self._proc is not None
        try:
            os.killpg(self._proc.pid, sig)
        except ProcessLookupError:
            return False
        self.control.append({"ts": time.time(), "action": action, "pid": self._proc.pid})
        return True

    def kill(self) -> bool:
        """SIGKILL now, as a scenario step: no close, no `exited` line, like a crash of the
        host; `killed_by_scenario_at` tells the classifier it was us."""
        if self.killed_by_scenario_at is None and self.alive():
            self.killed_by_scenario_at = time.time()
        done = self._signal(signal.SIGKILL, "kill")
        self.paused = False
        return done

    def pause(self) -> bool:
        """SIGSTOP: the process keeps its sockets but runs no code (no heartbeats, no polls)."""
        done = self._signal(signal.SIGSTOP, "pause")
        self.paused = self.paused or done
        return done

    def resume(self) -> bool:
        """SIGCONT (harmless on a process that is not stopped)."""
        done = self._signal(signal.SIGCONT, "resume") if self.paused else False
        self.paused = False
        return done

    def request_stop(self) -> None:
        """SIGTERM: the contract's graceful close. `stop_requested_at` marks what follows as
        teardown, so close-time errors are not mistaken for findings. A paused member is
        resumed first, or it could not act on the SIGTERM."""
        if self.stop_requested_at is None:
            self.stop_requested_at = time.time()
        if self.paused:
            self.resume()
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
                         stop_requested_at=self.stop_requested_at, killed_hard=self.killed_hard,
                         killed_by_scenario_at=self.killed_by_scenario_at,
                         control=list(self.control))
