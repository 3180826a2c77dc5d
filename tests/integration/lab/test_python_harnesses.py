"""The Python harnesses against the real broker, no proxy: they must honour the contract the
matrix classifies from (event names and shapes, every record reported, SIGTERM -> killed)."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from kafka_chaos_proxy.lab.matrix.produce import SequenceProducer, create_topic
from tests.support.kafka_python_stall import stalled_at_start

HARNESS_DIR = Path(__file__).resolve().parents[2] / "clients" / "python"
RECORDS = 20
PARTITIONS = 3
#: Safety bound only (the harness's own --max-runtime-s); nothing asserts on durations.
MAX_RUNTIME_S = 90


def _reader(proc: subprocess.Popen[str], out: queue.Queue[dict[str, Any] | None]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        out.put(json.loads(line))
    out.put(None)


class _Hung(Exception):
    """The harness printed nothing for longer than its own run-time bound allows."""

    def __init__(self, message: str, events: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.events = events


def _run_harness(kafka_bootstrap: str, script: str, topic: str, group: str, client_id: str,
                 commit: str, expected: set[tuple[str, int, int]]) -> list[dict[str, Any]]:
    """One harness run to its SIGTERM; the events it printed. A harness that goes silent past
    its own --max-runtime-s is hung inside a library call (its loop would have ended it): it
    is asked for its threads' stacks (SIGUSR1, to stderr, which pytest shows on failure) and
    killed, and _Hung says so."""
    proc = subprocess.Popen(
        [sys.executable, "-u", str(HARNESS_DIR / script), "--bootstrap", kafka_bootstrap,
         "--topic", topic, "--group", group, "--client-id", client_id,
         "--commit", commit, "--max-runtime-s", str(MAX_RUNTIME_S)],
        stdout=subprocess.PIPE, text=True,
    )
    events: list[dict[str, Any]] = []
    lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
    threading.Thread(target=_reader, args=(proc, lines), daemon=True).start()
    seen: set[tuple[str, int, int]] = set()
    try:
        while seen != expected:
            event = lines.get(timeout=MAX_RUNTIME_S + 30)
            if event is None:
                break
            events.append(event)
            if event["event"] == "record":
                seen.add((event["topic"], event["partition"], event["offset"]))
        if commit == "manual":  # wait for the commit of the last batch to be reported
            while not any(e["event"] == "commit" for e in events):
                event = lines.get(timeout=MAX_RUNTIME_S)
                assert event is not None
                events.append(event)
        proc.send_signal(signal.SIGTERM)
        while (event := lines.get(timeout=60)) is not None:
            events.append(event)
        assert proc.wait(60) == 0
    except queue.Empty:
        proc.send_signal(signal.SIGUSR1)
        time.sleep(1)
        raise _Hung(f"{script}: silent for longer than its run-time bound after "
                    f"{[e['event'] for e in events][-8:]}", events) from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    return events


@pytest.mark.parametrize("commit", ["auto", "manual"])
@pytest.mark.parametrize(
    ("script", "client"),
    [("aiokafka_harness.py", "aiokafka"), ("kafka_python_harness.py", "kafka-python"),
     ("confluent_harness.py", "confluent-kafka")],
)
def test_harness_consumes_everything_and_stops_on_sigterm(
    kafka_bootstrap: str, unique_name: Any, script: str, client: str, commit: str
) -> None:
    topic = unique_name("t")
    create_topic(kafka_bootstrap, topic, PARTITIONS)
    producer = SequenceProducer(kafka_bootstrap, topic)
    producer.produce(RECORDS)
    expected = producer.expected()

    for attempt in (1, 2):
        try:
            events = _run_harness(kafka_bootstrap, script, topic, unique_name(f"g{attempt}"),
                                  unique_name("c"), commit, expected)
            break
        except _Hung as hung:  # kafka-python's start-up stall gets one more run
            if attempt == 2 or not stalled_at_start(client, hung.events):
                raise

    kinds = [e["event"] for e in events]
    assert kinds[0] == "started"
    assert events[0]["library"] == client and events[0]["protocol"] == "classic"
    assert all(e["client"] == client and isinstance(e["ts"], float) for e in events)
    assigned = [e for e in events if e["event"] == "assigned" and e["partitions"]]
    assert assigned and assigned[0]["partitions"] == {topic: list(range(PARTITIONS))}
    assert set(assigned[0]) >= {"generation", "member_id"}
    records = [(e["topic"], e["partition"], e["offset"]) for e in events
               if e["event"] == "record"]
    assert sorted(records) == sorted(expected)  # each exactly once
    commits = [e for e in events if e["event"] == "commit"]
    if commit == "manual":
        assert commits and all(c["ok"] and c["error"] is None for c in commits)
        assert all(isinstance(p, str) for c in commits for p in c["offsets"][topic])
    assert events[-1] == {**events[-1], "event": "exited", "how": "killed", "error": None}
    assert kinds.count("exited") == 1


@pytest.mark.parametrize("script", ["aiokafka_harness.py", "kafka_python_harness.py"])
def test_unsupported_protocol_is_said_not_hidden(script: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(HARNESS_DIR / script), "--bootstrap", "127.0.0.1:1", "--topic", "t",
         "--group", "g", "--client-id", "c", "--protocol", "consumer"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [e["event"] for e in events] == ["started", "config", "error", "exited"]
    assert events[-1]["how"] == "returned_error"
