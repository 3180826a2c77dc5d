"""The matrix in pieces: `--shard K/N` runs the cells of one shard, `matrix-merge` joins them.

A cell (client x scenario) belongs to exactly one shard, decided by a hash of its two names and
N alone: not by the catalog, the selection or the order of the plan. So every CI job computes
the same split on its own, all runs of a cell stay in one shard (k/N of a cell is never split
between machines), and a shard resumed after scenarios were added keeps every cell it already
ran. The price is balance by chance, not by construction: on the 40-scenario catalog the
largest of 4 shards holds about 5% more run time than the mean.

Each matrix run writes `matrix-plan.json` beside its `results.jsonl`: what was planned (clients,
scenarios, runs, shard) and, at the end, how long it took. `--resume` refuses an artifacts
directory of another shard, and the merge uses the plans to report cells no shard ran.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka_chaos_proxy.lab.matrix.report import render_markdown

PLAN_FILE = "matrix-plan.json"
_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
MAX_SHARDS = 1000
#: Cells named per reason in the report's "Cells not run" section.
SHOWN_CELLS = 12


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count`, counted from 1 as CI matrices count (`--shard 1/4`)."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        found = _SHARD.match(text)
        if found is None:
            raise ValueError(f"--shard must be K/N (e.g. 2/4), got {text!r}")
        index, count = int(found.group(1)), int(found.group(2))
        if not 1 <= count <= MAX_SHARDS:
            raise ValueError(f"--shard {text}: N must be 1 to {MAX_SHARDS}")
        if not 1 <= index <= count:
            raise ValueError(f"--shard {text}: K must be 1 to {count}")
        return cls(index, count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, client: str, scenario: str) -> bool:
        return shard_of(client, scenario, self.count) == self.index


def shard_of(client: str, scenario: str, count: int) -> int:
    """The shard (1..count) of the cell `client` x `scenario`."""
    digest = hashlib.sha256(f"{scenario}\0{client}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def plan_path(artifacts: Path) -> Path:
    return artifacts / PLAN_FILE


def read_plan(artifacts: Path) -> dict[str, Any] | None:
    """The plan a matrix run left in `artifacts`, or None (none, or unreadable)."""
    try:
        plan = json.loads(plan_path(artifacts).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return plan if isinstance(plan, dict) else None


def write_plan(artifacts: Path, plan: dict[str, Any]) -> None:
    artifacts.mkdir(parents=True, exist_ok=True)
    tmp = plan_path(artifacts).with_suffix(".json.tmp")
    tmp.write_text(json.dumps(plan, indent=1, default=str) + "\n", encoding="utf-8")
    tmp.replace(plan_path(artifacts))


def new_plan(*, shard: Shard | None, clients: list[str], scenarios: list[tuple[str, int]],
             runs: int, order: str) -> dict[str, Any]:
    return {
        "shard": None if shard is None else str(shard),
        "clients": clients,
        "scenarios": [{"name": n, "version": v} for n, v in scenarios],
        "runs": runs,
        "order": order,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def resume_problem(artifacts: Path, shard: Shard | None,
                   results: list[dict[str, Any]]) -> str | None:
    """Why `--resume` must not continue `artifacts` as `shard`, or None when it may.

    Results of another shard kept in this directory would be merged twice (the merge refuses
    duplicates), so a directory resumes only as the shard that wrote it.
    """
    plan = read_plan(artifacts)
    wanted = None if shard is None else str(shard)
    if plan is not None and results and plan.get("shard") != wanted:
        held = plan.get("shard") or "the whole matrix (no --shard)"
        asked = f"--shard {wanted}" if wanted else "no --shard"
        return (f"{artifacts} holds shard {held}, resumed with {asked}: resume it as it was "
                "started, or give this shard its own --artifacts")
    if shard is not None:
        foreign = [r for r in results if not shard.owns(str(r["client"]), str(r["scenario"]))]
        if foreign:
            r = foreign[0]
            return (f"{artifacts} holds {len(foreign)} results of cells outside shard {shard} "
                    f"(e.g. {r['client']} x {r['scenario']}): give this shard its own "
                    "--artifacts")
    return None


def load_results(path: Path) -> list[dict[str, Any]]:
    """The runs recorded in a results.jsonl, one per line (none when it does not exist)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # a line cut short by an interrupted write
    return out


def relabel_not_run(summary: dict[str, Any], out_dir: Path,
                    reason: Callable[[str, str], str | None], heading: str = "") -> dict[str, Any]:
    """Give not_run cells the reason `reason(client, scenario)` says (None: keep theirs) and
    rewrite the report with it: a cell another shard runs is not one the budget left out.
    matrix.md gets a section saying why cells were not run, opened by `heading`."""
    why_not: dict[str, list[str]] = {}
    for cell in summary["cells"]:
        if cell.get("outcome") == "not_run":
            why = reason(str(cell["client"]), str(cell["scenario"]))
            if why is not None:
                cell["detail"] = why
            why_not.setdefault(str(cell.get("detail", "")), []).append(
                f"{cell['client']} x `{cell['scenario']}`")
    (out_dir / "matrix.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    lines = ["## Cells not run", ""]
    if heading:
        lines += [heading, ""]
    for why, cells in why_not.items():
        shown = ", ".join(cells[:SHOWN_CELLS]) + (
            f" and {len(cells) - SHOWN_CELLS} more" if len(cells) > SHOWN_CELLS else "")
        lines.append(f"- {why} ({len(cells)} cells): {shown}")
    if not why_not:
        lines.append("None.")
    text = render_markdown(summary).rstrip("\n") + "\n\n" + "\n".join(lines) + "\n"
    (out_dir / "matrix.md").write_text(text)
    return summary
