"""Every published matrix run gets its timeline, and the report links it next to the verdict.

Uses a recorded evidence directory (tests/fixtures/evidence) as the working artifacts of one
run, so the picture is drawn from real events and harness lines.
"""

from __future__ import annotations

import gzip
import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

from kafka_chaos_proxy.lab.matrix.publish import publish_evidence
from kafka_chaos_proxy.lab.matrix.report import _cell_text, _timeline_run
from kafka_chaos_proxy.lab.matrix.timelines import write_timelines

RUN = (Path(__file__).resolve().parents[2] / "fixtures" / "evidence"
       / "java-classic-coordinator-reset-mid-rebalance-1")
NS = {"s": "http://www.w3.org/2000/svg"}


def _artifacts(root: Path) -> Path:
    """The fixture as a run's working directory: streams plain, as the runner writes them."""
    run_dir = root / "java-classic" / "coordinator-reset-mid-rebalance" / "1"
    run_dir.mkdir(parents=True)
    for path in RUN.iterdir():
        if path.suffix == ".gz":
            (run_dir / path.name.removesuffix(".gz")).write_bytes(gzip.decompress(
                path.read_bytes()))
        else:
            shutil.copyfile(path, run_dir / path.name)
    return run_dir


def test_publishing_draws_each_run(tmp_path: Path) -> None:
    _artifacts(tmp_path / "artifacts")
    dest = tmp_path / "published"
    assert publish_evidence(tmp_path / "artifacts", dest) == 1
    svg = dest / "java-classic" / "coordinator-reset-mid-rebalance" / "1" / "timeline.svg"
    root = ET.parse(svg).getroot()
    group = json.loads((RUN / "result.json").read_text())["group"]
    assert root.attrib["data-group"] == group
    assert len(root.findall(".//s:g[@class='lane']", NS)) == 2
    assert len(root.findall(".//s:g[@class='deliveries']", NS)) == 2
    # an already published tree (streams gzipped) draws the same
    svg.unlink()
    assert write_timelines(dest) == 1 and svg.exists()


def test_report_links_the_timeline_of_a_run_with_the_cells_verdict(tmp_path: Path) -> None:
    cell_dir = tmp_path / "java-classic" / "coordinator-reset-mid-rebalance"
    for run in (1, 2):
        (cell_dir / str(run)).mkdir(parents=True)
    (cell_dir / "2" / "timeline.svg").write_text("<svg/>")
    runs = [{"run": 1, "verdict": "pass", "outcome": "recovered"},
            {"run": 2, "verdict": "fail", "outcome": "stalled"}]
    assert _timeline_run(cell_dir, {"verdict": "fail", "outcome": "stalled"}, runs) == "2"
    # no timeline for a run with the verdict: another run's is better than none
    assert _timeline_run(cell_dir, {"verdict": "pass", "outcome": "recovered"}, runs) == "2"
    (cell_dir / "2" / "timeline.svg").unlink()
    assert _timeline_run(cell_dir, {"verdict": "fail", "outcome": "stalled"}, runs) is None
    cell = {"verdict": "fail", "verdict_agree": 1, "runs": 2, "planned": 2, "agree": 1,
            "outcome": "stalled", "evidence": "ev/java-classic/x",
            "timeline": "ev/java-classic/x/2/timeline.svg"}
    assert _cell_text(cell) == ("[fail 1/2](ev/java-classic/x/) "
                                "[timeline](ev/java-classic/x/2/timeline.svg)")
