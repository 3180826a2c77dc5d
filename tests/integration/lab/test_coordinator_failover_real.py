"""A real coordinator failover through the matrix's own cell runner: `coordinator-failover-real`
for one Python client, through the real proxy, on a real three-node KRaft cluster.

What the evidence must show: the brokers themselves (FindCoordinator + DescribeGroups, asked
directly, not through the proxy) name another coordinator after the move and after the kill;
the proxy saw the client ask FindCoordinator and be told the new node; and the client went on
consuming after each change. confluent-kafka is the client: its harness starts in well under a
second (no JVM, no build) and librdkafka rediscovers coordinators on its own.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from kafka_chaos_proxy.lab.matrix.runner import ClusterPool, MatrixOptions, run_matrix
from kafka_chaos_proxy.lab.scenario import load_scenario
from kafka_chaos_proxy.proxy.real_kafka.cluster import KafkaCluster

pytestmark = pytest.mark.cluster3

CATALOG = Path(__file__).resolve().parents[3] / "scenarios"
SCENARIO = "coordinator-failover-real"
CLIENT = "confluent-kafka"
#: The run is bounded by the scenario (max_duration_s 75) plus set-up and teardown.
BOUND_S = 180.0


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_a_real_coordinator_move_and_kill_through_the_proxy(
        kafka_cluster3: KafkaCluster, tmp_path: Path) -> None:
    if kafka_cluster3.kind != "local":
        pytest.skip("stopping a broker needs the local kind")
    scenario = load_scenario(CATALOG / f"{SCENARIO}.yaml")
    opts = MatrixOptions(clients=[CLIENT], scenarios=[scenario], runs=1,
                         out=tmp_path / "docs", artifacts=tmp_path / "artifacts",
                         max_total_s=BOUND_S, log=lambda m: None)
    t0 = time.monotonic()
    with ClusterPool(given={3: kafka_cluster3}, log=lambda m: None) as clusters:
        run_matrix(opts, clusters=clusters)
    elapsed = time.monotonic() - t0
    assert elapsed < BOUND_S

    run_dir = tmp_path / "artifacts" / CLIENT / SCENARIO / "1"
    result = json.loads((run_dir / "result.json").read_text())
    assert result["outcome"] != "infra_error", result["detail"]
    assert result["brokers"] == 3
    assert all(s["fired_at"] is not None and s["error"] is None for s in result["steps"]), \
        result["steps"]
    move, kill, restart = result["topology"]
    assert [a["action"] for a in (move, kill, restart)] == \
        ["move_coordinator", "stop_broker", "restart_broker"]
    assert all(a["error"] is None for a in (move, kill, restart)), result["topology"]

    # The brokers' own answer: the coordinator changed with the move, and again with the kill.
    assert move["coordinator_before"] != move["coordinator_after"]
    assert move["leader_after"] == move["coordinator_after"]
    assert sorted(move["replicas_before"]) == sorted(move["replicas_after"]) == [1, 2, 3]
    assert kill["stopped_node"] == kill["coordinator_before"] == move["coordinator_after"]
    assert kill["coordinator_after"] != kill["stopped_node"]
    assert restart["started_nodes"] == [kill["stopped_node"]]
    assert all(kafka_cluster3.is_running(n) for n in kafka_cluster3.nodes)  # left whole

    # The proxy's events: after the move the client asked again and was told the new node.
    proxy_events = json.loads((run_dir / "proxy-events.json").read_text())
    answers = [e for e in proxy_events if e.get("api") == "FindCoordinator"
               and e.get("group") == result["group"] and e.get("coordinator") is not None]
    assert any(e["coordinator"] == move["coordinator_before"] and e["ts"] < move["started_at"]
               for e in answers)
    assert any(e["coordinator"] == move["coordinator_after"] and e["ts"] > move["started_at"]
               for e in answers)
    assert move["proxy_names_new_coordinator_at"] is not None
    assert kill["proxy_names_new_coordinator_at"] is not None

    # The client went on consuming after the move, after the kill and after the restart.
    records = [e for i in range(result["members"]) for e in _lines(run_dir / f"m{i}.jsonl")
               if e["event"] == "record"]
    for action in (move, kill, restart):
        assert any(e["ts"] > action["ended_at"] for e in records), action["action"]
    assert result["missing"] == 0, result["detail"]
    assert result["produce_rate"][0]["sent"] == result["produce_rate"][0]["planned"]
    commits = [e for i in range(result["members"]) for e in _lines(run_dir / f"m{i}.jsonl")
               if e["event"] == "commit" and e.get("ok")]
    assert any(e["ts"] > kill["ended_at"] for e in commits)  # committing to the new one
