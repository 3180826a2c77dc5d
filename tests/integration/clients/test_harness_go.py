"""The Go harnesses (sarama, kafka-go, franz-go) against a real broker: each one joins,
consumes every produced record exactly once, reports its commits, and closes on SIGTERM
with the contract's event stream (tests/clients/README.md).

These are the matrix's instruments: if a harness misreports a plain run, every matrix cell
that uses it is wrong, so the plain run is checked event by event.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kafka_chaos_proxy.lab.matrix import builds
from tests.support.go_harness import HarnessProcess, closed_port, contract_args, of, run_plain

pytestmark = [
    pytest.mark.skipif(shutil.which("go") is None, reason="Go toolchain not installed"),
]

_LIBRARIES = {
    "sarama": "github.com/IBM/sarama",
    "kafka-go": "github.com/segmentio/kafka-go",
    "franz-go": "github.com/twmb/franz-go",
}



def _run_plain(
    name: builds.GoHarness, commit: str, protocol: str, kafka_bootstrap: str,
    unique_name: str, tmp_path: Path, running: list[HarnessProcess],
) -> HarnessProcess:
    return run_plain(
        builds.go_harness_command(name), client=name, library=_LIBRARIES[name],
        version=builds.library_versions()[name], commit=commit, protocol=protocol,
        bootstrap=kafka_bootstrap, unique_name=unique_name,
        log_path=tmp_path / f"{name}.stderr.log", running=running,
        # sarama's auto-commit has no hook to observe: no commit events to wait for.
        expect_commits=commit == "manual" or name != "sarama",
    )


@pytest.mark.parametrize("name", list(_LIBRARIES))
def test_go_harness_manual_commit(
    name: builds.GoHarness, kafka_bootstrap: str, unique_name: str, tmp_path: Path,
    running: list[HarnessProcess],
) -> None:
    proc = _run_plain(name, "manual", "classic", kafka_bootstrap, unique_name, tmp_path, running)
    commits = of(proc.events, "commit")
    if name == "sarama":
        # session.Commit() returns nothing; the event must not pretend it saw the outcome.
        assert all(c["confirmed"] is False for c in commits)
        # The README loop: Consume returned (nil) once, when SIGTERM cancelled the context.
        assert of(proc.events, "consume_returned")


@pytest.mark.parametrize("name", ["kafka-go", "franz-go"])
def test_go_harness_auto_commit_is_reported(
    name: builds.GoHarness, kafka_bootstrap: str, unique_name: str, tmp_path: Path,
    running: list[HarnessProcess],
) -> None:
    """Where the library exposes auto-commit results, they become commit events."""
    _run_plain(name, "auto", "classic", kafka_bootstrap, unique_name, tmp_path, running)


def test_franz_go_consumer_protocol(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path, running: list[HarnessProcess],
) -> None:
    """KIP-848 through kgo.ServerSideBalancer against the 4.x broker."""
    _run_plain("franz-go", "manual", "consumer", kafka_bootstrap, unique_name, tmp_path, running)


@pytest.mark.parametrize("name", ["sarama", "kafka-go"])
def test_classic_only_libraries_refuse_consumer_protocol(
    name: builds.GoHarness, tmp_path: Path, running: list[HarnessProcess],
) -> None:
    """No silent downgrade: a library without KIP-848 says so and exits with an error."""
    argv = builds.go_harness_command(name) + contract_args(
        "127.0.0.1:9", "t", "g", "c", "--protocol", "consumer",
    )
    proc = HarnessProcess(argv, tmp_path / "stderr.log")
    running.append(proc)
    proc.wait_for(lambda ev: bool(of(ev, "exited")), "exited")
    assert proc.proc.wait(timeout=30) == 1
    assert [e["event"] for e in proc.events] == ["started", "config", "error", "exited"]
    assert proc.events[-1]["how"] == "returned_error"
    assert "KIP-848" in proc.events[-1]["error"]


@pytest.mark.parametrize("stop", ["max_runtime", "killed"])
@pytest.mark.parametrize("name", ["kafka-go", "franz-go"])
def test_stop_while_the_broker_is_unreachable(
    name: builds.GoHarness, stop: str, tmp_path: Path, running: list[HarnessProcess],
) -> None:
    """The stop paths work while the library is still retrying its first connection, and
    the library's retries show up as `log` evidence, not as surfaced errors."""
    argv = builds.go_harness_command(name) + contract_args(
        closed_port(), "t", "g", "c", "--max-runtime-s", "2" if stop == "max_runtime" else "120",
    )
    proc = HarnessProcess(argv, tmp_path / "stderr.log")
    running.append(proc)
    proc.wait_for(lambda ev: bool(of(ev, "log")), "a logged connection failure")
    if stop == "killed":
        assert proc.terminate() == 0
    else:
        proc.wait_for(lambda ev: bool(of(ev, "exited")), "exited at max runtime")
        assert proc.proc.wait(timeout=30) == 0
    assert proc.events[-1]["event"] == "exited"
    assert proc.events[-1]["how"] == stop
    assert not of(proc.events, "error"), proc.evidence()


def test_sarama_reports_an_unreachable_bootstrap(
    tmp_path: Path, running: list[HarnessProcess],
) -> None:
    """sarama's NewConsumerGroup fails at once without a broker: an error, then exit 1."""
    argv = builds.go_harness_command("sarama") + contract_args(closed_port(), "t", "g", "c")
    proc = HarnessProcess(argv, tmp_path / "stderr.log")
    running.append(proc)
    proc.wait_for(lambda ev: bool(of(ev, "exited")), "exited")
    assert proc.proc.wait(timeout=30) == 1
    assert [e.get("source") for e in of(proc.events, "error")] == ["NewConsumerGroup"]
    assert proc.events[-1]["how"] == "returned_error"
