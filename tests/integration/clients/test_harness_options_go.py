"""Harness options change what the Go harnesses do against a real broker.

The headline: sarama with `--consume-mode once` is the application that calls Consume a single
time. When a second member joins, the eager rebalance ends its session; the member reports
what Consume returned (`consume_returned`, n=1) and consumes nothing more, while the looping
member takes over. Also: processing delay, commit in the revoke callback (franz-go), commit
both (kafka-go), sarama's asynchronous processing and its cooperative-sticky assignor.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

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
    pytest.mark.skipif(shutil.which("go") is None, reason="Go toolchain not installed"),
]

#: Bound for each wait here (a join, a rebalance of at most the 10 s rebalance timeout).
STEP_S = 60.0



def test_sarama_consume_once_stops_after_the_session_ends(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path, running: list[HarnessProcess],
) -> None:
    topic, group = f"{unique_name}-t", f"{unique_name}-g"
    create_topic(kafka_bootstrap, topic, 2)
    first = produce(kafka_bootstrap, topic, 10, 2)
    sarama = builds.go_harness_command("sarama")

    once = HarnessProcess(sarama + contract_args(
        kafka_bootstrap, topic, group, "once", "--commit", "manual", "--consume-mode", "once"),
        tmp_path / "once.stderr.log")
    running.append(once)
    once.wait_for(lambda ev: records_complete(ev, topic, first), "the first records", STEP_S)
    config = of(once.events, "config")[0]
    assert (config["consume_mode"], config["return_errors"], config["commit"]) == \
        ("once", False, "manual"), once.evidence()
    assert once.events[1]["event"] == "config"

    loop = HarnessProcess(sarama + contract_args(
        kafka_bootstrap, topic, group, "loop", "--commit", "manual"),
        tmp_path / "loop.stderr.log")
    running.append(loop)
    # The join ends the once-member's session: Consume returns, and is not called again.
    once.wait_for(lambda ev: bool(of(ev, "consume_returned")), "Consume returned", STEP_S)
    returned_at = of(once.events, "consume_returned")[0]["ts"]
    loop.wait_for(lambda ev: {p for e in of(ev, "assigned") for p in e["partitions"].get(
        topic, [])} == {0, 1}, "the looping member owns both partitions", STEP_S)

    more = produce(kafka_bootstrap, topic, 10, 2)
    last = {p: first[p] + more[p] - 1 for p in first}
    # The looping member resumes from the once-member's commits and reaches the new ends.
    loop.wait_for(lambda ev: all(any(e["partition"] == p and e["offset"] == off
                                     for e in of(ev, "record")) for p, off in last.items()),
                  "the new records", STEP_S)
    time.sleep(1.0)  # a once-member that had resumed would have fetched them by now

    assert once.terminate() == 0 and loop.terminate() == 0
    returned = of(once.events, "consume_returned")
    assert [(e["n"], e["error"]) for e in returned] == [(1, None)], once.evidence()
    assert len(of(once.events, "assigned")) == 1  # it never joined again
    late = [e for e in of(once.events, "record") if e["ts"] > returned_at]
    assert late == [], once.evidence()
    assert not of(once.events[: once.before_stop], "error"), once.evidence()
    assert once.events[-1]["event"] == "exited" and once.events[-1]["how"] == "killed"
    # The looping member went on past the rebalance (its Consume returned only at the stop).
    assert [e["n"] for e in of(loop.events, "consume_returned")] == [1]


@pytest.mark.parametrize(("name", "options"), [
    ("franz-go", ["--commit", "auto", "--commit-in-revoke", "true"]),
    ("kafka-go", ["--commit", "both"]),
])
def test_go_processing_delay_and_commit_options(
    name: builds.GoHarness, options: list[str], kafka_bootstrap: str, unique_name: str,
    tmp_path: Path, running: list[HarnessProcess],
) -> None:
    """A per-record processing delay spaces the records out; franz-go commits what it
    processed in OnPartitionsRevoked (here: at the close, when it leaves the group);
    kafka-go under --commit both commits explicitly on top of its auto-commit loop."""
    topic, group = f"{unique_name}-t", f"{unique_name}-g"
    create_topic(kafka_bootstrap, topic, 2)
    expected = produce(kafka_bootstrap, topic, 12, 2)
    delay_ms = 100
    proc = HarnessProcess(builds.go_harness_command(name) + contract_args(
        kafka_bootstrap, topic, group, name, "--processing-delay-ms", str(delay_ms), *options),
        tmp_path / f"{name}.stderr.log")
    running.append(proc)
    proc.wait_for(lambda ev: records_complete(ev, topic, expected), "every record", STEP_S)
    config = of(proc.events, "config")[0]
    assert config["processing_delay_ms"] == delay_ms
    times = [e["ts"] for e in of(proc.events, "record")]
    # 12 records, each held 100 ms before the next is handed over (no delay: a few ms).
    assert times[-1] - times[0] >= 11 * delay_ms / 1000 * 0.9, proc.evidence()
    if name == "kafka-go":
        proc.wait_for(lambda ev: any("confirmed" not in c for c in of(ev, "commit")),
                      "a commit reported by the auto-commit loop", STEP_S)
    assert proc.terminate() == 0
    commits = of(proc.events, "commit")
    if name == "franz-go":
        assert config["commit_in_revoke"] is True
        in_revoke = [c for c in commits if c.get("in_revoke")]
        assert in_revoke and all(c["ok"] for c in in_revoke), proc.evidence()
        committed = {int(p): o for c in in_revoke for p, o in c["offsets"][topic].items()}
        assert committed == expected, proc.evidence()
        revoked = [i for i, e in enumerate(proc.events) if e["event"] == "revoked"]
        assert revoked and proc.events.index(in_revoke[0]) < revoked[0]
    else:
        explicit = [c for c in commits if c.get("confirmed") is False]
        assert len(explicit) == 12 and all(c["ok"] for c in explicit), proc.evidence()
    assert proc.events[-1]["how"] == "killed"


def test_sarama_async_processing_does_not_hold_up_consumption(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path, running: list[HarnessProcess],
) -> None:
    """A goroutine per message: records are handed over at once, each is marked when its own
    (0.5-1.5x) processing time is up, and the commits still end at the last offsets."""
    topic, group = f"{unique_name}-t", f"{unique_name}-g"
    create_topic(kafka_bootstrap, topic, 2)
    expected = produce(kafka_bootstrap, topic, 20, 2)
    proc = HarnessProcess(builds.go_harness_command("sarama") + contract_args(
        kafka_bootstrap, topic, group, "async", "--commit", "manual", "--async-processing",
        "true", "--processing-delay-ms", "1000"), tmp_path / "async.stderr.log")
    running.append(proc)
    proc.wait_for(lambda ev: records_complete(ev, topic, expected), "every record", STEP_S)
    times = [e["ts"] for e in of(proc.events, "record")]
    assert times[-1] - times[0] < 1.0, proc.evidence()  # in line this would take >= 19 s

    def marked_to_the_end(ev: list[dict[str, Any]]) -> bool:
        last: dict[int, int] = {}
        for c in of(ev, "commit"):
            for p, o in c["offsets"].get(topic, {}).items():
                last[int(p)] = max(last.get(int(p), 0), int(o))
        return last == expected

    proc.wait_for(marked_to_the_end, "commits up to the last offsets", STEP_S)
    assert proc.terminate() == 0
    assert of(proc.events, "config")[0]["async_processing"] is True


def test_sarama_cooperative_sticky_reports_incremental_changes(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path, running: list[HarnessProcess],
) -> None:
    """With cooperative-sticky one Consume session lives across the rebalance a second
    member causes: the first member reports the partition it gives up as `revoked` (the
    change, not everything) and its Consume does not return."""
    topic, group = f"{unique_name}-t", f"{unique_name}-g"
    create_topic(kafka_bootstrap, topic, 2)
    produce(kafka_bootstrap, topic, 4, 2)
    sarama = builds.go_harness_command("sarama")
    args = ["--assignor", "cooperative-sticky", "--commit", "manual"]
    first = HarnessProcess(sarama + contract_args(kafka_bootstrap, topic, group, "c1", *args),
                           tmp_path / "c1.stderr.log")
    running.append(first)
    first.wait_for(lambda ev: any(e["partitions"].get(topic) == [0, 1]
                                  for e in of(ev, "assigned")), "both partitions", STEP_S)
    second = HarnessProcess(sarama + contract_args(kafka_bootstrap, topic, group, "c2", *args),
                            tmp_path / "c2.stderr.log")
    running.append(second)
    second.wait_for(lambda ev: any(len(e["partitions"].get(topic, [])) == 1
                                   for e in of(ev, "assigned")), "one partition", STEP_S)
    first.wait_for(lambda ev: bool(of(ev, "revoked")), "the incremental revoke", STEP_S)
    revoked = of(first.events, "revoked")[0]["partitions"][topic]
    given = [p for e in of(second.events, "assigned") for p in e["partitions"].get(topic, [])]
    assert len(revoked) == 1 and revoked == given, (first.evidence(), second.evidence())
    assert not of(first.events, "consume_returned"), first.evidence()
    assert of(first.events, "config")[0]["assignors"] == ["cooperative-sticky"]
    assert first.terminate() == 0 and second.terminate() == 0
