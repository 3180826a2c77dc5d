"""Shared by the Go and Java harness tests: topic set-up, and a harness process whose JSON
event stream is read on a thread so that every wait is bounded.

Lives in a test_harness_go* module (no tests of its own) so that the harness tests need no
package machinery; the Java tests import it the same way.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

Event = dict[str, Any]

#: Bound for any single wait on a harness (join + consume of a few records is seconds).
WAIT_S = 90.0
#: Bound for a harness to close and exit after SIGTERM (its own close bound is 20 s).
EXIT_S = 40.0


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    """Create `topic` with `partitions` partitions and wait for the broker to confirm."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, partitions, 1)], request_timeout=30)
    futures[topic].result(timeout=60)


def produce(bootstrap: str, topic: str, count: int, partitions: int) -> dict[int, int]:
    """Produce `count` records spread round-robin over the partitions; return per-partition
    counts, which are also the offsets a consumer must commit at the end."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    per_partition: dict[int, int] = defaultdict(int)
    for i in range(count):
        partition = i % partitions
        producer.produce(topic, f"value-{i}".encode(), partition=partition)
        per_partition[partition] += 1
    assert producer.flush(60) == 0, "producer did not deliver every record"
    return dict(per_partition)


class HarnessProcess:
    """A running harness: stdout parsed into events on a reader thread, stderr to a log."""

    def __init__(self, argv: list[str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=self._log, stdin=subprocess.DEVNULL
        )
        self.events: list[Event] = []
        #: How many events came before terminate() sent SIGTERM (close-time reports follow).
        self.before_stop = 0
        self.bad_lines: list[str] = []
        self._queue: queue.Queue[Event | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").strip()
            if not line:
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                self.bad_lines.append(line)
                continue
            self._queue.put(event)
        self._queue.put(None)

    def _drain(self, timeout: float) -> bool:
        """Move queued events to self.events; False once the stream has ended."""
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return True
        while True:
            if item is None:
                return False
            self.events.append(item)
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return True

    def wait_for(self, predicate: Callable[[list[Event]], bool], what: str,
                 timeout: float = WAIT_S) -> None:
        """Wait until predicate(events) holds; fail with the evidence otherwise."""
        deadline = time.monotonic() + timeout
        alive = True
        while not predicate(self.events):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not alive:
                raise AssertionError(f"harness never reached: {what}\n{self.evidence()}")
            alive = self._drain(min(0.5, remaining))

    def terminate(self) -> int:
        """SIGTERM, then wait (bounded) for the exit; SIGKILL only if the bound passes."""
        self._drain(0)
        self.before_stop = len(self.events)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=EXIT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError(f"harness ignored SIGTERM\n{self.evidence()}") from None
        self._reader.join(timeout=10)
        while self._drain(0):
            pass
        return code

    def close(self) -> None:
        """Teardown: never leave the process behind, whatever the test did."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._log.close()

    def evidence(self) -> str:
        tail = self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""
        events = "\n".join(json.dumps(e) for e in self.events[-40:])
        return f"events (last 40):\n{events}\nbad lines: {self.bad_lines[:5]}\nstderr tail:\n{tail}"


@pytest.fixture
def running() -> Iterator[list[HarnessProcess]]:
    """Harness processes started by a test; closed at teardown whatever happened (tests
    append what they start). Available to every test through tests/conftest.py."""
    procs: list[HarnessProcess] = []
    yield procs
    for proc in procs:
        proc.close()


def of(events: list[Event], kind: str) -> list[Event]:
    return [e for e in events if e.get("event") == kind]


def records_complete(events: list[Event], topic: str, expected: dict[int, int]) -> bool:
    got: dict[int, set[int]] = defaultdict(set)
    for e in of(events, "record"):
        if e.get("topic") == topic:
            got[int(e["partition"])].add(int(e["offset"]))
    return all(len(got[p]) >= n for p, n in expected.items())


def assert_records_contiguous(events: list[Event], topic: str, expected: dict[int, int]) -> None:
    """Each partition's offsets are exactly 0..n-1, each seen once (no gap, no duplicate)."""
    got: dict[int, list[int]] = defaultdict(list)
    for e in of(events, "record"):
        assert e["topic"] == topic
        got[int(e["partition"])].append(int(e["offset"]))
    assert {p: sorted(offs) for p, offs in got.items()} == {
        p: list(range(n)) for p, n in expected.items()
    }


def last_committed(events: list[Event], topic: str) -> dict[int, int]:
    """Per partition, the offset of the last successful commit event."""
    out: dict[int, int] = {}
    for e in of(events, "commit"):
        if e.get("ok"):
            for partition, offset in e["offsets"].get(topic, {}).items():
                out[int(partition)] = int(offset)
    return out


def contract_args(bootstrap: str, topic: str, group: str, client_id: str,
                  *extra: str) -> list[str]:
    """The contract's flags with short timeouts so the tests stay fast."""
    return [
        "--bootstrap", bootstrap, "--topic", topic, "--group", group, "--client-id", client_id,
        "--session-timeout-ms", "6000", "--heartbeat-interval-ms", "500",
        "--rebalance-timeout-ms", "10000", "--max-runtime-s", "120", *extra,
    ]



def group_type(bootstrap: str, group: str) -> str:
    """The broker's view of the group's protocol: "CONSUMER" (KIP-848) or "CLASSIC"."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    description = admin.describe_consumer_groups([group])[group].result(timeout=30)
    return str(description.type.name)


def run_plain(
    command: list[str], *, client: str, library: str, version: str, commit: str,
    protocol: str, bootstrap: str, unique_name: str, log_path: Path,
    running: list[HarnessProcess], records: int = 30, partitions: int = 3,
    expect_commits: bool = True,
) -> HarnessProcess:
    """One fault-free run, checked against the contract event by event: produce, start the
    harness, wait for every record (and commits up to the last one), check the group's
    protocol on the broker, SIGTERM, and check the exit."""
    topic, group = f"{unique_name}-t", f"{unique_name}-g"
    create_topic(bootstrap, topic, partitions)
    expected = produce(bootstrap, topic, records, partitions)
    argv = command + contract_args(
        bootstrap, topic, group, f"{client}-harness-test", "--commit", commit,
        "--protocol", protocol,
    )
    proc = HarnessProcess(argv, log_path)
    running.append(proc)
    proc.wait_for(lambda ev: records_complete(ev, topic, expected), "all records consumed")
    if expect_commits:
        proc.wait_for(lambda ev: last_committed(ev, topic) == expected,
                      "commit events up to the last record")
    assert group_type(bootstrap, group) == protocol.upper()
    code = proc.terminate()
    events = proc.events

    assert not proc.bad_lines, proc.bad_lines
    assert all(isinstance(e["ts"], float) and e["client"] == client for e in events)
    started = events[0]
    assert started["event"] == "started", proc.evidence()
    assert (started["library"], started["version"], started["protocol"]) == (
        library, version, protocol)

    assigned = of(events, "assigned")
    assert assigned, proc.evidence()
    covered = {p for e in assigned for p in e["partitions"].get(topic, [])}
    assert covered == set(range(partitions))
    assert all(isinstance(e["generation"], int) and e["member_id"] for e in assigned)

    assert_records_contiguous(events, topic, expected)
    # A fault-free run surfaces nothing. What a library reports while closing is teardown,
    # which the matrix runner ignores too.
    before_stop = events[: proc.before_stop]
    assert not of(before_stop, "error"), proc.evidence()
    assert all(c["ok"] and c["error"] is None for c in of(before_stop, "commit")), proc.evidence()
    assert events[-1]["event"] == "exited", proc.evidence()
    assert events[-1]["how"] == "killed" and events[-1]["error"] is None
    assert code == 0
    return proc


def closed_port() -> str:
    """HOST:PORT on loopback where nothing listens (bound once, then released), so a
    client's connection attempts fail fast without touching any real service."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"
