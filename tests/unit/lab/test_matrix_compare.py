"""`matrix-compare`: which cells' answers changed between two matrix results (the outcome
classifier's and the verdicts'), and why."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from kafka_chaos_proxy.lab.matrix.compare import answer, compare, compare_files
from kafka_chaos_proxy.proxy.cli import app


def old(client: str, scenario: str, run: int, outcome: str) -> dict[str, Any]:
    return {"client": client, "scenario": scenario, "run": run, "outcome": outcome,
            "scenario_version": 1}


def new(client: str, scenario: str, run: int, verdict: str, *,
        failing: str | None = None, version: int = 1, **extra: Any) -> dict[str, Any]:
    expectations = [{"name": "no_app_errors", "status": "fail" if failing else "pass",
                     "reason": failing or "no error reached the application"}]
    return {"client": client, "scenario": scenario, "run": run, "outcome": "recovered",
            "verdict": verdict, "scenario_version": version, "expectations": expectations,
            **extra}


def test_answers_read_both_classifiers_alike() -> None:
    assert answer("recovered") == answer("pass") == "ok"
    assert answer("surfaced_error") == answer("fail") == answer("duplicates") == "finding"
    assert answer("not_injected") == answer("not_exercised") == "no answer"
    assert answer("fails_without_fault") == "without fault"


def test_a_recovered_cell_that_now_fails_says_why() -> None:
    before = [old("sarama", "hb", 1, "recovered"), old("sarama", "hb", 2, "recovered")]
    after = [new("sarama", "hb", k, "fail", failing="member 0 silent 27.3 s > 15 s")
             for k in range(1, 6)]
    [change] = compare(before, after)
    assert (change.old, change.new, change.kind) == ("recovered 2/2", "fail 5/5",
                                                    "ok -> finding")
    assert change.why == "member 0 silent 27.3 s > 15 s"


def test_an_unchanged_answer_is_not_listed_and_the_scenario_version_is_said() -> None:
    before = [old("aiokafka", "a", 1, "recovered"), old("aiokafka", "b", 1, "duplicates")]
    after = [new("aiokafka", "a", 1, "pass"), new("aiokafka", "b", 1, "pass", version=2)]
    [change] = compare(before, after)
    assert (change.scenario, change.kind) == ("b", "finding -> ok")
    assert change.why == ("passed: no error reached the application; "
                          "scenario changed (version 1 -> 2)")


def test_relabelled_new_and_gone_cells() -> None:
    before = [old("kafka-python", "x", 1, "not_injected"), old("java", "gone", 1, "recovered")]
    after = [new("kafka-python", "x", 1, "fails_without_fault", failing="0 of 60 consumed",
                 control={"verdict": "fail"}),
             new("franz-go", "fresh", 1, "pass")]
    kinds = {(c.client, c.scenario): (c.kind, c.why) for c in compare(before, after)}
    assert kinds[("kafka-python", "x")] == ("no answer -> without fault",
                                            "0 of 60 consumed; fault-free control: fail")
    assert kinds[("franz-go", "fresh")][0] == "new cell"
    assert kinds[("java", "gone")][0] == "gone"


def test_robustness_findings_are_labelled() -> None:
    before = [old("aiokafka", "hb", 1, "recovered")]
    after = [new("aiokafka", "hb", 1, "fail", failing="heartbeat task died",
                 robustness_only=True)]
    [change] = compare(before, after)
    assert "robustness only" in change.why


def test_the_command_reads_gzipped_and_plain_results(tmp_path: Path) -> None:
    old_dir = tmp_path / "old"
    old_dir.mkdir()
    with gzip.open(old_dir / "results.jsonl.gz", "wt") as f:
        f.write(json.dumps(old("sarama", "hb", 1, "recovered")) + "\n")
    new_file = tmp_path / "results.jsonl"
    new_file.write_text(json.dumps(new("sarama", "hb", 1, "fail", failing="silent")) + "\n")
    changes, text = compare_files(old_dir, new_file)
    assert len(changes) == 1 and "| sarama | hb | recovered 1/1 | fail 1/1 |" in text
    assert "0 kept their answer" in text

    out = tmp_path / "changes.md"
    result = CliRunner().invoke(app, ["matrix-compare", str(old_dir), str(new_file),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text() == text
    missing = CliRunner().invoke(app, ["matrix-compare", str(tmp_path / "nope"), str(new_file)])
    assert missing.exit_code != 0 and "cannot compare" in missing.output
