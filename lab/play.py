"""Play a scenario's proxy-side steps against a running proxy: the one loop behind
`kafka-chaos-proxy scenario run` and the Python API's `ChaosProxy.run_scenario` (and the
pytest plugin's `chaos` marker), which reaches it through the `kafka_chaos_proxy.scenarios`
entry point (`play`), so the product never imports the lab.

Rules are installed, timed steps fire on the clock, proxy-event triggers fire from the
proxy's event log (read forward by seq). Steps that need the matrix's harness processes
(starting, stopping, killing, pausing or resuming members, harness-event triggers) or brokers
the runner started (stop_broker, restart_broker) are reported as skipped rather than faked:
the caller's own clients are the members. `produce` and `produce_rate` run with a broker
`bootstrap` and a `topic`, `move_coordinator` with `bootstrap` and `group`.

It returns the product's `ScenarioResult` (`proxy.api.scenarios`): which steps fired, when,
why, and what failed.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kafka_chaos_proxy.lab.matrix.driver import ScenarioDriver
from kafka_chaos_proxy.lab.paths import LabPathError, scenarios_dir
from kafka_chaos_proxy.lab.scenario import Scenario, ScenarioError, load_catalog, load_scenario
from kafka_chaos_proxy.proxy.api.errors import ScenarioProblem
from kafka_chaos_proxy.proxy.api.scenarios import ScenarioResult, StepReport
from kafka_chaos_proxy.proxy.client import AdminClient

#: Modules of the `[lab]` extra the produce steps need.
LAB_EXTRA_MODULES = ("confluent_kafka", "aiokafka", "kafka")
POLL_S = 0.25
#: A catalog name rather than a path (scenario names are lower-case words and dashes).
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")


def _quiet(message: str) -> None:
    """The default log: nothing."""


class AdminOnlyActions:
    """A player without harnesses that owns no brokers: it can produce (with `bootstrap` and
    `topic`) and move a group's coordinator (with `bootstrap` and `group`), but not manage
    members or stop brokers; those steps say so in the log."""

    def __init__(self, bootstrap: str | None, topic: str | None, group: str | None,
                 log: Callable[[str], None] = _quiet) -> None:
        self.log = log
        self.producer: Any = None
        self.rates: list[Any] = []
        self.topology: Any = None
        if bootstrap and topic:
            try:
                from kafka_chaos_proxy.lab.matrix.produce import SequenceProducer
            except ModuleNotFoundError as exc:
                if exc.name not in LAB_EXTRA_MODULES:
                    raise
                raise ScenarioProblem("produce steps need confluent-kafka from the lab extra: "
                                      "pip install 'kafka-chaos-proxy[lab]'") from None

            self.producer = SequenceProducer(bootstrap, topic)
        if bootstrap and group:
            from kafka_chaos_proxy.lab.matrix.topology import ClusterView, TopologyControl
            from kafka_chaos_proxy.proxy.real_kafka.probe import metadata_brokers

            host, _, port = bootstrap.split(",")[0].rpartition(":")

            def nodes() -> dict[int, tuple[str, int]]:
                return {b.node_id: (b.host, b.port) for b in metadata_brokers(host, int(port))}

            self.topology = TopologyControl(group, ClusterView(nodes), None,
                                            log=lambda m: log(f"  {m}"))

    def produce(self, count: int) -> None:
        if self.producer is None:
            self.log(f"  skipped: produce {count} (needs --bootstrap and --topic)")
            return
        self.producer.produce(count)
        self.log(f"  produced {count} records")

    def produce_rate(self, records_per_s: float, duration_s: float) -> None:
        if self.producer is None:
            self.log(f"  skipped: produce {records_per_s:g}/s for {duration_s:g} s "
                     "(needs --bootstrap and --topic)")
            return
        from kafka_chaos_proxy.lab.matrix.produce import RateProduction

        rate = RateProduction(self.producer, records_per_s, duration_s)
        self.rates.append(rate)
        rate.start()
        self.log(f"  producing {records_per_s:g} records/s for {duration_s:g} s")

    def start_members(self, count: int) -> None:
        self.log(f"  skipped: start {count} member(s) (only the matrix runner has harnesses)")

    def stop_members(self, indexes: list[int]) -> None:
        self.log(f"  skipped: stop members {indexes} (only the matrix runner has harnesses)")

    def kill_members(self, indexes: list[int]) -> None:
        self.log(f"  skipped: kill members {indexes} (only the matrix runner has harnesses)")

    def pause_members(self, indexes: list[int], ms: int) -> None:
        self.log(f"  skipped: pause members {indexes} for {ms} ms (only the matrix runner "
                 "has harnesses)")

    def resume_members(self, indexes: list[int]) -> None:
        self.log(f"  skipped: resume members {indexes} (only the matrix runner has "
                 "harnesses)")

    def move_coordinator(self, step: int) -> None:
        if self.topology is None:
            self.log("  skipped: move_coordinator (needs --bootstrap and --group)")
            return
        self.topology.move_coordinator(step)

    def stop_broker(self, step: int, node: str | int, mode: str) -> None:
        self.log(f"  skipped: stop_broker {node} ({mode}) (only the matrix runner owns "
                 "brokers)")

    def restart_broker(self, step: int, node: str | int) -> None:
        self.log(f"  skipped: restart_broker {node} (only the matrix runner owns brokers)")

    def busy(self) -> bool:
        return any(r.busy() for r in self.rates) or (
            self.topology is not None and self.topology.busy())

    def close(self) -> None:
        for rate in self.rates:
            rate.stop()
        if self.topology is not None:
            self.topology.drain()
            self.topology.close()


def resolve(scenario: str | Path | Scenario) -> Scenario:
    """A parsed scenario, a scenario file, or the name of one in the catalog
    (KCP_SCENARIOS_DIR, else the packaged one); `ScenarioProblem` if none is usable."""
    if isinstance(scenario, Scenario):
        return scenario
    path = Path(scenario)
    try:
        if path.is_file():
            return load_scenario(path)
        name = str(scenario)
        if not _NAME.match(name):
            raise ScenarioProblem(f"{name}: no such scenario file, and not a catalog name")
        catalog = scenarios_dir()
        if (catalog / f"{name}.yaml").is_file():
            found = load_scenario(catalog / f"{name}.yaml")
            if found.name == name:
                return found
        scenarios = load_catalog(catalog)
    except (ScenarioError, LabPathError) as exc:
        raise ScenarioProblem(str(exc)) from None
    if name not in scenarios:
        raise ScenarioProblem(f"no scenario {name!r} in the catalog {catalog}; known: "
                              f"{', '.join(scenarios)}")
    return scenarios[name]


def play(scenario: str | Path | Scenario, admin: AdminClient, *,
         duration_s: float | None = None, bootstrap: str | None = None,
         topic: str | None = None, group: str | None = None, keep_rules: bool = False,
         log: Callable[[str], None] = _quiet, stop: threading.Event | None = None,
         on_started: Callable[[], None] | None = None) -> ScenarioResult:
    """Play the scenario until its steps are done (and its background production ended),
    `duration_s` passed (default: its max_duration_s) or `stop` is set; then remove its
    rules unless `keep_rules`. The signature is `proxy.api.scenarios.PlayScenario`."""
    found = resolve(scenario)
    actions = AdminOnlyActions(bootstrap, topic, group, log)
    driver = ScenarioDriver(found, admin, actions, log=log)
    stopped = False
    try:
        last_seq = admin.last_seq()
        now = time.time()
        driver.install_initial(now)
        driver.begin(now)
        if on_started is not None:
            on_started()
        end = now + (duration_s if duration_s is not None else found.outcome.max_duration_s)
        while time.time() < end and (driver.pending() or actions.busy()):
            if stop is not None and stop.is_set():
                stopped = True
                break
            for event in admin.events(since=last_seq, limit=1000):
                last_seq = max(last_seq, int(event.get("seq", 0)))
                driver.on_proxy_event(event, time.time())
            driver.tick(time.time())
            if stop is not None:
                stop.wait(POLL_S)
            else:
                time.sleep(POLL_S)
    except KeyboardInterrupt:
        log("interrupted")
        stopped = True
    finally:
        actions.close()
        pending = driver.pending()
        if pending:
            log(f"steps not fired: {pending}")
        if not keep_rules:
            for rule in found.rules():
                if rule.id is not None:
                    admin.remove_rule(rule.id, missing_ok=True)  # a step may have removed it
    return ScenarioResult(found.name, tuple(StepReport(**step) for step in driver.report()),
                          stopped=stopped)
