"""The matrix's brokers: one cluster per broker count, started once on first use, reused, and
a cluster that cannot start turns its cells into infra_error results instead of ending the
matrix."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import kafka_chaos_proxy.proxy.real_kafka as real_kafka
from kafka_chaos_proxy.lab.matrix.runner import ClusterPool, MatrixOptions, run_matrix
from kafka_chaos_proxy.lab.scenario import parse_scenario
from kafka_chaos_proxy.proxy.real_kafka.cluster import KafkaCluster


def cluster(n: int) -> KafkaCluster:
    return KafkaCluster(bootstrap_servers=f"127.0.0.1:{9000 + n}", nodes={}, version="9.9",
                        log_paths=[], kind="local")


def test_clusters_start_once_per_size_and_given_ones_are_used_as_they_are(
        monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[int] = []
    stopped: list[int] = []

    @contextlib.contextmanager
    def fake_provide(nodes: int = 1, version: str | None = None,
                     **_: Any) -> Iterator[KafkaCluster]:
        started.append(nodes)
        yield cluster(nodes)
        stopped.append(nodes)

    monkeypatch.setattr(real_kafka, "provide_kafka", fake_provide)
    one = cluster(1)
    with ClusterPool("9.9", given={1: one}, log=lambda m: None) as pool:
        assert pool.get(1) is one
        three = pool.get(3)
        assert pool.get(3) is three and started == [3]
        assert pool.kafka_version() == "9.9"
    assert stopped == [3]  # only the cluster the pool started


def test_a_cluster_that_does_not_start_makes_infra_errors(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    attempts: list[int] = []

    class BrokerStartError(RuntimeError):
        pass

    @contextlib.contextmanager
    def failing(nodes: int = 1, version: str | None = None, **_: Any) -> Iterator[KafkaCluster]:
        attempts.append(nodes)
        raise BrokerStartError("no JVM today")
        yield cluster(nodes)  # pragma: no cover

    monkeypatch.setattr(real_kafka, "provide_kafka", failing)
    scenario = parse_scenario({"name": "three", "version": 1, "description": "d",
                               "setup": {"brokers": 3},
                               "steps": [{"at": 1, "move_coordinator": True}]})
    opts = MatrixOptions(clients=["kafka-python"], scenarios=[scenario], runs=2,
                         out=tmp_path / "out", artifacts=tmp_path / "art", log=lambda m: None)
    summary = run_matrix(opts, "127.0.0.1:1", "9.9")
    assert attempts == [3, 3, 3]  # retried at start-up, then remembered as unavailable
    results = [json.loads(line) for line in
               (tmp_path / "art" / "results.jsonl").read_text().splitlines()]
    assert [r["outcome"] for r in results] == ["infra_error", "infra_error"]
    assert "the 3-broker cluster did not start" in results[0]["detail"]
    assert summary["cells"][0]["outcome"] == "infra_error"
