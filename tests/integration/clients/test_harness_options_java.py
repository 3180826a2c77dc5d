"""Harness options change what the Java harness does against a real broker: a per-record
processing delay spaces the records out, and `--commit-in-revoke` commits what was processed
in onPartitionsRevoked when a second member's join takes the partitions away (eager range,
the client's first default assignor), before the revoke is reported.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kafka_chaos_proxy.lab.matrix import builds
from tests.support.go_harness import (
    HarnessProcess,
    contract_args,
    create_topic,
    of,
    produce,
    records_complete,
)

pytestmark = [
    pytest.mark.skipif(shutil.which("javac") is None or shutil.which("mvn") is None,
                       reason="JDK or Maven not installed"),
]

STEP_S = 60.0



def test_java_commit_in_revoke_and_processing_delay(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path, running: list[HarnessProcess],
) -> None:
    topic, group = f"{unique_name}-t", f"{unique_name}-g"
    create_topic(kafka_bootstrap, topic, 2)
    expected = produce(kafka_bootstrap, topic, 12, 2)
    java = builds.java_harness_command()
    delay_ms = 100
    # Auto-commit stays on (every 5 s, and before a rebalance): the revoke commit is the
    # harness's own, made inside onPartitionsRevoked and reported before `revoked`.
    first = HarnessProcess(java + contract_args(
        kafka_bootstrap, topic, group, "first", "--commit", "auto", "--commit-in-revoke", "true",
        "--processing-delay-ms", str(delay_ms)), tmp_path / "first.stderr.log")
    running.append(first)
    first.wait_for(lambda ev: records_complete(ev, topic, expected), "every record", STEP_S)
    config = of(first.events, "config")[0]
    assert (config["commit_in_revoke"], config["processing_delay_ms"], config["assignors"]) == \
        (True, delay_ms, ["range", "cooperative-sticky"]), first.evidence()
    times = [e["ts"] for e in of(first.events, "record")]
    assert times[-1] - times[0] >= 11 * delay_ms / 1000 * 0.9, first.evidence()

    second = HarnessProcess(java + contract_args(kafka_bootstrap, topic, group, "second"),
                            tmp_path / "second.stderr.log")
    running.append(second)
    first.wait_for(lambda ev: any(e["partitions"].get(topic) for e in of(ev, "revoked")),
                   "the revoke", STEP_S)
    second.wait_for(lambda ev: any(e["partitions"] for e in of(ev, "assigned")),
                    "the second member's assignment", STEP_S)
    in_revoke = [c for c in of(first.events, "commit") if c.get("in_revoke")]
    assert in_revoke and in_revoke[0]["ok"], first.evidence()
    committed = {int(p): o for p, o in in_revoke[0]["offsets"][topic].items()}
    assert committed == expected, first.evidence()
    revoked = [e for e in of(first.events, "revoked") if e["partitions"].get(topic)]
    assert first.events.index(in_revoke[0]) < first.events.index(revoked[0])
    # The second member starts where the commits left off: nothing is consumed twice.
    assert not [e for e in of(second.events, "record") if e["topic"] == topic], \
        second.evidence()
    assert first.terminate() == 0 and second.terminate() == 0
