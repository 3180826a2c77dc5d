"""The whole matrix: every selected client x scenario, N runs each, on real brokers.

Brokers: a scenario runs on `setup.brokers` brokers (1 or 3). `ClusterPool` starts each size
once, when the first cell that needs it runs, and reuses it for every later such cell (a
3-broker cluster costs three JVMs; starting one per cell would cost more than the cells). A
cell that stops brokers restarts them in its teardown, so the next cell finds the cluster whole.

Bounded three ways: each run by its scenario's `max_duration_s` (plus set-up and teardown), the
whole matrix by `max_total_s` (cells not reached are reported as not run, never silently
dropped), and builds by `lab.matrix.builds`. Results are appended to `results.jsonl` as each
run ends, so an interrupted matrix still leaves a report of what ran, and `--resume` skips runs
already recorded.

A run that fails an expectation without its fault firing gets the client's `baseline-no-fault`
run once as a fault-free control (`_controls`, lab.matrix.control).

Cells run one at a time on purpose: coordination races depend on timing, and two cells
sharing two CPU cores would change each other's timings — and so their outcomes.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.matrix.cell import RunRequest, run_cell_once
from lab.matrix.clients import CLIENTS, ClientSpec
from lab.matrix.control import CONTROL_SCENARIO, FaultFreeControl, control_summary
from lab.matrix.proxyproc import listener_failure
from lab.matrix.publish import publish_evidence
from lab.matrix.report import write_report
from lab.paths import scenarios_dir
from lab.scenario import Scenario, load_scenario
from proxy.real_kafka.cluster import KafkaCluster

RUN_OVERHEAD_S = 40.0  # proxy start, topic, produce, graceful teardown
INFRA_RETRY_PAUSE_S = 5.0
BROKER_START_ATTEMPTS = 3


@dataclass
class MatrixOptions:
    clients: list[str]
    scenarios: list[Scenario]
    runs: int = 5
    out: Path = Path("docs")
    artifacts: Path = Path("artifacts/matrix")
    max_total_s: float = 3 * 3600.0
    kafka_version: str | None = None
    resume: bool = False
    #: Order: "cell" runs the N runs of a cell back to back; "round" runs run 1 of every cell,
    #: then run 2..., so an interrupted matrix has every cell at least once; "findings-first"
    #: runs round 1, then all remaining runs of the cells whose first run was not `recovered`
    #: (where k/N matters most: is the finding reproducible?), then the other cells by round.
    order: str = "round"
    #: When set, compact evidence is copied here and the report's cells link to it.
    publish: Path | None = None
    log: Callable[[str], None] = field(default=print)


def seed_for(client: str, scenario: str, run: int) -> int:
    """A stable seed per run: re-running a cell replays the same fault draws."""
    return zlib.crc32(f"{client}/{scenario}/{run}".encode()) & 0x7FFFFFFF


def _plan(opts: MatrixOptions) -> list[tuple[ClientSpec, Scenario, int, str | None]]:
    cells: list[tuple[ClientSpec, Scenario, str | None]] = []
    for scenario in opts.scenarios:
        for name in opts.clients:
            spec = CLIENTS[name]
            cells.append((spec, scenario, spec.protocol_for_scenario(scenario)))
    plan: list[tuple[ClientSpec, Scenario, int, str | None]] = []
    if opts.order == "cell":
        for spec, scenario, protocol in cells:
            plan.extend((spec, scenario, run, protocol) for run in range(1, opts.runs + 1))
    else:
        for run in range(1, opts.runs + 1):
            plan.extend((spec, scenario, run, protocol) for spec, scenario, protocol in cells)
    return plan


Planned = tuple[ClientSpec, Scenario, int, str | None]


def findings_first(rest: list[Planned], results: list[dict[str, Any]]) -> list[Planned]:
    """Runs 2..N reordered: cells with a first-run finding first, in cell order."""
    first = {(r["client"], r["scenario"]): r["outcome"] for r in results if r["run"] == 1}
    hot = [p for p in rest if first.get((p[0].name, p[1].name), "recovered") != "recovered"]
    hot.sort(key=lambda p: (p[1].name, p[0].name, p[2]))
    cold = [p for p in rest if p not in hot]
    return hot + cold


def load_results(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # a line cut short by an interrupted write
    return out


class ClusterPool:
    """One cluster per broker count, started on first use and kept for the whole matrix.

    `given` are clusters someone else owns (a test fixture, the broker of `run_matrix`'s
    bootstrap): used as they are, never stopped here. A cluster that does not start after
    `BROKER_START_ATTEMPTS` is remembered as unavailable, so its cells fail fast.
    """

    def __init__(self, version: str | None = None, given: dict[int, KafkaCluster] | None = None,
                 log: Callable[[str], None] = print) -> None:
        self.version = version
        self.clusters: dict[int, KafkaCluster] = dict(given or {})
        self.unavailable: dict[int, str] = {}
        self.log = log
        self._stack = contextlib.ExitStack()

    def get(self, brokers: int) -> KafkaCluster:
        if brokers in self.clusters:
            return self.clusters[brokers]
        if brokers in self.unavailable:
            raise RuntimeError(self.unavailable[brokers])
        from proxy.real_kafka import provide_kafka

        for attempt in range(1, BROKER_START_ATTEMPTS + 1):
            try:
                cluster = self._stack.enter_context(
                    provide_kafka(nodes=brokers, version=self.version))
            except Exception as exc:
                if attempt < BROKER_START_ATTEMPTS and "start" in type(exc).__name__.lower():
                    self.log(f"{brokers}-broker cluster start failed ({exc}); "
                             f"attempt {attempt + 1}")
                    continue
                self.unavailable[brokers] = (f"the {brokers}-broker cluster did not start: "
                                             f"{type(exc).__name__}: {exc}")[:500]
                raise RuntimeError(self.unavailable[brokers]) from exc
            self.log(f"matrix: {brokers}-broker cluster up ({cluster.bootstrap_servers})")
            self.clusters[brokers] = cluster
            return cluster
        raise AssertionError("unreachable")

    def kafka_version(self) -> str:
        for cluster in self.clusters.values():
            return cluster.version
        return self.version or "unknown"

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> ClusterPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _infra_result(spec: ClientSpec, scenario: Scenario, run: int, protocol: str,
                  detail: str) -> dict[str, Any]:
    """A run that could not start (its cluster is unavailable): not a client result."""
    return {"client": spec.name, "scenario": scenario.name,
            "scenario_version": scenario.version, "run": run, "protocol": protocol,
            "outcome": "infra_error", "detail": detail, "duration_s": 0.0, "expected": 0,
            "consumed": 0, "missing": 0, "duplicates": 0, "errors": [], "injections": 0,
            "first_injection_at": None, "time_to_recover_s": None, "member_exits": [],
            "steps": [], "notes": []}


def run_matrix(opts: MatrixOptions, bootstrap: str | None = None,
               kafka_version: str | None = None, *,
               clusters: ClusterPool | None = None) -> dict[str, Any]:
    """Run the plan. The brokers come from `clusters`; `bootstrap` (a broker someone else
    runs) serves the 1-broker scenarios, and 3-broker ones start a cluster of their own."""
    own_pool = clusters is None
    if clusters is None:
        given = {} if bootstrap is None else {1: KafkaCluster(
            bootstrap_servers=bootstrap, nodes={}, version=kafka_version or "unknown",
            log_paths=[], kind="external")}
        clusters = ClusterPool(opts.kafka_version, given, log=opts.log)
    try:
        return _run_plan(opts, clusters, kafka_version)
    finally:
        if own_pool:
            clusters.close()


def _run_plan(opts: MatrixOptions, clusters: ClusterPool,
              kafka_version: str | None) -> dict[str, Any]:
    opts.artifacts.mkdir(parents=True, exist_ok=True)
    results_path = opts.artifacts / "results.jsonl"
    # An infra_error says nothing about the client: on resume such runs are done again.
    results = [r for r in load_results(results_path)
               if r["outcome"] != "infra_error" and listener_failure(
                   opts.artifacts / r["client"] / r["scenario"] / str(r["run"]) / "proxy.log"
               ) is None] if opts.resume else []
    if results_path.exists():
        results_path.unlink()
    with results_path.open("w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, default=str) + "\n" for r in results)
    done = {(r["client"], r["scenario"], r["run"]) for r in results}
    controls = _controls(opts, clusters, results)
    t0 = time.monotonic()
    not_run: list[dict[str, Any]] = []
    unavailable: dict[str, str] = {}
    plan = _plan(opts)
    opts.log(f"matrix: {len(plan)} runs planned ({len(opts.clients)} clients x "
             f"{len(opts.scenarios)} scenarios x {opts.runs}), budget {opts.max_total_s:g} s")
    reorder_at = sum(1 for p in plan if p[2] == 1) if opts.order == "findings-first" else -1
    i = 0
    while i < len(plan):
        if i == reorder_at:
            plan[i:] = findings_first(plan[i:], results)
        spec, scenario, run, protocol = plan[i]
        i += 1
        key = (spec.name, scenario.name, run)
        if protocol is None or key in done:
            continue
        if spec.name in unavailable:
            continue
        elapsed = time.monotonic() - t0
        if elapsed + scenario.outcome.max_duration_s + RUN_OVERHEAD_S > opts.max_total_s:
            not_run.append({"client": spec.name, "scenario": scenario.name, "run": run})
            continue
        try:
            spec.command()  # builds Go/Java harnesses once (cached); fails fast if it can't
        except Exception as exc:
            unavailable[spec.name] = f"{type(exc).__name__}: {exc}"[:500]
            opts.log(f"client {spec.name} unavailable: {unavailable[spec.name]}")
            continue
        try:
            cluster = clusters.get(scenario.setup.brokers)
        except Exception as exc:
            result = _infra_result(spec, scenario, run, protocol, str(exc))
        else:
            result = _run_cell(opts, spec, scenario, run, protocol, cluster)
            controls.attach(result, spec)
        result["kafka_version"] = kafka_version or clusters.kafka_version()
        results.append(result)
        with results_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(result, default=str) + "\n")
        opts.log(f"[{i}/{len(plan)} {time.monotonic() - t0:6.0f}s] {spec.name} x "
                 f"{scenario.name} #{run}: {result['outcome']} ({result['duration_s']:.0f} s) "
                 f"{result['detail'][:160]}")
    total = time.monotonic() - t0
    summary = write_report(
        results, out_dir=opts.out, artifacts=_evidence_root(opts), clients=opts.clients,
        scenarios=opts.scenarios, runs=opts.runs,
        kafka_version=kafka_version or clusters.kafka_version(),
        unavailable=unavailable, not_run=not_run, wall_time_s=total,
    )
    opts.log(f"matrix: {len(results)} runs in {total:.0f} s; report in {opts.out}")
    return summary


def _run_cell(opts: MatrixOptions, spec: ClientSpec, scenario: Scenario, run: int,
              protocol: str, cluster: KafkaCluster) -> dict[str, Any]:
    """One run of a cell, retried once if it was an infra_error."""
    req = RunRequest(
        client=spec, scenario=scenario, run=run, protocol=protocol,
        kafka_bootstrap=cluster.bootstrap_servers,
        artifacts=opts.artifacts / spec.name / scenario.name / str(run),
        seed=seed_for(spec.name, scenario.name, run), cluster=cluster,
    )
    shutil.rmtree(req.artifacts, ignore_errors=True)  # evidence of this run only
    result = run_cell_once(req)
    if result["outcome"] == "infra_error":
        # Not a client result (a proxy that failed to start, a broker hiccup): once more.
        opts.log(f"{spec.name} x {scenario.name} #{run}: infra_error, retrying once: "
                 f"{result['detail'][:200]}")
        time.sleep(INFRA_RETRY_PAUSE_S)
        shutil.rmtree(req.artifacts, ignore_errors=True)
        result = run_cell_once(req)
    return result


def _controls(opts: MatrixOptions, clusters: ClusterPool,
              results: list[dict[str, Any]]) -> FaultFreeControl:
    """The matrix's fault-free controls (lab.matrix.control): a run that fails an expectation
    without its fault firing gets the client's `baseline-no-fault` run once, under the same
    protocol, as `artifacts/CLIENT/baseline-no-fault/control-PROTOCOL`; results of a resumed
    matrix bring the controls they already had."""

    def run(spec: ClientSpec, protocol: str) -> dict[str, Any]:
        baseline = next((s for s in opts.scenarios if s.name == CONTROL_SCENARIO), None)
        if baseline is None:
            baseline = load_scenario(scenarios_dir() / f"{CONTROL_SCENARIO}.yaml")
        cluster = clusters.get(baseline.setup.brokers)
        evidence = f"{spec.name}/{CONTROL_SCENARIO}/control-{protocol}"
        req = RunRequest(client=spec, scenario=baseline, run=0, protocol=protocol,
                         kafka_bootstrap=cluster.bootstrap_servers,
                         artifacts=opts.artifacts / evidence,
                         seed=seed_for(spec.name, CONTROL_SCENARIO, 0), cluster=cluster)
        shutil.rmtree(req.artifacts, ignore_errors=True)
        return control_summary(run_cell_once(req), evidence)

    controls = FaultFreeControl(run, log=opts.log)
    controls.seed(results)
    return controls


def _evidence_root(opts: MatrixOptions) -> Path:
    """Where the report's cells link: the published copy when asked for, else the artifacts."""
    if opts.publish is None:
        return opts.artifacts
    runs = publish_evidence(opts.artifacts, opts.publish)
    opts.log(f"matrix: evidence of {runs} runs published to {opts.publish}")
    return opts.publish


def report_only(opts: MatrixOptions) -> dict[str, Any]:
    """Rewrite the report from `results.jsonl` (e.g. of a matrix that was interrupted)."""
    results = load_results(opts.artifacts / "results.jsonl")
    wanted = {s.name for s in opts.scenarios}
    results = [r for r in results if r["scenario"] in wanted and r["client"] in opts.clients]
    kafka_version = next((str(r["kafka_version"]) for r in results if r.get("kafka_version")),
                         "unknown")
    wall = sum(float(r.get("duration_s", 0.0)) for r in results)
    return write_report(
        results, out_dir=opts.out, artifacts=_evidence_root(opts), clients=opts.clients,
        scenarios=opts.scenarios, runs=opts.runs, kafka_version=kafka_version,
        unavailable={}, not_run=[], wall_time_s=wall,
    )


def run_with_broker(opts: MatrixOptions) -> dict[str, Any]:
    """Start (or find) the brokers the scenarios need, once each for the whole matrix."""
    with ClusterPool(opts.kafka_version, log=opts.log) as clusters:
        return run_matrix(opts, clusters=clusters)


def select(names: Iterable[str] | None, known: Iterable[str], what: str) -> list[str]:
    known = list(known)
    if not names:
        return known
    out: list[str] = []
    for raw in names:
        for name in (n.strip() for n in raw.split(",")):
            if not name:
                continue
            if name not in known:
                raise ValueError(f"unknown {what} {name!r}; known: {', '.join(known)}")
            out.append(name)
    return out
