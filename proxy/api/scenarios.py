"""Playing a catalog scenario (or a scenario file) against a proxy from Python.

A scenario's proxy-side steps (rules installed up front or armed by proxy events, timed
steps, releases) are played by the lab's `ScenarioDriver`, the same loop `kafka-chaos-proxy
scenario run` uses. The product never imports the lab: the player is found through the
`kafka_chaos_proxy.scenarios` entry point group (`play`), whose function has the signature
of `PlayScenario` and reports with this module's `ScenarioResult`. Steps that need the
matrix's harnesses (start, stop, kill members) are reported as skipped; the caller's own
clients are the members.

`ScenarioRun` plays in the background, so a test's consumers run meanwhile: it returns once
the scenario's first rules are installed (a consumer started next cannot slip past them),
`wait()` for the end, `stop()` to end it early (its rules are removed either way unless
`keep_rules`).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol, TypedDict

from kafka_chaos_proxy.proxy.api.errors import ScenarioProblem
from kafka_chaos_proxy.proxy.client import AdminClient

ENTRY_POINT_GROUP = "kafka_chaos_proxy.scenarios"
ENTRY_POINT_NAME = "play"
#: How long `ScenarioRun` waits for the scenario's first rules to be installed.
START_TIMEOUT_S = 30.0
#: Lines of the player's log a `ScenarioRun` keeps.
LOG_LINES = 200


@dataclass(frozen=True)
class StepReport:
    """One step of a played scenario: whether (`fired_at`, Unix time), why and how it fired."""

    index: int
    description: str
    fired_at: float | None
    reason: str
    error: str | None

    @property
    def fired(self) -> bool:
        return self.fired_at is not None


@dataclass(frozen=True)
class ScenarioResult:
    """What playing a scenario did: every step, fired or not; `stopped` if ended early."""

    scenario: str
    steps: tuple[StepReport, ...]
    stopped: bool = False

    @property
    def fired(self) -> list[StepReport]:
        return [s for s in self.steps if s.fired]

    @property
    def pending(self) -> list[StepReport]:
        return [s for s in self.steps if not s.fired]

    @property
    def errors(self) -> list[str]:
        return [f"step {s.index}: {s.error}" for s in self.steps if s.error]

    def __str__(self) -> str:
        lines = [f"scenario {self.scenario}: {len(self.fired)} of {len(self.steps)} steps "
                 f"fired{' (stopped early)' if self.stopped else ''}"]
        for s in self.steps:
            how = f"fired ({s.reason})" if s.fired else "not fired"
            lines.append(f"  step {s.index} {how}: {s.description}"
                         + (f" [error: {s.error}]" if s.error else ""))
        return "\n".join(lines)


class PlayScenario(Protocol):
    """The entry point's function: play `scenario` (a catalog name, a file, or a parsed
    scenario) against `admin` until its steps are done, `duration_s` passed (default: the
    scenario's max_duration_s) or `stop` is set; `on_started` is called once its first rules
    are installed. `bootstrap` (the broker) with `topic` lets produce steps produce, with
    `group` move_coordinator steps move that group's coordinator."""

    def __call__(self, scenario: str | Path | Any, admin: AdminClient, *,
                 duration_s: float | None = None, bootstrap: str | None = None,
                 topic: str | None = None, group: str | None = None,
                 keep_rules: bool = False, log: Callable[[str], None] = ...,
                 stop: threading.Event | None = None,
                 on_started: Callable[[], None] | None = None) -> ScenarioResult: ...


def player() -> PlayScenario:
    """The installed scenario player; `ScenarioProblem` if none is."""
    found = entry_points(group=ENTRY_POINT_GROUP, name=ENTRY_POINT_NAME)
    for ep in found:
        play: PlayScenario = ep.load()
        return play
    raise ScenarioProblem(
        f"no scenario player is installed (entry point {ENTRY_POINT_GROUP}:{ENTRY_POINT_NAME}, "
        "shipped with kafka-chaos-proxy's lab package): reinstall kafka-chaos-proxy")


class ScenarioArgs(TypedDict, total=False):
    """`run_scenario`'s and `start_scenario`'s keywords besides the scenario."""

    duration_s: float | None  # default: the scenario's outcome.max_duration_s
    bootstrap: str | None  # the broker (not the proxy), for produce/move_coordinator steps
    topic: str | None  # where produce steps produce
    group: str | None  # whose coordinator move_coordinator steps move
    keep_rules: bool  # leave the scenario's rules installed at the end


@dataclass
class ScenarioOptions:
    """What to play and how (`ChaosProxy.run_scenario`'s keywords)."""

    scenario: str | Path
    duration_s: float | None = None
    bootstrap: str | None = None
    topic: str | None = None
    group: str | None = None
    keep_rules: bool = False


@dataclass
class ScenarioRun:
    """A scenario playing on its own thread against one proxy."""

    admin: AdminClient
    options: ScenarioOptions
    log: deque[str] = field(default_factory=lambda: deque(maxlen=LOG_LINES))
    _stop: threading.Event = field(default_factory=threading.Event)
    _started: threading.Event = field(default_factory=threading.Event)
    _result: ScenarioResult | None = None
    _error: BaseException | None = None
    _thread: threading.Thread | None = None

    def start(self) -> ScenarioRun:
        """Begin; returns once the scenario's first rules are installed (or raises why not)."""
        play = player()
        self._thread = threading.Thread(target=self._run, args=(play,), daemon=True,
                                        name=f"kcp-scenario-{self.options.scenario}")
        self._thread.start()
        if not self._started.wait(START_TIMEOUT_S) and self._error is None:
            self.stop()
            raise ScenarioProblem(f"scenario {self.options.scenario} did not start within "
                                  f"{START_TIMEOUT_S:g} s")
        if self._error is not None:
            self._thread.join()
            raise self._error
        return self

    def _run(self, play: PlayScenario) -> None:
        o = self.options
        try:
            self._result = play(o.scenario, self.admin, duration_s=o.duration_s,
                                bootstrap=o.bootstrap, topic=o.topic, group=o.group,
                                keep_rules=o.keep_rules, log=self.log.append, stop=self._stop,
                                on_started=self._started.set)
        except BaseException as exc:
            self._error = exc
        finally:
            self._started.set()

    @property
    def done(self) -> bool:
        return self._thread is not None and not self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> ScenarioResult:
        """The result once the scenario ended (its steps done or its duration over); raises
        what ended it otherwise, `TimeoutError` if still playing after `timeout`."""
        assert self._thread is not None, "start() first"
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"scenario {self.options.scenario} still playing after "
                               f"{timeout:g} s")
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def stop(self, timeout: float = 10.0) -> ScenarioResult:
        """End the scenario now (its rules are removed unless keep_rules); its result."""
        self._stop.set()
        return self.wait(timeout)
