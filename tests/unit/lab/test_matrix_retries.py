"""Infrastructure failures are retried per run and never end the matrix: an infra_error run is
attempted up to three times, every attempt recorded (in the result and in its evidence), and
an exception of one run, or a harness that cannot be built, becomes an infra_error result while
the next run still runs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from kafka_chaos_proxy.lab.matrix.clients import CLIENTS
from tests.support.matrix_fakes import FakeRuns, options, results, run, scenario

A, B = scenario("a"), scenario("b")


def test_an_infra_error_is_retried_and_every_attempt_recorded(tmp_path: Path) -> None:
    fake = FakeRuns({("aiokafka", "a", 1): ["infra_error", "infra_error", "recovered"]})
    opts = options(tmp_path, ["aiokafka"], [A], runs=1)
    summary = run(opts, fake)

    assert fake.calls == [("aiokafka", "a", 1)] * 3
    [result] = results(opts.artifacts)
    assert result["outcome"] == "recovered"
    assert result["attempts"] == [
        {"attempt": 1, "outcome": "infra_error", "infra": "run",
         "reason": "the proxy did not start"},
        {"attempt": 2, "outcome": "infra_error", "infra": "run",
         "reason": "the proxy did not start"},
        {"attempt": 3, "outcome": "recovered"},
    ]
    run_dir = opts.artifacts / "aiokafka" / "a" / "1"
    # The run's directory holds the last attempt; the failed ones are kept inside it.
    assert json.loads((run_dir / "result.json").read_text())["attempts"] == result["attempts"]
    for n in (1, 2):
        kept = json.loads((run_dir / "attempts" / str(n) / "result.json").read_text())
        assert kept["outcome"] == "infra_error"
    assert not (run_dir / "attempts" / "3").exists()
    assert summary["cells"][0]["outcome"] == "recovered"


def test_retries_stop_after_three_attempts_and_the_matrix_goes_on(tmp_path: Path) -> None:
    fake = FakeRuns({("aiokafka", "a", 1): ["infra_error"] * 5})
    opts = options(tmp_path, ["aiokafka"], [A, B], runs=1)
    run(opts, fake)

    assert fake.calls == [("aiokafka", "a", 1)] * 3 + [("aiokafka", "b", 1)]
    first, second = results(opts.artifacts)
    assert first["outcome"] == "infra_error"
    assert [a["attempt"] for a in first["attempts"]] == [1, 2, 3]
    assert second["outcome"] == "recovered" and len(second["attempts"]) == 1


def test_an_exception_of_one_run_is_an_infra_error_and_the_next_run_runs(
        tmp_path: Path) -> None:
    boom = RuntimeError("no free port today")
    fake = FakeRuns({("aiokafka", "a", 1): [boom, boom, boom]})
    opts = options(tmp_path, ["aiokafka", "kafka-python"], [A], runs=1)
    summary = run(opts, fake)

    assert fake.calls[-1] == ("kafka-python", "a", 1)
    failed, ok = results(opts.artifacts)
    assert (failed["outcome"], failed["infra"]) == ("infra_error", "exception")
    assert "the run raised RuntimeError: no free port today" in failed["detail"]
    assert any("Traceback" in note for note in failed["notes"])
    assert ok["outcome"] == "recovered"
    assert (opts.out / "matrix.md").exists() and summary["total_runs"] == 2


def test_a_harness_that_cannot_be_built_is_tried_per_run_then_known_unavailable(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    builds: list[int] = []

    def broken_build() -> list[str]:
        builds.append(1)
        raise RuntimeError("go: not found")

    monkeypatch.setitem(CLIENTS, "sarama",
                        dataclasses.replace(CLIENTS["sarama"], command=broken_build))
    fake = FakeRuns()
    opts = options(tmp_path, ["sarama", "aiokafka"], [A, B], runs=2)
    summary = run(opts, fake)

    assert len(builds) == 3  # the three attempts of sarama's first run; then it is known
    assert {c[0] for c in fake.calls} == {"aiokafka"} and len(fake.calls) == 4
    sarama = [r for r in results(opts.artifacts) if r["client"] == "sarama"]
    assert len(sarama) == 4 and all(r["outcome"] == "infra_error" for r in sarama)
    assert all(r["infra"] == "harness" and "go: not found" in r["detail"] for r in sarama)
    assert [len(r["attempts"]) for r in sarama] == [3, 1, 1, 1]
    assert summary["unavailable_clients"] == {"sarama": "RuntimeError: go: not found"}


def test_resume_runs_infra_errors_again(tmp_path: Path) -> None:
    opts = options(tmp_path, ["aiokafka"], [A], runs=2)
    run(opts, FakeRuns({("aiokafka", "a", 2): ["infra_error"] * 3}))
    again = FakeRuns()
    run(dataclasses.replace(opts, resume=True), again)
    assert again.calls == [("aiokafka", "a", 2)]
    assert [r["outcome"] for r in results(opts.artifacts)] == ["recovered", "recovered"]
