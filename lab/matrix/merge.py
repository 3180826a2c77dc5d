"""`kafka-chaos-proxy matrix-merge`: the artifacts of several matrix runs (typically the shards of
one matrix, run on different machines) as one results.jsonl, one evidence tree and one report.

Every run (client, scenario, run number) must come from exactly one directory: a run found twice
is refused with both places named, never silently picked, since two shards that both ran a cell
mean the split was not the one the merge is told about. Cells that no directory ran are
reported as not_run with the reason (which shard they belong to, and whether that shard was
merged at all).

The merged evidence is a new directory (default artifacts/matrix-merged) with the run
directories linked (hard links where the file system allows, else copies) from the inputs; it is
rebuilt on every merge, and a directory that is not an earlier merge's is never overwritten.
The fault-free controls the runs name (lab.matrix.control) come along with them, two shards'
controls of one client kept apart.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka_chaos_proxy.lab.matrix.clients import CLIENTS
from kafka_chaos_proxy.lab.matrix.publish import publish_evidence
from kafka_chaos_proxy.lab.matrix.report import write_report
from kafka_chaos_proxy.lab.matrix.shards import (
    PLAN_FILE,
    Shard,
    load_results,
    read_plan,
    relabel_not_run,
    shard_of,
    write_plan,
)
from kafka_chaos_proxy.lab.scenario import Scenario

MERGED_MARK = "merged-from.json"
RESULTS = "results.jsonl"
#: Duplicates named in the refusal, at most.
SHOWN = 5


class MergeError(ValueError):
    """The directories cannot be merged as given; the message says why and what to do."""


@dataclass
class Source:
    path: Path
    plan: dict[str, Any] | None
    results: list[dict[str, Any]]

    @property
    def shard(self) -> Shard | None:
        text = (self.plan or {}).get("shard")
        return Shard.parse(text) if text else None

    def wall_time_s(self) -> float:
        """The matrix's own time, never less than the sum of its runs' durations.

        Runs are sequential, so their durations are a floor of the wall time. The recorded
        figure can be below it: a piece stopped by a signal recorded no time before the runner
        kept it current after every run, and the next piece then started counting from zero.
        """
        recorded = float((self.plan or {}).get("wall_time_s") or 0.0)
        return max(recorded, sum(float(r.get("duration_s") or 0.0) for r in self.results))


def load_source(path: Path) -> Source:
    if not (path / RESULTS).is_file():
        raise MergeError(f"{path} has no {RESULTS}: not the --artifacts directory of a matrix")
    source = Source(path, read_plan(path), load_results(path / RESULTS))
    try:
        _ = source.shard  # checked once here, so later uses cannot fail
    except ValueError as exc:
        raise MergeError(f"{path}/{PLAN_FILE}: {exc}") from None
    return source


def check_sources(sources: list[Source]) -> None:
    """Refuse shards of different splits, the same shard twice, and any run found twice."""
    counts = {s.shard.count for s in sources if s.shard is not None}
    if len(counts) > 1:
        raise MergeError("the directories come from different splits (--shard K/N with N = "
                         f"{', '.join(str(n) for n in sorted(counts))}): merge one split")
    shards: dict[str, Path] = {}
    for source in sources:
        if source.shard is not None:
            name = str(source.shard)
            if name in shards:
                raise MergeError(f"shard {name} is given twice: {shards[name]} and "
                                 f"{source.path}")
            shards[name] = source.path
    seen: dict[tuple[str, str, int], Path] = {}
    dups: list[str] = []
    for source in sources:
        for r in source.results:
            key = (str(r["client"]), str(r["scenario"]), int(r["run"]))
            if key in seen:
                where = (f"twice in {source.path}" if seen[key] == source.path
                         else f"in both {seen[key]} and {source.path}")
                dups.append(f"{key[0]} x {key[1]} run {key[2]} is {where}")
            else:
                seen[key] = source.path
    if dups:
        more = f" (and {len(dups) - SHOWN} more)" if len(dups) > SHOWN else ""
        raise MergeError(
            f"{len(dups)} runs appear more than once: " + "; ".join(dups[:SHOWN]) + more
            + ". Every run must come from one directory: merge the shards of one split, "
            "each once (each --shard K/N with its own --artifacts).")


def prepare_target(target: Path, sources: list[Source]) -> None:
    """Make `target` an empty directory, refusing to overwrite anything but an earlier merge."""
    resolved = target.resolve()
    for source in sources:
        src = source.path.resolve()
        if resolved == src or src in resolved.parents or resolved in src.parents:
            raise MergeError(f"--artifacts {target} overlaps the merged directory "
                             f"{source.path}: choose a directory of its own")
    if target.exists():
        if not target.is_dir():
            raise MergeError(f"--artifacts {target} is not a directory")
        if any(target.iterdir()):
            if not (target / MERGED_MARK).exists():
                raise MergeError(f"--artifacts {target} is not empty and not an earlier "
                                 "merge: choose another directory")
            shutil.rmtree(target)
    target.mkdir(parents=True, exist_ok=True)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _with_control(result: dict[str, Any], source: Source, index: int, target: Path,
                  carried: dict[tuple[int, str], str]) -> dict[str, Any]:
    """The result, its fault-free control's evidence (lab.matrix.control) brought along.

    Each shard runs the controls its own runs need, so two shards may both hold
    `CLIENT/baseline-no-fault/control-PROTOCOL`, with different runs in them: the first keeps
    that name, a later one is carried as `control-PROTOCOL-from-K` (K: the directory's place
    among the inputs) and the results that name it are pointed there. A result is never
    pointed at another shard's control."""
    control = result.get("control")
    evidence = control.get("evidence") if isinstance(control, dict) else None
    if not evidence or not (source.path / str(evidence)).is_dir():
        return result
    key = (index, str(evidence))
    if key not in carried:
        rel = Path(str(evidence))
        if (target / rel).exists():
            rel = rel.with_name(f"{rel.name}-from-{index}")
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(source.path / str(evidence), target / rel, copy_function=_link_or_copy)
        carried[key] = rel.as_posix()
    assert isinstance(control, dict)
    return {**result, "control": {**control, "evidence": carried[key]}}


def merge_into(sources: list[Source], target: Path) -> list[dict[str, Any]]:
    """The merged results (in the order of the directories given), written to
    `target/results.jsonl`, with every run's evidence directory brought under `target`."""
    check_sources(sources)
    prepare_target(target, sources)
    results: list[dict[str, Any]] = []
    controls: dict[tuple[int, str], str] = {}
    for index, source in enumerate(sources, start=1):
        for r in source.results:
            rel = Path(str(r["client"])) / str(r["scenario"]) / str(r["run"])
            if (source.path / rel).is_dir():
                (target / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copytree(source.path / rel, target / rel, copy_function=_link_or_copy)
            results.append(_with_control(r, source, index, target, controls))
    with (target / RESULTS).open("w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, default=str) + "\n" for r in results)
    mark = {
        "merged_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "sources": [{"path": str(s.path), "shard": (s.plan or {}).get("shard"),
                     "results": len(s.results), "wall_time_s": round(s.wall_time_s(), 1)}
                    for s in sources],
    }
    (target / MERGED_MARK).write_text(json.dumps(mark, indent=1) + "\n", encoding="utf-8")
    return results


def planned(sources: list[Source], catalog: dict[str, Scenario]
            ) -> tuple[list[str], list[str], int]:
    """Clients, scenarios (both in their usual order) and runs per cell of the merged matrix:
    what the directories' plans name together, else what their results hold."""
    clients: set[str] = set()
    scenarios: set[str] = set()
    runs = 0
    for source in sources:
        plan = source.plan or {}
        clients.update(plan.get("clients") or (str(r["client"]) for r in source.results))
        scenarios.update([str(s["name"]) for s in plan.get("scenarios") or []]
                         or (str(r["scenario"]) for r in source.results))
        runs = max([runs, int(plan.get("runs") or 0),
                    *(int(r["run"]) for r in source.results)])
    unknown = sorted(c for c in clients if c not in CLIENTS)
    if unknown:
        raise MergeError(f"unknown client(s) {', '.join(unknown)} in the merged directories")
    order = {name: i for i, name in enumerate(catalog)}
    return ([c for c in CLIENTS if c in clients],
            sorted(scenarios, key=lambda n: (order.get(n, len(order)), n)), max(runs, 1))


def in_catalog(names: list[str], catalog: dict[str, Scenario]) -> list[Scenario]:
    missing = [n for n in names if n not in catalog]
    if missing:
        raise MergeError(f"scenario(s) {', '.join(missing)} of the merged runs are not in the "
                         "catalog: point --scenarios-dir at the catalog they ran from")
    return [catalog[n] for n in names]


def not_run_reason(sources: list[Source]) -> Callable[[str, str], str]:
    """Why a cell has no run in the merge: its shard was not merged, or did not run it."""
    shards = {s.shard.index: s for s in sources if s.shard is not None}
    count = next((s.shard.count for s in sources if s.shard is not None), None)
    unsharded = any(s.shard is None for s in sources)

    def reason(client: str, scenario: str) -> str:
        if count is None or unsharded:
            return "no merged directory ran it"
        owner = shard_of(client, scenario, count)
        if owner not in shards:
            return f"its shard {owner}/{count} was not among the merged directories"
        return (f"shard {owner}/{count} ({shards[owner].path}) did not run it (time budget, "
                "interrupted, or another selection)")

    return reason


def unavailable_clients(results: list[dict[str, Any]]) -> dict[str, str]:
    """Clients whose harness could not be built, from their runs' infra_error results."""
    out: dict[str, str] = {}
    for r in results:
        if r.get("outcome") == "infra_error" and r.get("infra") == "harness":
            out.setdefault(str(r["client"]),
                           str(r.get("detail", "")).removeprefix("harness unavailable: "))
    return out


def kafka_version(results: list[dict[str, Any]], log: Callable[[str], None]) -> str:
    versions = Counter(str(r["kafka_version"]) for r in results if r.get("kafka_version"))
    if not versions:
        return "unknown"
    if len(versions) > 1:
        log("matrix-merge: warning: the runs were made on different Kafka versions: "
            + ", ".join(f"{v} ({n} runs)" for v, n in versions.most_common()))
    return versions.most_common(1)[0][0]


def merged_plan_record(sources: list[Source], clients: list[str],
                       scenarios: list[Scenario], runs: int) -> dict[str, Any]:
    """The merged directory's own matrix-plan.json (so --report-only works on it too)."""
    return {"shard": None, "clients": clients,
            "scenarios": [{"name": s.name, "version": s.version} for s in scenarios],
            "runs": runs, "merged_from": [str(s.path) for s in sources],
            "wall_time_s": round(sum(s.wall_time_s() for s in sources), 1)}


def merge_matrix(dirs: list[Path], *, out: Path, artifacts: Path,
                 catalog: dict[str, Scenario], publish: Path | None = None,
                 clients: list[str] | None = None, scenarios: list[str] | None = None,
                 runs: int | None = None,
                 log: Callable[[str], None] = print) -> dict[str, Any]:
    """Merge `dirs` into `artifacts` and write the report to `out` (and the compact evidence
    to `publish` when given). `clients`, `scenarios` and `runs` narrow or fix the merged
    matrix; by default it is what the directories planned together."""
    if not dirs:
        raise MergeError("nothing to merge: give the --artifacts directories of the shards")
    sources = [load_source(d) for d in dirs]
    check_sources(sources)  # before anything is written
    all_clients, all_scenarios, all_runs = planned(sources, catalog)
    chosen_clients = clients or all_clients
    chosen = in_catalog(scenarios or all_scenarios, catalog)
    per_cell = runs or all_runs
    results = merge_into(sources, artifacts)
    names = {s.name for s in chosen}
    kept = [r for r in results if r["client"] in chosen_clients and r["scenario"] in names
            and int(r["run"]) <= per_cell]
    write_plan(artifacts, merged_plan_record(sources, chosen_clients, chosen, per_cell))
    evidence = artifacts
    if publish is not None:
        published = publish_evidence(artifacts, publish)
        log(f"matrix-merge: evidence of {published} runs published to {publish}")
        evidence = publish
    have = {(r["client"], r["scenario"], int(r["run"])) for r in kept}
    missing = [{"client": c, "scenario": s.name, "run": n}
               for s in chosen for c in chosen_clients
               if CLIENTS[c].protocol_for_scenario(s) is not None
               for n in range(1, per_cell + 1) if (c, s.name, n) not in have]
    summary = write_report(
        kept, out_dir=out, artifacts=evidence, clients=chosen_clients, scenarios=chosen,
        runs=per_cell, kafka_version=kafka_version(kept, log),
        unavailable=unavailable_clients(kept), not_run=missing,
        wall_time_s=sum(s.wall_time_s() for s in sources),
    )
    summary["merged_from"] = [{"path": str(s.path), "shard": (s.plan or {}).get("shard"),
                               "results": len(s.results)} for s in sources]
    summary = relabel_not_run(summary, out, not_run_reason(sources), heading=(
        "Merged from " + ", ".join(
            f"{s.path}" + (f" (shard {s.shard})" if s.shard is not None else "")
            for s in sources) + "."))
    log(f"matrix-merge: {len(kept)} runs from {len(sources)} directories; "
        f"{len(missing)} planned runs missing; evidence in {artifacts}, report in {out}")
    return summary
