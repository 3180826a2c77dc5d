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

Infrastructure failures never end the matrix: a run whose result is `infra_error` (a proxy
that did not start, a broker hiccup, a harness build that failed, any exception of the run
itself) is attempted up to `INFRA_ATTEMPTS` times in all, a short pause between, and every attempt
is recorded in the result (`attempts`: number, outcome, infra reason) and in its evidence
(`<run>/attempts/<n>/`). What cannot get better within the matrix is not retried: a cluster the
pool could not start, a harness that failed its build on every attempt of an earlier run. Such
runs are recorded as infra_error at once, and the matrix goes on with the next run.

`shard` runs only the cells of one shard (`lab.matrix.shards`); `lab.matrix.merge` joins them.

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
import traceback
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka_chaos_proxy.lab.matrix.cell import RunRequest, run_cell_once
from kafka_chaos_proxy.lab.matrix.clients import CLIENTS, ClientSpec
from kafka_chaos_proxy.lab.matrix.control import CONTROL_SCENARIO, FaultFreeControl, control_summary
from kafka_chaos_proxy.lab.matrix.proxyproc import listener_failure
from kafka_chaos_proxy.lab.matrix.publish import publish_evidence
from kafka_chaos_proxy.lab.matrix.report import write_report
from kafka_chaos_proxy.lab.matrix.selection import fresh_out_dir
from kafka_chaos_proxy.lab.matrix.shards import (
    Shard,
    load_results,
    new_plan,
    read_plan,
    relabel_not_run,
    resume_problem,
    shard_of,
    write_plan,
)
from kafka_chaos_proxy.lab.paths import scenarios_dir
from kafka_chaos_proxy.lab.scenario import Scenario, load_scenario
from kafka_chaos_proxy.proxy.real_kafka.cluster import KafkaCluster

RUN_OVERHEAD_S = 40.0  # proxy start, topic, produce, graceful teardown
#: Attempts of a run whose result is infra_error (the first and two more).
INFRA_ATTEMPTS = 3
INFRA_RETRY_PAUSE_S = 5.0
BROKER_START_ATTEMPTS = 3
#: Where the evidence of a run's failed attempts is kept, inside the run's directory.
ATTEMPTS_DIR = "attempts"

RunOnce = Callable[[RunRequest], dict[str, Any]]


@dataclass
class MatrixOptions:
    clients: list[str]
    scenarios: list[Scenario]
    runs: int = 5
    #: Where matrix.md/json go; never the committed docs unless asked for.
    out: Path = field(default_factory=fresh_out_dir)
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
    #: Only the cells of this shard (`--shard K/N`); None: every cell.
    shard: Shard | None = None
    infra_attempts: int = INFRA_ATTEMPTS
    infra_retry_pause_s: float = INFRA_RETRY_PAUSE_S


def seed_for(client: str, scenario: str, run: int) -> int:
    """A stable seed per run: re-running a cell replays the same fault draws."""
    return zlib.crc32(f"{client}/{scenario}/{run}".encode()) & 0x7FFFFFFF


def _plan(opts: MatrixOptions) -> list[tuple[ClientSpec, Scenario, int, str | None]]:
    cells: list[tuple[ClientSpec, Scenario, str | None]] = []
    for scenario in opts.scenarios:
        for name in opts.clients:
            if opts.shard is not None and not opts.shard.owns(name, scenario.name):
                continue
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


def run_line(result: dict[str, Any]) -> str:
    """One run in the progress log: its verdict, and the reasons of what did not pass."""
    verdict = result.get("verdict") or result.get("outcome")
    failing = [f"{e['name']}: {e['reason']}" for e in result.get("expectations") or ()
               if e.get("status") != "pass"]
    tail = "; ".join(failing) if failing else str(result.get("detail", ""))
    return f"{verdict} {tail[:200]}".rstrip()


def findings_first(rest: list[Planned], results: list[dict[str, Any]]) -> list[Planned]:
    """Runs 2..N reordered: cells whose first run did not pass first, in cell order."""
    first = {(r["client"], r["scenario"]): r.get("verdict") or r["outcome"]
             for r in results if r["run"] == 1}
    hot = [p for p in rest if first.get((p[0].name, p[1].name), "pass")
           not in ("pass", "recovered")]
    hot.sort(key=lambda p: (p[1].name, p[0].name, p[2]))
    cold = [p for p in rest if p not in hot]
    return hot + cold


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
        from kafka_chaos_proxy.proxy.real_kafka import provide_kafka

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
                  detail: str, infra: str = "run") -> dict[str, Any]:
    """A run that could not start or did not finish for a reason that is not the client's:
    `infra` says which (cluster, harness, exception, run)."""
    return {"client": spec.name, "scenario": scenario.name,
            "scenario_version": scenario.version, "run": run, "protocol": protocol,
            "outcome": "infra_error", "detail": detail, "infra": infra, "duration_s": 0.0,
            "expected": 0, "consumed": 0, "missing": 0, "duplicates": 0, "errors": [],
            "injections": 0, "first_injection_at": None, "time_to_recover_s": None,
            "member_exits": [], "steps": [], "notes": []}


def run_matrix(opts: MatrixOptions, bootstrap: str | None = None,
               kafka_version: str | None = None, *,
               clusters: ClusterPool | None = None,
               run_once: RunOnce = run_cell_once) -> dict[str, Any]:
    """Run the plan. The brokers come from `clusters`; `bootstrap` (a broker someone else
    runs) serves the 1-broker scenarios, and 3-broker ones start a cluster of their own.
    `run_once` runs one attempt of one run (the real one by default; tests give a fake)."""
    own_pool = clusters is None
    if clusters is None:
        given = {} if bootstrap is None else {1: KafkaCluster(
            bootstrap_servers=bootstrap, nodes={}, version=kafka_version or "unknown",
            log_paths=[], kind="external")}
        clusters = ClusterPool(opts.kafka_version, given, log=opts.log)
    try:
        return _run_plan(opts, clusters, kafka_version, run_once)
    finally:
        if own_pool:
            clusters.close()


def _run_plan(opts: MatrixOptions, clusters: ClusterPool, kafka_version: str | None,
              run_once: RunOnce) -> dict[str, Any]:
    opts.artifacts.mkdir(parents=True, exist_ok=True)
    results_path = opts.artifacts / "results.jsonl"
    # An infra_error says nothing about the client: on resume such runs are done again.
    results = [r for r in load_results(results_path)
               if r["outcome"] != "infra_error" and listener_failure(
                   opts.artifacts / r["client"] / r["scenario"] / str(r["run"]) / "proxy.log"
               ) is None] if opts.resume else []
    previous = read_plan(opts.artifacts) if opts.resume else None
    if opts.resume:
        problem = resume_problem(opts.artifacts, opts.shard, results)
        if problem is not None:
            raise ValueError(problem)
    if results_path.exists():
        results_path.unlink()
    with results_path.open("w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, default=str) + "\n" for r in results)
    record = new_plan(shard=opts.shard, clients=opts.clients,
                      scenarios=[(s.name, s.version) for s in opts.scenarios], runs=opts.runs,
                      order=opts.order)
    # The time of earlier pieces is carried from the start and kept current after every run,
    # so a piece stopped by a signal (which never reaches the end of this function) still
    # hands its time to the next one.
    earlier_s = float((previous or {}).get("wall_time_s") or 0.0)
    record["wall_time_s"] = round(earlier_s, 1)
    write_plan(opts.artifacts, record)
    done = {(r["client"], r["scenario"], r["run"]) for r in results}
    attach_control = _controls(opts, clusters, results, run_once)
    t0 = time.monotonic()
    not_run: list[dict[str, Any]] = []
    unavailable: dict[str, str] = {}
    plan = _plan(opts)
    part = f"shard {opts.shard}: " if opts.shard is not None else ""
    opts.log(f"matrix: {part}{len(plan)} runs planned ({len(opts.clients)} clients x "
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
        elapsed = time.monotonic() - t0
        if (spec.name not in unavailable and
                elapsed + scenario.outcome.max_duration_s + RUN_OVERHEAD_S > opts.max_total_s):
            not_run.append({"client": spec.name, "scenario": scenario.name, "run": run})
            continue
        result = _run_with_retries(opts, clusters, spec, scenario, run, protocol, run_once,
                                   unavailable, t0)
        attach_control(result, spec)
        result["kafka_version"] = kafka_version or clusters.kafka_version()
        results.append(result)
        with results_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(result, default=str) + "\n")
        record["wall_time_s"] = round(earlier_s + time.monotonic() - t0, 1)
        write_plan(opts.artifacts, record)
        tries = len(result.get("attempts", [])) or 1
        opts.log(f"[{i}/{len(plan)} {time.monotonic() - t0:6.0f}s] {spec.name} x "
                 f"{scenario.name} #{run}: {run_line(result)} "
                 f"({float(result.get('duration_s') or 0.0):.0f} s"
                 f"{f', attempt {tries}' if tries > 1 else ''})")
    total = time.monotonic() - t0
    record.update(finished_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  wall_time_s=round(earlier_s + total, 1), results=len(results),
                  not_run=len(not_run), unavailable_clients=unavailable)
    write_plan(opts.artifacts, record)
    summary = _write_report(opts, results, kafka_version or clusters.kafka_version(),
                            unavailable, not_run, total)
    opts.log(f"matrix: {len(results)} runs in {total:.0f} s; report in {opts.out}")
    return summary


def _run_with_retries(opts: MatrixOptions, clusters: ClusterPool, spec: ClientSpec,
                      scenario: Scenario, run: int, protocol: str, run_once: RunOnce,
                      unavailable: dict[str, str], t0: float) -> dict[str, Any]:
    """One run: attempted again while its result is infra_error (up to `infra_attempts` in
    all, a pause between), each attempt recorded; never raises an `Exception`.

    The evidence of a failed attempt moves to `<run>/attempts/<n>/`, so the run's directory
    holds the last attempt's evidence and every earlier one beside it; `result.json` and the
    result carry `attempts`: [{attempt, outcome, infra, reason}, ...].
    """
    run_dir = opts.artifacts / spec.name / scenario.name / str(run)
    stash = run_dir.parent / f".{run}.{ATTEMPTS_DIR}"
    shutil.rmtree(stash, ignore_errors=True)
    shutil.rmtree(run_dir, ignore_errors=True)  # evidence of this run only
    attempts: list[dict[str, Any]] = []
    most = max(1, opts.infra_attempts)
    for attempt in range(1, most + 1):
        result, final = _attempt(opts, clusters, spec, scenario, run, protocol, run_once,
                                 unavailable)
        entry: dict[str, Any] = {"attempt": attempt, "outcome": result["outcome"]}
        attempts.append(entry)
        if result["outcome"] != "infra_error":
            break
        reason = str(result.get("detail", ""))[:500]
        entry.update(infra=result.get("infra", "run"), reason=reason)
        if final:
            break
        if attempt == most:
            if result.get("infra") == "harness":
                unavailable[spec.name] = reason.removeprefix("harness unavailable: ")
                opts.log(f"client {spec.name} unavailable: {unavailable[spec.name]}")
            break
        elapsed = time.monotonic() - t0
        if (elapsed + opts.infra_retry_pause_s + scenario.outcome.max_duration_s
                + RUN_OVERHEAD_S > opts.max_total_s):
            result.setdefault("notes", []).append(
                "infra_error not retried: another attempt would exceed the time budget")
            break
        opts.log(f"{spec.name} x {scenario.name} #{run}: infra_error on attempt {attempt} of "
                 f"{most}, trying again in {opts.infra_retry_pause_s:g} s: {reason[:200]}")
        if run_dir.exists():
            stash.mkdir(parents=True, exist_ok=True)
            run_dir.replace(stash / str(attempt))
        time.sleep(opts.infra_retry_pause_s)
    result["attempts"] = attempts
    _record_evidence(run_dir, stash, result)
    return result


def _attempt(opts: MatrixOptions, clusters: ClusterPool, spec: ClientSpec, scenario: Scenario,
             run: int, protocol: str, run_once: RunOnce, unavailable: dict[str, str]
             ) -> tuple[dict[str, Any], bool]:
    """One attempt of a run and whether it is final (an infra_error that no retry can mend).
    Whatever goes wrong becomes an infra_error result, never an exception of the matrix."""
    def infra(detail: str, kind: str, final: bool = False,
              notes: list[str] | None = None) -> tuple[dict[str, Any], bool]:
        result = _infra_result(spec, scenario, run, protocol, detail[:1000], kind)
        result["notes"] = notes or []
        return result, final

    brokers = scenario.setup.brokers
    if spec.name in unavailable:
        return infra(f"harness unavailable: {unavailable[spec.name]}", "harness", True)
    if brokers in clusters.unavailable:
        return infra(clusters.unavailable[brokers], "cluster", True)
    try:
        spec.command()  # builds Go/Java harnesses once (cached); fails fast if it can't
    except Exception as exc:
        return infra(f"harness unavailable: {type(exc).__name__}: {exc}", "harness")
    try:
        cluster = clusters.get(brokers)
    except Exception as exc:  # the pool already tried BROKER_START_ATTEMPTS times; remembered
        return infra(str(exc), "cluster", True)
    req = RunRequest(
        client=spec, scenario=scenario, run=run, protocol=protocol,
        kafka_bootstrap=cluster.bootstrap_servers,
        artifacts=opts.artifacts / spec.name / scenario.name / str(run),
        seed=seed_for(spec.name, scenario.name, run), cluster=cluster,
    )
    try:
        shutil.rmtree(req.artifacts, ignore_errors=True)
        result = run_once(req)
    except Exception as exc:
        return infra(f"the run raised {type(exc).__name__}: {exc}", "exception",
                     notes=[traceback.format_exc()[-4000:]])
    if result.get("outcome") == "infra_error":
        result.setdefault("infra", "run")
    return result, False


def _record_evidence(run_dir: Path, stash: Path, result: dict[str, Any]) -> None:
    """The run's result.json with its attempts, the failed attempts' evidence inside it."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        if stash.exists():
            target = run_dir / ATTEMPTS_DIR
            shutil.rmtree(target, ignore_errors=True)
            stash.replace(target)
        (run_dir / "result.json").write_text(json.dumps(result, indent=2, default=str))
    except OSError as exc:
        result.setdefault("notes", []).append(f"evidence not fully written: {exc}")


def _write_report(opts: MatrixOptions, results: list[dict[str, Any]], kafka_version: str,
                  unavailable: dict[str, str], not_run: list[dict[str, Any]],
                  wall_time_s: float) -> dict[str, Any]:
    summary = write_report(
        results, out_dir=opts.out, artifacts=_evidence_root(opts), clients=opts.clients,
        scenarios=opts.scenarios, runs=opts.runs, kafka_version=kafka_version,
        unavailable=unavailable, not_run=not_run, wall_time_s=wall_time_s,
    )
    shard = opts.shard
    if shard is None:
        return summary

    def elsewhere(client: str, scenario: str) -> str | None:
        if shard.owns(client, scenario):
            return None
        return (f"cell of shard {shard_of(client, scenario, shard.count)}/{shard.count}, "
                f"not of this one ({shard})")

    summary["shard"] = str(shard)
    return relabel_not_run(summary, opts.out, elsewhere, heading=(
        f"This report is shard {shard} of the matrix: the other shards' cells show not_run "
        "here. `kafka-chaos-proxy matrix-merge` joins the shards' artifacts into one report."))


def _controls(opts: MatrixOptions, clusters: ClusterPool, results: list[dict[str, Any]],
              run_once: RunOnce) -> Callable[[dict[str, Any], ClientSpec], None]:
    """The matrix's fault-free controls (lab.matrix.control): a run that fails an expectation
    without its fault firing gets the client's `baseline-no-fault` run once, under the same
    protocol, as `artifacts/CLIENT/baseline-no-fault/control-PROTOCOL`, and its result.json is
    written again with the control; results of a resumed matrix bring the controls they
    already had."""

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
        return control_summary(run_once(req), evidence)

    controls = FaultFreeControl(run, log=opts.log)
    controls.seed(results)

    def attach(result: dict[str, Any], spec: ClientSpec) -> None:
        if controls.attach(result, spec):
            run_dir = opts.artifacts / spec.name / str(result["scenario"]) / str(result["run"])
            if run_dir.is_dir():
                (run_dir / "result.json").write_text(json.dumps(result, indent=2, default=str))

    return attach


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
    results = [r for r in results if r["scenario"] in wanted and r["client"] in opts.clients
               and (opts.shard is None or opts.shard.owns(r["client"], r["scenario"]))]
    kafka_version = next((str(r["kafka_version"]) for r in results if r.get("kafka_version")),
                         "unknown")
    wall = sum(float(r.get("duration_s", 0.0)) for r in results)
    return _write_report(opts, results, kafka_version, {}, [], wall)


def run_with_broker(opts: MatrixOptions) -> dict[str, Any]:
    """Start (or find) the brokers the scenarios need, once each for the whole matrix."""
    with ClusterPool(opts.kafka_version, log=opts.log) as clusters:
        return run_matrix(opts, clusters=clusters)
