"""`ChaosProxy`: a proxy under a test's control, from Python.

Started here (`ChaosProxy.start`: in-process or as a `kafka-chaos-proxy run` subprocess, in
front of a given broker or the one `provide_kafka` picks) or already running elsewhere
(`ChaosProxy.attach`, e.g. a container), it is driven through the same `AdminClient` the CLI
uses: typed fault builders (`fault(...)`), rules, holds, groups, events (`events.wait`),
scenarios (`run_scenario`, `start_scenario`). Errors are the admin client's and
`proxy.api.errors`'.

A handle that started its proxy stops it on `close()` (bounded in time); `view()` gives
another handle on the same proxy with its own event baseline, which does not (the pytest
plugin hands one to each test while one proxy serves the session). `AsyncChaosProxy(chaos)`
is the same handle for asyncio code (`proxy.api.aio`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

from kafka_chaos_proxy.proxy.api.events import Events
from kafka_chaos_proxy.proxy.api.launch import launch
from kafka_chaos_proxy.proxy.api.options import (
    START_TIMEOUT_S,
    STOP_TIMEOUT_S,
    LaunchOptions,
    Mode,
    Running,
)
from kafka_chaos_proxy.proxy.api.rules import ApiName, Fault, FaultArgs, FaultBuilder, install
from kafka_chaos_proxy.proxy.api.scenarios import (
    ScenarioArgs,
    ScenarioOptions,
    ScenarioResult,
    ScenarioRun,
)
from kafka_chaos_proxy.proxy.client import AdminClient, AdminRefused

if TYPE_CHECKING:
    from kafka_chaos_proxy.faults.model import FaultRule


class ChaosProxy:
    """One proxy's controls. Use `start` or `attach` rather than the constructor."""

    def __init__(self, admin: AdminClient, *, bootstrap: str | None = None,
                 running: Running | None = None, baseline: int | None = None,
                 owns_admin: bool = True) -> None:
        self._admin = admin
        self._bootstrap = bootstrap
        self._running = running
        self._owns_admin = owns_admin
        self.events = Events(admin, baseline)

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def start(cls, bootstrap: str | None = None, *, mode: Mode = "inprocess",
              token: str | None = None, seed: int | None = None,
              faults_file: str | Path | None = None, event_log: str | Path | None = None,
              kafka_version: str | None = None, listen_host: str = "127.0.0.1",
              log_path: str | Path | None = None,
              start_timeout_s: float = START_TIMEOUT_S,
              stop_timeout_s: float = STOP_TIMEOUT_S) -> ChaosProxy:
        """Start a proxy in front of `bootstrap` (None: the broker `provide_kafka` picks:
        KAFKA_BOOTSTRAP_SERVERS, testcontainers, or a local broker owned by this proxy).

        `mode` "inprocess" runs it on a thread here, "subprocess" runs `kafka-chaos-proxy
        run` (its output in `log_path`). Listeners and the admin API (127.0.0.1) get free
        ports. `ProxyStartError` says why a start failed."""
        options = LaunchOptions(
            bootstrap=bootstrap, mode=mode, token=token, seed=seed,
            faults_file=Path(faults_file) if faults_file is not None else None,
            event_log=Path(event_log) if event_log is not None else None,
            kafka_version=kafka_version, listen_host=listen_host,
            log_path=Path(log_path) if log_path is not None else None,
            start_timeout_s=start_timeout_s, stop_timeout_s=stop_timeout_s)
        running = launch(options)
        try:
            admin = AdminClient(running.admin_url, token)
            return cls(admin, bootstrap=running.bootstrap, running=running)
        except BaseException:
            running.stop()
            raise

    @classmethod
    def attach(cls, admin_url: str, token: str | None = None, *,
               bootstrap: str | None = None) -> ChaosProxy:
        """A proxy already running (a container, another process) at `admin_url`; closing
        the handle leaves it running. `bootstrap` is where its clients connect, if the test
        wants `.bootstrap`. `AdminUnreachable` if nothing answers there."""
        admin = AdminClient(admin_url, token)
        try:
            admin.rules()  # reachable, and the token (if one is needed) accepted
            return cls(admin, bootstrap=bootstrap)
        except BaseException:
            admin.close()
            raise

    def view(self) -> ChaosProxy:
        """Another handle on this proxy, its event baseline now; closing it stops nothing."""
        return ChaosProxy(self._admin, bootstrap=self._bootstrap, owns_admin=False)

    def close(self) -> None:
        """Stop the proxy if this handle started it (bounded in time)."""
        try:
            if self._owns_admin:
                self._admin.close()
        finally:
            running, self._running = self._running, None
            if running is not None:
                running.stop()

    stop = close

    def __enter__(self) -> ChaosProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ where it is

    @property
    def bootstrap(self) -> str:
        """What clients put in bootstrap.servers."""
        if self._bootstrap is None:
            raise ValueError("this proxy was attached without bootstrap=...: pass where its "
                             "clients connect to ChaosProxy.attach")
        return self._bootstrap

    @property
    def admin_url(self) -> str:
        return self._admin.base_url

    @property
    def admin(self) -> AdminClient:
        """The admin API client (the CLI's), for what this class does not wrap."""
        return self._admin

    # ------------------------------------------------------------------ faults

    def fault(self, api: ApiName | Sequence[ApiName] | None = None,
              **match: Unpack[FaultArgs]) -> FaultBuilder[Fault]:
        """A rule for the requests that match; an action method installs it, e.g.
        `chaos.fault(api="SyncGroup", group="orders").error("NOT_COORDINATOR", times=1)`."""
        return FaultBuilder(self._install, api, **match)

    def _install(self, rule: Mapping[str, Any]) -> Fault:
        return install(self._admin, rule)

    def add_rule(self, rule: Mapping[str, Any] | FaultRule) -> Fault:
        """Install a rule written as the admin API's JSON (or a `FaultRule`); checked here
        first, so a mistake raises `RuleRejected` naming the field."""
        return install(self._admin, rule)

    def rules(self) -> list[dict[str, Any]]:
        """Every rule, with its stats."""
        return self._admin.rules()

    def clear(self) -> int:
        """Remove every rule; how many there were."""
        return self._admin.clear_rules()

    def holds(self) -> list[dict[str, Any]]:
        """Requests and responses parked by hold rules right now."""
        return self._admin.holds()

    def release_holds(self) -> int:
        """Continue everything hold rules parked; how many."""
        released = 0
        for hold in self._admin.holds():
            try:
                self._admin.release_hold(int(hold["id"]))
                released += 1
            except AdminRefused as exc:
                if exc.status != 404:  # ended by itself in the meantime
                    raise
        return released

    def reset(self) -> None:
        """No rules, nothing held: what the pytest plugin does between tests."""
        self.clear()
        self.release_holds()

    # ------------------------------------------------------------------ groups

    def groups(self) -> list[dict[str, Any]]:
        """Every group the proxy has seen: state, generation, members, ..."""
        return self._admin.groups()

    def group(self, group_id: str) -> dict[str, Any]:
        """One group in detail (members, assignment, offsets); `AdminRefused` (404) if the
        proxy has not seen it."""
        return self._admin.group(group_id)

    # ------------------------------------------------------------------ scenarios

    def run_scenario(self, scenario: str | Path,
                     **options: Unpack[ScenarioArgs]) -> ScenarioResult:
        """Play a scenario (a catalog name or a file) until its steps are done or
        `duration_s` passed; which steps fired. See `start_scenario`."""
        return self.start_scenario(scenario, **options).wait()

    def start_scenario(self, scenario: str | Path,
                       **options: Unpack[ScenarioArgs]) -> ScenarioRun:
        """Play a scenario in the background; returns once its first rules are installed.
        `bootstrap` is the broker (not this proxy), for its produce steps (with `topic`)
        and move_coordinator steps (with `group`); the scenario's rules are removed at its
        end unless `keep_rules`."""
        return ScenarioRun(self._admin, ScenarioOptions(scenario, **options)).start()
