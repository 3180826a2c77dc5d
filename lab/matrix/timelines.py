"""The rebalance timeline of each matrix run, written into its evidence directory.

Why: a verdict says *that* a client failed; the timeline shows the race that made it fail —
which member's SyncGroup the fault hit, who rejoined when, which records came twice. Written
as `timeline.svg` beside the run's events when evidence is published, so that docs/matrix.md
can link it next to the verdict and a reader sees the race with one click, offline.

Reads what a run directory holds, plain or gzipped: `result.json` (the run's group),
`proxy-events.jsonl`, and the harness lines `m<i>.jsonl` of each member.
"""

from __future__ import annotations

import json
from pathlib import Path

from kafka_chaos_proxy.proxy.timeline import (
    build_timeline,
    busiest_group,
    read_harness,
    read_json_lines,
    render_svg,
)

TIMELINE = "timeline.svg"


def _first(run_dir: Path, *names: str) -> Path | None:
    return next((run_dir / n for n in names if (run_dir / n).is_file()), None)


def _harness_files(run_dir: Path) -> list[Path]:
    plain = {p.name: p for p in run_dir.glob("m*.jsonl")}
    gzipped = {p.name.removesuffix(".gz"): p for p in run_dir.glob("m*.jsonl.gz")}
    return [plain.get(name) or gzipped[name] for name in sorted(set(plain) | set(gzipped))]


def write_run_timeline(run_dir: Path) -> Path | None:
    """Write `run_dir/timeline.svg`; None when the run has no events of its group."""
    events_file = _first(run_dir, "proxy-events.jsonl", "proxy-events.jsonl.gz")
    if events_file is None:
        return None
    events = list(read_json_lines(events_file))
    group = None
    result = run_dir / "result.json"
    if result.is_file():
        try:
            group = json.loads(result.read_text()).get("group")
        except ValueError:
            group = None
    group = group or busiest_group(events)
    if not group:
        return None
    model = build_timeline(events, str(group), read_harness(_harness_files(run_dir)))
    if not model.spans:
        return None
    target = run_dir / TIMELINE
    target.write_text(render_svg(model), encoding="utf-8")
    return target


def write_timelines(root: Path) -> int:
    """A timeline for every run directory (`CLIENT/SCENARIO/RUN/result.json`) under `root`;
    returns how many were written."""
    return sum(write_run_timeline(r.parent) is not None
               for r in sorted(root.glob("*/*/*/result.json")))
