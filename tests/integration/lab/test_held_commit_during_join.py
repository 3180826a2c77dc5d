"""A hold armed by a real client's own coordination, through the matrix's cell runner:
`offsetcommit-held-during-join` against the real broker, for a client that waits for its
commit before it rejoins (aiokafka) and one that rejoins with the commit outstanding
(kafka-python), so both ends of the hold are shown.

The proxy holds member 0's first OffsetCommit after its Heartbeat was answered
REBALANCE_IN_PROGRESS, until member 0's JoinGroup arrives (at most 5 s). What the evidence must
show, whichever way the client behaves: the hold began on exactly that commit (after that
Heartbeat answer, in the proxy's own event order), it ended by its `until` only if member 0's
JoinGroup really arrived while the commit was held and by its timeout only if none did, and no
record was lost. When the JoinGroup came first, the held commit reached the broker after the
join and the broker itself refused it (the commit landed during the join).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kafka_chaos_proxy.lab.matrix.runner import ClusterPool, MatrixOptions, run_matrix
from kafka_chaos_proxy.lab.scenario import load_scenario
from kafka_chaos_proxy.proxy.real_kafka.cluster import KafkaCluster
from tests.support.kafka_python_stall import stalled_at_start

CATALOG = Path(__file__).resolve().parents[3] / "scenarios"
SCENARIO = "offsetcommit-held-during-join"
#: How each client ends the hold, 5 runs of 5 in the published race evidence (docs/races.md).
ENDS_BY = {"aiokafka": "timeout", "kafka-python": "until"}


def _lines(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of a log (the proxy's banner and other plain lines are skipped)."""
    return [json.loads(line) for line in path.read_text().splitlines()
            if line.startswith("{")]


def _run_cell(kafka_cluster: KafkaCluster, where: Path, client: str,
              scenario: Any) -> tuple[Path, dict[str, Any]]:
    """One run of the cell through the matrix's runner: its directory and result."""
    opts = MatrixOptions(clients=[client], scenarios=[scenario], runs=1,
                         out=where / "docs", artifacts=where / "artifacts",
                         max_total_s=240.0, log=lambda m: None)
    with ClusterPool(given={1: kafka_cluster}, log=lambda m: None) as clusters:
        run_matrix(opts, clusters=clusters)
    run_dir = where / "artifacts" / client / SCENARIO / "1"
    return run_dir, json.loads((run_dir / "result.json").read_text())


def _stalled_at_start(client: str, run_dir: Path, result: dict[str, Any]) -> bool:
    """kafka-python's start-up stall (tests.support.kafka_python_stall): no step of the
    scenario fires, so the run is not_injected. The hold is what this test is about: such a
    run is done once more, and a second stall fails the test."""
    return result["outcome"] == "not_injected" and stalled_at_start(
        client, _lines(run_dir / "m0.jsonl"))


@pytest.mark.parametrize("client", sorted(ENDS_BY))
def test_a_commit_is_held_until_the_members_join_or_its_timeout(
        kafka_cluster: KafkaCluster, tmp_path: Path, client: str) -> None:
    scenario = load_scenario(CATALOG / f"{SCENARIO}.yaml")
    for attempt in (1, 2):
        run_dir, result = _run_cell(kafka_cluster, tmp_path / f"attempt-{attempt}", client,
                                    scenario)
        if not _stalled_at_start(client, run_dir, result):
            break
    else:
        pytest.fail("member 0 never got its partitions in two attempts (the start-up stall "
                    f"of _stalled_at_start, twice): {result['detail']}")
    assert result["outcome"] != "infra_error", result["detail"]
    assert result["missing"] == 0, result["detail"]

    log = _lines(run_dir / "proxy.log")
    started = [e for e in log if e.get("event") == "hold_started"]
    ended = [e for e in log if e.get("event") == "hold_ended"]
    assert [e["rule"] for e in started] == ["held-commit"]  # exactly one commit was held
    assert len(ended) == 1 and ended[0]["how"] == ENDS_BY[client]

    events = [e for e in json.loads((run_dir / "proxy-events.json").read_text())
              if (e.get("client_id") or "").endswith("-m0")]
    (held,) = [e for e in events if (e.get("fault") or {}).get("rule") == "held-commit"]
    assert held["api"] == "OffsetCommit" and held["fault"]["action"] == "hold"
    told = [e for e in events if e["api"] == "Heartbeat"
            and e.get("error") == "REBALANCE_IN_PROGRESS"]
    # Armed by the first such answer: the held commit came after it (answered = ts + latency).
    assert told and held["ts"] >= min(e["ts"] + e["latency_ms"] / 1000 for e in told) - 0.001
    held_until = held["ts"] + held["latency_ms"] / 1000
    joined_meanwhile = [e for e in events if e["api"] == "JoinGroup"
                        and held["ts"] < e["ts"] < held_until]
    if ended[0]["how"] == "until":
        assert joined_meanwhile, "the hold ended by its until without a JoinGroup of member 0"
        # Forwarded after the join: the broker refused the commit of the old generation.
        assert held["error"] in ("ILLEGAL_GENERATION", "REBALANCE_IN_PROGRESS")
        assert held["outcome"] == "ok"  # the broker's own answer, not a synthesized one
    else:
        assert not joined_meanwhile  # the client waited for its commit before it rejoined
        assert held["latency_ms"] >= 5000
