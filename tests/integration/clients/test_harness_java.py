"""The Java harness (kafka-clients KafkaConsumer) against a real broker, with the classic
and the KIP-848 consumer group protocol: it joins, consumes every produced record exactly
once, reports commits (commitSync results; auto-commits through an interceptor) and closes
on SIGTERM with the contract's event stream (tests/clients/README.md).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kafka_chaos_proxy.lab.matrix import builds
from tests.support.go_harness import HarnessProcess, closed_port, contract_args, of, run_plain

pytestmark = [
    pytest.mark.skipif(shutil.which("javac") is None or shutil.which("mvn") is None,
                       reason="JDK or Maven not installed"),
]



def _run(commit: str, protocol: str, kafka_bootstrap: str, unique_name: str, tmp_path: Path,
         running: list[HarnessProcess]) -> HarnessProcess:
    return run_plain(
        builds.java_harness_command(), client="java", library=builds.JAVA_LIBRARY,
        version=builds.library_versions()["java"], commit=commit, protocol=protocol,
        bootstrap=kafka_bootstrap, unique_name=unique_name,
        log_path=tmp_path / "java.stderr.log", running=running,
    )


@pytest.mark.parametrize("protocol", ["classic", "consumer"])
def test_java_harness_manual_commit(
    protocol: str, kafka_bootstrap: str, unique_name: str, tmp_path: Path,
    running: list[HarnessProcess],
) -> None:
    proc = _run("manual", protocol, kafka_bootstrap, unique_name, tmp_path, running)
    # With KIP-848 the generation is the member epoch; classic generations start at 1.
    assert all(e["generation"] >= 1 for e in of(proc.events, "assigned"))


def test_java_harness_auto_commit_is_reported(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path, running: list[HarnessProcess],
) -> None:
    _run("auto", "classic", kafka_bootstrap, unique_name, tmp_path, running)


@pytest.mark.parametrize("stop", ["max_runtime", "killed"])
def test_java_stop_while_the_broker_is_unreachable(
    stop: str, tmp_path: Path, running: list[HarnessProcess],
) -> None:
    """Stop paths while the client still retries its bootstrap; its WARN lines are `log`
    events (evidence), not surfaced errors."""
    argv = builds.java_harness_command() + contract_args(
        closed_port(), "t", "g", "c", "--max-runtime-s", "3" if stop == "max_runtime" else "120",
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
