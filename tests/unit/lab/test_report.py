"""The report: modal outcome with k/N, disagreements listed, n/a and not-run cells explicit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lab.matrix.report import write_report
from lab.scenario import parse_scenario

SCENARIOS = [
    parse_scenario({"name": "classic-one", "version": 1, "description": "c"}),
    parse_scenario({"name": "kip848-one", "version": 2, "description": "k",
                    "setup": {"members": {"protocol": "consumer"}}}),
]


def result(client: str, scenario: str, run: int, outcome: str, **extra: Any) -> dict[str, Any]:
    return {"client": client, "scenario": scenario, "run": run, "outcome": outcome,
            "detail": f"{outcome} detail", "protocol": "classic", "errors": [],
            "duplicates": 0, "missing": 0, "time_to_recover_s": 1.0, "duration_s": 5.0,
            "library_versions": {"aiokafka": "0.14.0"}, **extra}


def test_report_cells(tmp_path: Path) -> None:
    results = [
        result("aiokafka", "classic-one", 1, "recovered"),
        result("aiokafka", "classic-one", 2, "stalled"),
        result("aiokafka", "classic-one", 3, "recovered"),
        result("confluent-kafka", "classic-one", 1, "duplicates", duplicates=7),
    ]
    summary = write_report(
        results, out_dir=tmp_path / "docs", artifacts=tmp_path / "artifacts",
        clients=["aiokafka", "confluent-kafka"], scenarios=SCENARIOS, runs=3,
        kafka_version="4.3.1", unavailable={}, not_run=[], wall_time_s=60.0)
    cells = {(c["client"], c["scenario"]): c for c in summary["cells"]}
    assert cells[("aiokafka", "classic-one")]["outcome"] == "recovered"
    assert cells[("aiokafka", "classic-one")]["agree"] == 2
    assert cells[("aiokafka", "kip848-one")]["outcome"] == "n/a"
    assert cells[("confluent-kafka", "kip848-one")]["outcome"] == "not_run"
    md = (tmp_path / "docs" / "matrix.md").read_text()
    assert "[recovered 2/3](../artifacts/aiokafka/classic-one/)" in md
    assert "duplicates 1/1 (dup 7) [1 of 3 runs]" in md
    assert "aiokafka x `classic-one`: recovered 2/3, stalled 1/3" in md
    assert "4.3.1" in md
    assert json.loads((tmp_path / "docs" / "matrix.json").read_text())["total_runs"] == 4


def test_readme_section_is_replaced_with_links_relative_to_the_readme(tmp_path: Path) -> None:
    from lab.matrix.report import README_END, README_START, embed_in_readme

    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\n{README_START}\nold table\n{README_END}\n\nafter\n")
    summary = {
        "kafka_version": "4.3.1",
        "total_runs": 1,
        "clients": ["aiokafka"],
        "scenarios": [{"name": "s1"}],
        "cells": [{"client": "aiokafka", "scenario": "s1", "outcome": "recovered", "agree": 1,
                   "runs": 1, "planned": 1, "evidence": "matrix-evidence/aiokafka/s1"}],
    }
    embed_in_readme(readme, summary, tmp_path / "docs")
    text = readme.read_text()
    assert "old table" not in text
    assert "[recovered 1/1](docs/matrix-evidence/aiokafka/s1/)" in text
    assert text.startswith("# Title") and text.rstrip().endswith("after")
