"""The matrix end to end, small enough for CI: one scenario, three clients in three languages.

`syncgroup-not-coordinator` (NOT_COORDINATOR on the first SyncGroup) is deterministic: the rule
matches the first SyncGroup whatever the timing, so the outcome is a property of the client.
The expected outcomes are what these clients were measured to do (docs/matrix.md): each finds
the coordinator again, rejoins and consumes every record exactly once, so each run passes the
scenario's expectations (no error reaches the application, nothing lost, no member silent,
no duplicates beyond the at-least-once bound).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kafka_chaos_proxy.lab.matrix.runner import MatrixOptions, run_matrix
from kafka_chaos_proxy.lab.scenario import load_scenario
from kafka_chaos_proxy.proxy.real_kafka.cluster import KafkaCluster

pytestmark = pytest.mark.clients

CATALOG = Path(__file__).resolve().parents[3] / "scenarios"
SCENARIO = "syncgroup-not-coordinator"
MEASURED = {"aiokafka": "recovered", "java-classic": "recovered", "sarama": "recovered"}


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_one_scenario_three_languages(kafka_cluster: KafkaCluster, tmp_path: Path) -> None:
    scenario = load_scenario(CATALOG / f"{SCENARIO}.yaml")
    opts = MatrixOptions(clients=list(MEASURED), scenarios=[scenario], runs=1,
                         out=tmp_path / "docs", artifacts=tmp_path / "artifacts",
                         max_total_s=900, log=lambda m: None)
    summary = run_matrix(opts, kafka_cluster.bootstrap_servers, kafka_cluster.version)

    assert summary["unavailable_clients"] == {}
    cells = {c["client"]: c for c in summary["cells"]}
    for client, expected in MEASURED.items():
        cell = cells[client]
        assert (cell["outcome"], cell["agree"], cell["runs"]) == (expected, 1, 1), cell
        assert (cell["verdict"], cell["verdict_agree"]) == ("pass", 1), cell

        run_dir = tmp_path / "artifacts" / client / SCENARIO / "1"
        result = json.loads((run_dir / "result.json").read_text())
        assert result["injections"] == 1
        # The verdict: every expectation of the scenario judged, each with its reason.
        assert result["verdict"] == "pass", result["expectations"]
        assert [e["name"] for e in result["expectations"]] == [
            e.name for e in scenario.expectations]
        assert all(e["status"] == "pass" and e["reason"] for e in result["expectations"])
        assert result["observations"]["injections"] == 1
        assert result["observations"]["lost"] == 0
        assert result["robustness_only"] is False  # NOT_COORDINATOR on SyncGroup is real
        assert (result["missing"], result["duplicates"]) == (0, 0)
        # The verdict is backed by the proxy's record of the injected fault ...
        proxy_events = json.loads((run_dir / "proxy-events.json").read_text())
        injected = [e for e in proxy_events if e.get("fault")]
        assert [(e["api"], e["error"]) for e in injected] == [("SyncGroup", "NOT_COORDINATOR")]
        # ... followed by a SyncGroup that succeeded for the rejoined member,
        later = [e for e in proxy_events if e["seq"] > injected[0]["seq"]]
        assert any(e["api"] == "SyncGroup" and e["error"] is None for e in later)
        # ... and by the harness's own account: an assignment and every record.
        harness = _lines(run_dir / "m0.jsonl")
        assert harness[0]["event"] == "started"
        assert any(e["event"] == "assigned" and e["partitions"] for e in harness)
        records = {(e["topic"], e["partition"], e["offset"]) for e in harness
                   if e["event"] == "record"}
        assert len(records) == result["expected"] == scenario.total_records

    report = (tmp_path / "docs" / "matrix.md").read_text()
    assert f"`{SCENARIO}`" in report and "[pass 1/1](" in report
