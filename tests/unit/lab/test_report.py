"""The report: the modal verdict with k/N and the observations behind a failure, disagreements
listed, n/a and not-run cells explicit, the README embed showing the same cells."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kafka_chaos_proxy.lab.matrix.report import _cell_text, render_markdown, write_report
from kafka_chaos_proxy.lab.scenario import parse_scenario

SCENARIOS = [
    parse_scenario({"name": "classic-one", "version": 1, "description": "c"}),
    parse_scenario({"name": "kip848-one", "version": 2, "description": "k",
                    "setup": {"members": {"protocol": "consumer"}},
                    "expect": [{"no_loss": True}, {"max_silence_s": 15}]}),
]
SILENT = {"name": "max_silence_s", "status": "fail", "reason": "member 1 silent 27.3 s > 15 s"}
LOST = {"name": "no_loss", "status": "fail", "reason": "12 of 90 records never consumed"}
OK = {"name": "no_loss", "status": "pass", "reason": "all 90 records consumed"}


def result(client: str, scenario: str, run: int, outcome: str, verdict: str = "pass",
           expectations: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    return {"client": client, "scenario": scenario, "run": run, "outcome": outcome,
            "detail": f"{outcome} detail", "protocol": "classic", "errors": [],
            "duplicates": 0, "missing": 0, "time_to_recover_s": 1.0, "duration_s": 5.0,
            "library_versions": {"aiokafka": "0.14.0"}, "verdict": verdict,
            "expectations": expectations if expectations is not None else [OK],
            "robustness_only": False, **extra}


def report(tmp_path: Path, results: list[dict[str, Any]], runs: int = 3) -> dict[str, Any]:
    return write_report(
        results, out_dir=tmp_path / "docs", artifacts=tmp_path / "artifacts",
        clients=["aiokafka", "confluent-kafka"], scenarios=SCENARIOS, runs=runs,
        kafka_version="4.3.1", unavailable={}, not_run=[], wall_time_s=60.0)


def test_report_cells(tmp_path: Path) -> None:
    results = [
        result("aiokafka", "classic-one", 1, "recovered"),
        result("aiokafka", "classic-one", 2, "stalled", "fail", [OK, SILENT]),
        result("aiokafka", "classic-one", 3, "recovered"),
        result("confluent-kafka", "classic-one", 1, "duplicates", duplicates=7),
    ]
    summary = report(tmp_path, results)
    cells = {(c["client"], c["scenario"]): c for c in summary["cells"]}
    cell = cells[("aiokafka", "classic-one")]
    assert (cell["verdict"], cell["verdict_agree"], cell["verdicts"]) == (
        "pass", 2, ["pass", "fail", "pass"])
    assert (cell["outcome"], cell["agree"]) == ("recovered", 2)  # still there, as evidence
    assert cells[("aiokafka", "kip848-one")]["verdict"] == "n/a"
    assert cells[("confluent-kafka", "kip848-one")]["verdict"] == "not_run"
    md = (tmp_path / "docs" / "matrix.md").read_text()
    assert "[pass 2/3](../artifacts/aiokafka/classic-one/)" in md
    assert "[pass 1/1 [1 of 3 runs]](../artifacts/confluent-kafka/classic-one/)" in md
    assert "aiokafka x `classic-one`: pass 2/3, fail 1/3" in md
    assert "Expected (the default set): no_loss; recovers_within_s 30; max_silence_s 15; " \
           "duplicates_within_bound." in md
    assert "- **aiokafka** (classic): pass 2/3. Failed: member 1 silent 27.3 s > 15 s. " \
           "Classifier: recovered 2/3, recovered detail." in md
    assert "4.3.1" in md
    data = json.loads((tmp_path / "docs" / "matrix.json").read_text())
    assert data["total_runs"] == 4 and data["scenarios"][1]["expect"] == [
        "no_loss", "max_silence_s 15"]


def test_a_failing_cell_names_the_observations_that_matter(tmp_path: Path) -> None:
    results = [result("aiokafka", "classic-one", run, "recovered", "fail",
                      [{**LOST, "reason": f"{run} of 90 records never consumed"}, SILENT])
               for run in (1, 2, 3)]
    results.append(result("aiokafka", "classic-one", 4, "recovered", "fail", [OK, SILENT]))
    summary = report(tmp_path, results, runs=4)
    md = render_markdown(summary)
    # The most frequent failing expectation first, each reason from the first run that has it.
    assert ("[fail 4/4: member 1 silent 27.3 s > 15 s; 1 of 90 records never consumed]"
            "(../artifacts/aiokafka/classic-one/)") in md
    assert render_markdown(summary) == md  # deterministic


def test_zombie_fetching_shows_in_the_cell_whatever_the_scenario_expects(tmp_path: Path) -> None:
    zombie = {"index": 0, "zombie_fetches": 14, "zombie_fetch_s": 11.257,
              "zombie_partition": "t-0", "zombie_owner": 1}
    results = [result("aiokafka", "classic-one", 1, "recovered", "pass",
                      observations={"members": [zombie, {"index": 1, "zombie_fetches": 0}]}),
               result("aiokafka", "classic-one", 2, "recovered", "pass",
                      observations={"members": []})]
    md = render_markdown(report(tmp_path, results, runs=2))
    assert ("[pass 2/2: zombie fetches in 1/2 runs: member 0 fetched t-0 11.3 s after it moved "
            "to member 1](../artifacts/aiokafka/classic-one/)") in md
    # Where no_zombie_fetch failed, its own reason says it once.
    failed = {"name": "no_zombie_fetch", "status": "fail",
              "reason": "member 0 fetched t-0 for 11.3 s after it moved to member 1"}
    runs = [result("aiokafka", "classic-one", 1, "recovered", "fail", [failed],
                   observations={"members": [zombie]})]
    md = render_markdown(report(tmp_path, runs, runs=1))
    assert "[fail 1/1: member 0 fetched t-0 for 11.3 s after it moved to member 1](" in md
    assert "zombie fetches in" not in md


def test_robustness_mark(tmp_path: Path) -> None:
    results = [result("aiokafka", "classic-one", run, "recovered", "fail", [SILENT],
                      robustness_only=True) for run in (1, 2)]
    summary = report(tmp_path, results, runs=2)
    md = render_markdown(summary)
    assert "[fail 2/2: member 1 silent 27.3 s > 15 s](../artifacts/aiokafka/classic-one/) " \
           "robustness |" in md
    assert "fail 2/2 (robustness: only unrealistic faults injected)." in md
    # A passing cell is never labelled, whatever its faults.
    passing = [result("aiokafka", "classic-one", 1, "recovered", robustness_only=True)]
    assert "robustness |" not in render_markdown(report(tmp_path, passing, runs=1))


def test_failing_without_a_fault_says_what_the_control_found(tmp_path: Path) -> None:
    control = {"scenario": "baseline-no-fault", "protocol": "classic", "verdict": "fail",
               "fails_without_any_fault": True, "reasons": ["90 of 90 records never consumed"],
               "evidence": "aiokafka/baseline-no-fault/control-classic"}
    results = [result("aiokafka", "classic-one", 1, "not_injected", "fails_without_fault",
                      [{**LOST, "reason": "60 of 60 records never consumed"}], control=control)]
    md = render_markdown(report(tmp_path, results, runs=1))
    assert ("[fails_without_fault 1/1: 60 of 60 records never consumed; fails without any "
            "fault (baseline-no-fault fails too)]") in md
    assert "Fault-free control (baseline-no-fault, classic): fail (90 of 90 records never " \
           "consumed)." in md
    passed = {**control, "verdict": "pass", "fails_without_any_fault": False, "reasons": []}
    results[0]["control"] = passed
    md = render_markdown(report(tmp_path, results, runs=1))
    assert "[fails_without_fault 1/1: 60 of 60 records never consumed](" in md


def test_cell_text_escapes_table_pipes_and_keeps_old_results_readable() -> None:
    cell = {"client": "c", "scenario": "s", "evidence": "e", "verdict": "fail",
            "verdict_agree": 1, "agree": 1, "runs": 1, "planned": 1, "outcome": "stalled",
            "findings": ["a | b"]}
    assert _cell_text(cell) == "[fail 1/1: a \\| b](e/)"
    old = {"client": "c", "scenario": "s", "evidence": "e", "runs": 1, "planned": 1,
           "outcome": "recovered", "agree": 1}
    assert _cell_text(old) == "[recovered 1/1](e/)"


def test_results_without_a_verdict_are_unjudged(tmp_path: Path) -> None:
    old = result("aiokafka", "classic-one", 1, "recovered")
    del old["verdict"], old["expectations"]
    infra = result("aiokafka", "classic-one", 2, "infra_error")
    del infra["verdict"]
    cell = next(c for c in report(tmp_path, [old, infra], runs=2)["cells"]
                if c["client"] == "aiokafka" and c["scenario"] == "classic-one")
    assert cell["verdicts"] == ["unjudged", "infra_error"]


def test_readme_section_is_replaced_with_links_relative_to_the_readme(tmp_path: Path) -> None:
    from kafka_chaos_proxy.lab.matrix.report import README_END, README_START, embed_in_readme

    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\n{README_START}\nold table\n{README_END}\n\nafter\n")
    summary = {
        "kafka_version": "4.3.1",
        "total_runs": 5,
        "clients": ["aiokafka"],
        "scenarios": [{"name": "s1"}],
        "cells": [{"client": "aiokafka", "scenario": "s1", "outcome": "stalled", "agree": 5,
                   "verdict": "fail", "verdict_agree": 5, "findings": [SILENT["reason"]],
                   "runs": 5, "planned": 5, "evidence": "matrix-evidence/aiokafka/s1"}],
    }
    embed_in_readme(readme, summary, tmp_path / "docs")
    text = readme.read_text()
    assert "old table" not in text
    assert "[fail 5/5: member 1 silent 27.3 s > 15 s](docs/matrix-evidence/aiokafka/s1/)" in text
    assert "modal verdict against the scenario's expectations" in text
    assert text.startswith("# Title") and text.rstrip().endswith("after")


def test_the_report_says_how_loaded_the_machine_was() -> None:
    from kafka_chaos_proxy.lab.matrix.report import _load_line, machine_load_summary

    runs = [{"machine": {"cpus": 2, "load_1m_begin": 1.0, "load_1m_end": v}}
            for v in (0.8, 1.5, 3.1)] + [{"outcome": "recovered"}]  # an older result: no load
    load = machine_load_summary(runs)
    assert load == {"runs_measured": 3, "median_load_1m": 1.5, "cpus": 2, "runs_over_cores": 1}
    assert _load_line(load) == [
        "- Machine: 2 cores; 1-minute load at the end of a run: median 1.5; 1 of 3 runs ended "
        "with more load than cores (`machine` in each result.json)"]
    assert _load_line(machine_load_summary([{"outcome": "recovered"}])) == []
