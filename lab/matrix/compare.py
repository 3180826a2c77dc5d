"""`kafka-chaos-proxy matrix-compare OLD NEW`: which cells' answers changed between two matrix
results, and why.

A regenerated matrix is a new set of claims; a reader of the old report needs to know which of
its cells now say something else. The two results need not come from the same classifier: a
report from before verdicts has one outcome per run (`recovered`, `surfaced_error`, ...), a new
one has verdicts against the scenario's expectations. Both are read as one of four answers:

* `ok`: the client did what the scenario asks (`pass`; before verdicts: `recovered`);
* `finding`: it did not (`fail`, `undecided`; before: `surfaced_error`, `stalled`,
  `duplicates`, `lost`, `crashed`);
* `without fault`: it failed although the fault never fired (`fails_without_fault`);
* `no answer`: the run says nothing about the client (`not_exercised`, `not_injected`,
  `infra_error`, `not_run`).

A cell changed when its modal answer changed, or when it is new or gone. Each changed cell says
why, from the newer runs' own expectations (the failing ones for a finding, the ones that
passed for an ok), and whether the scenario itself changed between the two (its version).

Pure apart from reading the two results files; the report is Markdown.
"""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka_chaos_proxy.lab.matrix.classify import modal
from kafka_chaos_proxy.lab.matrix.report import run_verdict

Result = dict[str, Any]
Cell = tuple[str, str]

#: How a run's verdict or, before verdicts, its outcome reads as an answer.
ANSWERS: dict[str, str] = {
    "pass": "ok", "recovered": "ok",
    "fail": "finding", "undecided": "finding", "surfaced_error": "finding",
    "stalled": "finding", "duplicates": "finding", "lost": "finding", "crashed": "finding",
    "fails_without_fault": "without fault",
    "not_exercised": "no answer", "not_injected": "no answer", "infra_error": "no answer",
    "not_run": "no answer", "unjudged": "no answer",
}
#: Reasons quoted per changed cell, at most.
REASONS = 2


def run_label(result: Result) -> str:
    """What one run said: its verdict, or its outcome if it predates verdicts."""
    verdict = run_verdict(result)
    return str(result.get("outcome")) if verdict == "unjudged" else verdict


def answer(label: str) -> str:
    return ANSWERS.get(label, "no answer")


def load_results(path: Path) -> list[Result]:
    """results.jsonl, results.jsonl.gz, or a directory holding one of them (an --artifacts
    directory, a published evidence directory)."""
    if path.is_dir():
        for name in ("results.jsonl", "results.jsonl.gz"):
            if (path / name).exists():
                return load_results(path / name)
        raise FileNotFoundError(f"{path}: no results.jsonl or results.jsonl.gz in it")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@dataclass(frozen=True)
class CellAnswer:
    label: str  # the modal verdict/outcome
    agree: int
    runs: int
    scenario_version: Any
    results: tuple[Result, ...]

    @property
    def answer(self) -> str:
        return answer(self.label)

    def text(self) -> str:
        return f"{self.label} {self.agree}/{self.runs}"


def cells(results: Iterable[Result]) -> dict[Cell, CellAnswer]:
    by_cell: dict[Cell, list[Result]] = defaultdict(list)
    for r in results:
        by_cell[(str(r["client"]), str(r["scenario"]))].append(r)
    out: dict[Cell, CellAnswer] = {}
    for key, runs in by_cell.items():
        runs.sort(key=lambda r: int(r.get("run", 0)))
        label, agree = modal([run_label(r) for r in runs])
        out[key] = CellAnswer(label, agree, len(runs), runs[-1].get("scenario_version"),
                              tuple(runs))
    return out


@dataclass(frozen=True)
class Change:
    client: str
    scenario: str
    old: str  # "recovered 2/2", or "-" for a new cell
    new: str
    kind: str  # "now a finding", "now ok", ..., "new cell", "gone"
    why: str


def _reasons(runs: Sequence[Result], status: str) -> list[str]:
    seen: dict[str, str] = {}
    for r in runs:
        for e in r.get("expectations") or []:
            if e.get("status") == status:
                seen.setdefault(str(e.get("name")), " ".join(str(e.get("reason")).split()))
    return list(seen.values())[:REASONS]


def _why(old: CellAnswer | None, new: CellAnswer) -> str:
    modal_runs = [r for r in new.results if run_label(r) == new.label]
    parts: list[str] = []
    if new.answer in ("finding", "without fault"):
        parts += _reasons(modal_runs, "fail" if new.label != "undecided" else "undecided")
        control = next((r.get("control") for r in modal_runs if r.get("control")), None)
        if isinstance(control, dict):
            parts.append(f"fault-free control: {control.get('verdict')}")
    elif new.answer == "ok":
        parts += [f"passed: {reason}" for reason in _reasons(modal_runs, "pass")]
    else:
        detail = next((str(r.get("detail") or "") for r in modal_runs if r.get("detail")), "")
        parts.append(detail[:200] or new.label)
    if any(r.get("robustness_only") for r in modal_runs) and new.answer == "finding":
        parts.append("robustness only: rests on faults a real broker would not produce")
    if old is not None and old.scenario_version != new.scenario_version:
        parts.append(f"scenario changed (version {old.scenario_version} -> "
                     f"{new.scenario_version})")
    return "; ".join(p for p in parts if p)


def compare(old: Iterable[Result], new: Iterable[Result]) -> list[Change]:
    """The cells whose answer changed from `old` to `new` (and cells only one of them has)."""
    before, after = cells(old), cells(new)
    changes: list[Change] = []
    for key in sorted(set(before) | set(after)):
        was, now = before.get(key), after.get(key)
        if now is None:
            assert was is not None
            changes.append(Change(*key, was.text(), "-", "gone",
                                  "not in the newer matrix (scenario or client dropped)"))
        elif was is None:
            changes.append(Change(*key, "-", now.text(), "new cell", _why(None, now)))
        elif was.answer != now.answer:
            changes.append(Change(*key, was.text(), now.text(),
                                  f"{was.answer} -> {now.answer}", _why(was, now)))
    return changes


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render(changes: Sequence[Change], old_name: str, new_name: str,
           unchanged: int) -> str:
    lines = [f"# Matrix cells whose answer changed: {old_name} -> {new_name}", "",
             f"{len(changes)} cells changed, {unchanged} kept their answer. Answers: ok "
             "(pass / recovered), finding (fail, undecided / an outcome that was a finding), "
             "without fault (failed without the fault firing), no answer (not exercised, "
             "infrastructure). Generated by `kafka-chaos-proxy matrix-compare` "
             "(lab/matrix/compare.py).", "",
             "| client | scenario | before | now | change | why |",
             "|---|---|---|---|---|---|"]
    for c in changes:
        lines.append(f"| {c.client} | {c.scenario} | {c.old} | {c.new} | {c.kind} | "
                     f"{_cell(c.why)} |")
    return "\n".join(lines) + "\n"


def compare_files(old: Path, new: Path) -> tuple[list[Change], str]:
    before, after = load_results(old), load_results(new)
    changes = compare(before, after)
    common = set(cells(before)) & set(cells(after))
    unchanged = len(common) - sum(1 for c in changes if c.kind not in ("new cell", "gone"))
    return changes, render(changes, str(old), str(new), unchanged)
