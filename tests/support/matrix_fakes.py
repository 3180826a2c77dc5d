"""A matrix without brokers or harnesses: a scripted stand-in for one run of a cell, and a
cluster pool whose one cluster is never contacted. For tests of the matrix's planning, retries,
shards and merge, which are about what the loop does with results, not about clients."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kafka_chaos_proxy.lab.matrix.cell import RunRequest
from kafka_chaos_proxy.lab.matrix.runner import ClusterPool, MatrixOptions, run_matrix
from kafka_chaos_proxy.lab.scenario import Scenario, parse_scenario
from kafka_chaos_proxy.proxy.real_kafka.cluster import KafkaCluster

Key = tuple[str, str, int]
#: What a scripted attempt does: an outcome to return, or an exception to raise
#: (KeyboardInterrupt: the matrix is interrupted there).
Step = str | BaseException


def scenario(name: str, **setup: Any) -> Scenario:
    spec: dict[str, Any] = {"name": name, "version": 1, "description": f"{name} description"}
    if setup:
        spec["setup"] = setup
    return parse_scenario(spec)


def pool() -> ClusterPool:
    """A pool holding one 1-broker 'cluster' that nothing ever connects to."""
    cluster = KafkaCluster(bootstrap_servers="127.0.0.1:1", nodes={}, version="9.9",
                           log_paths=[], kind="external")
    return ClusterPool("9.9", given={1: cluster}, log=lambda m: None)


class FakeRuns:
    """`run_once` for `run_matrix`: every attempt of a run takes the next step scripted for
    its (client, scenario, run), `recovered` once the script is used up; each attempt leaves a
    small evidence directory, as a real run does."""

    def __init__(self, script: dict[Key, list[Step]] | None = None) -> None:
        self.script = {k: list(v) for k, v in (script or {}).items()}
        self.calls: list[Key] = []

    def __call__(self, req: RunRequest) -> dict[str, Any]:
        key = (req.client.name, req.scenario.name, req.run)
        self.calls.append(key)
        steps = self.script.get(key, [])
        step = steps.pop(0) if steps else "recovered"
        req.artifacts.mkdir(parents=True, exist_ok=True)
        (req.artifacts / "m0.jsonl").write_text(json.dumps({"event": "started"}) + "\n")
        if isinstance(step, BaseException):
            raise step
        detail = "the proxy did not start" if step == "infra_error" else f"{step} detail"
        result = {"client": key[0], "scenario": key[1], "scenario_version": 1, "run": key[2],
                  "protocol": req.protocol, "outcome": step, "detail": detail,
                  "duration_s": 1.0, "errors": [], "duplicates": 0, "missing": 0,
                  "time_to_recover_s": None, "library_versions": {}}
        (req.artifacts / "result.json").write_text(json.dumps(result))
        return result


def options(tmp_path: Path, clients: Iterable[str], scenarios: list[Scenario], *,
            runs: int = 2, artifacts: str = "artifacts", **extra: Any) -> MatrixOptions:
    return MatrixOptions(clients=list(clients), scenarios=scenarios, runs=runs,
                         out=tmp_path / f"{artifacts}-report", artifacts=tmp_path / artifacts,
                         log=lambda m: None, infra_retry_pause_s=0.0, **extra)


def run(opts: MatrixOptions, fake: FakeRuns) -> dict[str, Any]:
    return run_matrix(opts, clusters=pool(), run_once=fake)


def results(artifacts: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (artifacts / "results.jsonl").read_text().splitlines()
            if line.strip()]
