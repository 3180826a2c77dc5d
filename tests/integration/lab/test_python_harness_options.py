"""Harness options change what the Python harnesses do against the real broker: a
per-record processing delay spaces the records out, `--commit-in-revoke` commits what was
processed in the revoke callback when a second member's join takes partitions away, and the
`config` event says what the member ran with (the assignor asked for, the request timeout)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.go_harness import (
    HarnessProcess,
    contract_args,
    create_topic,
    of,
    produce,
    records_complete,
)

HARNESS_DIR = Path(__file__).resolve().parents[2] / "clients" / "python"
STEP_S = 60.0
DELAY_MS = 100
RECORDS = 10



@pytest.mark.parametrize("script", ["aiokafka_harness.py", "kafka_python_harness.py",
                                    "confluent_harness.py"])
def test_python_commit_in_revoke_and_processing_delay(
    script: str, kafka_bootstrap: str, unique_name: Any, tmp_path: Path,
    running: list[HarnessProcess],
) -> None:
    # range, which every one of them has (aiokafka's default is roundrobin).
    assignor = "range"
    topic, group = unique_name("t"), unique_name("g")
    create_topic(kafka_bootstrap, topic, 2)
    expected = produce(kafka_bootstrap, topic, RECORDS, 2)
    command = [sys.executable, "-u", str(HARNESS_DIR / script)]
    options = ["--commit", "auto", "--commit-in-revoke", "true", "--assignor", assignor,
               "--request-timeout-ms", "20000"]
    first = HarnessProcess(command + contract_args(
        kafka_bootstrap, topic, group, unique_name("c1"), *options,
        "--processing-delay-ms", str(DELAY_MS)), tmp_path / "first.stderr.log")
    running.append(first)
    first.wait_for(lambda ev: records_complete(ev, topic, expected), "every record", STEP_S)
    config = first.events[1]
    assert config["event"] == "config", first.evidence()
    assert (config["commit_in_revoke"], config["processing_delay_ms"], config["assignors"],
            config["request_timeout_ms"]) == (True, DELAY_MS, [assignor], 20000)
    times = [e["ts"] for e in of(first.events, "record")]
    assert times[-1] - times[0] >= (RECORDS - 1) * DELAY_MS / 1000 * 0.9, first.evidence()

    # Range over two partitions and two members: the first member gives one up.
    second = HarnessProcess(command + contract_args(
        kafka_bootstrap, topic, group, unique_name("c2"), *options),
        tmp_path / "second.stderr.log")
    running.append(second)
    # The commit in the callback comes first, then the `revoked` event of that callback.
    first.wait_for(lambda ev: any(c.get("in_revoke") for c in of(ev, "commit")) and any(
        e["partitions"].get(topic) for e in of(ev, "revoked")),
        "a commit in the revoke callback", STEP_S)
    second.wait_for(lambda ev: any(e["partitions"] for e in of(ev, "assigned")),
                    "the second member's assignment", STEP_S)
    in_revoke = [c for c in of(first.events, "commit") if c.get("in_revoke")]
    assert in_revoke[0]["ok"] and in_revoke[0]["error"] is None, first.evidence()
    committed = {int(p): o for c in in_revoke for p, o in c["offsets"][topic].items()}
    revoked = {p for e in of(first.events, "revoked") for p in e["partitions"].get(topic, [])}
    # What it committed there is exactly what it had processed of what it gave up.
    assert committed == {p: expected[p] for p in revoked}, first.evidence()
    assert first.terminate() == 0 and second.terminate() == 0
    assert not of(first.events[: first.before_stop], "error"), first.evidence()
