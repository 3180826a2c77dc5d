"""`matrix-merge`: the shards' artifacts become one results.jsonl, one evidence tree and one
report; a run found twice is refused with both places named; cells no shard ran are not_run
with the reason."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from kafka_chaos_proxy.lab.matrix.merge import MergeError, merge_matrix
from kafka_chaos_proxy.lab.matrix.shards import Shard
from kafka_chaos_proxy.lab.scenario import Scenario
from kafka_chaos_proxy.proxy.cli import app
from tests.support.matrix_fakes import FakeRuns, options, results, run, scenario

ROOT = Path(__file__).resolve().parents[3]
CLIENTS = ["aiokafka", "kafka-python", "confluent-kafka"]
SCENARIOS = [scenario(f"s{i}") for i in range(4)]
CATALOG = {s.name: s for s in SCENARIOS}


def shard_dirs(tmp_path: Path, count: int = 2, only: set[int] | None = None,
               scenarios: list[Scenario] = SCENARIOS) -> list[Path]:
    dirs = []
    for k in range(1, count + 1):
        if only is not None and k not in only:
            continue
        opts = options(tmp_path, CLIENTS, scenarios, runs=2, artifacts=f"shard-{k}",
                       shard=Shard(k, count))
        run(opts, FakeRuns({(c, s, 2): ["stalled"] for c in CLIENTS for s in ("s0", "s1")}))
        dirs.append(opts.artifacts)
    return dirs


def merge(tmp_path: Path, dirs: list[Path]) -> dict[str, Any]:
    return merge_matrix(dirs, out=tmp_path / "report", artifacts=tmp_path / "merged",
                        catalog=CATALOG, log=lambda m: None)


def test_the_shards_merge_into_one_report(tmp_path: Path) -> None:
    dirs = shard_dirs(tmp_path)
    summary = merge(tmp_path, dirs)

    merged = results(tmp_path / "merged")
    assert len(merged) == len(CLIENTS) * len(SCENARIOS) * 2
    assert summary["total_runs"] == len(merged) and summary["runs_per_cell"] == 2
    cells = {(c["client"], c["scenario"]): c for c in summary["cells"]}
    assert all(c["runs"] == 2 for c in cells.values())
    assert cells[("aiokafka", "s0")]["outcomes"] == ["recovered", "stalled"]
    assert cells[("aiokafka", "s3")]["outcomes"] == ["recovered", "recovered"]
    # Every run's evidence is under the merged directory, and the report links there.
    for r in merged:
        assert (tmp_path / "merged" / r["client"] / r["scenario"] / str(r["run"])
                / "m0.jsonl").exists()
    assert "(../merged/aiokafka/s0/)" in (tmp_path / "report" / "matrix.md").read_text()
    assert [m["shard"] for m in summary["merged_from"]] == ["1/2", "2/2"]
    plan = json.loads((tmp_path / "merged" / "matrix-plan.json").read_text())
    assert plan["shard"] is None and plan["runs"] == 2


def test_a_run_found_twice_is_refused(tmp_path: Path) -> None:
    one = shard_dirs(tmp_path)[0]
    copy = tmp_path / "copy"
    shutil.copytree(one, copy)
    (copy / "matrix-plan.json").unlink()  # not even claiming to be a shard
    with pytest.raises(MergeError) as refused:
        merge(tmp_path, [one, copy])
    message = str(refused.value)
    assert "appear more than once" in message
    assert f"in both {one} and {copy}" in message
    assert not (tmp_path / "merged").exists()  # nothing written


def test_the_same_shard_twice_and_mixed_splits_are_refused(tmp_path: Path) -> None:
    halves = shard_dirs(tmp_path / "halves", 2)
    thirds = shard_dirs(tmp_path / "thirds", 3, only={3})
    with pytest.raises(MergeError, match="different splits"):
        merge(tmp_path, [halves[0], *thirds])
    again = tmp_path / "again"
    shutil.copytree(halves[0], again)
    (again / "results.jsonl").write_text("")  # no duplicate runs, but the same shard
    with pytest.raises(MergeError, match="shard 1/2 is given twice"):
        merge(tmp_path, [halves[0], again])


def test_runs_of_scenarios_the_catalog_lacks_are_refused(tmp_path: Path) -> None:
    dirs = shard_dirs(tmp_path)
    with pytest.raises(MergeError, match="s3 of the merged runs are not in the catalog"):
        merge_matrix(dirs, out=tmp_path / "r", artifacts=tmp_path / "m",
                     catalog={n: s for n, s in CATALOG.items() if n != "s3"},
                     log=lambda m: None)
    plan = dirs[0] / "matrix-plan.json"
    plan.write_text(plan.read_text().replace('"1/2"', '"9/2"'))
    with pytest.raises(MergeError, match=r"matrix-plan\.json: --shard 9/2: K must be"):
        merge(tmp_path, dirs)


def test_cells_of_a_shard_not_merged_are_not_run(tmp_path: Path) -> None:
    dirs = shard_dirs(tmp_path, 2, only={1})
    summary = merge(tmp_path, dirs)
    missing = [c for c in summary["cells"] if not Shard(1, 2).owns(c["client"], c["scenario"])]
    assert missing and all(c["outcome"] == "not_run" for c in missing)
    assert all(c["detail"] == "its shard 2/2 was not among the merged directories"
               for c in missing)
    assert len(summary["not_run"]) == 2 * len(missing)
    assert "its shard 2/2 was not among" in (tmp_path / "report" / "matrix.md").read_text()


def test_the_merged_directory_is_rebuilt_but_nothing_else_overwritten(tmp_path: Path) -> None:
    dirs = shard_dirs(tmp_path)
    merge(tmp_path, dirs)
    merge(tmp_path, dirs[:1])  # an earlier merge is replaced
    assert len(results(tmp_path / "merged")) < len(CLIENTS) * len(SCENARIOS) * 2
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("mine")
    with pytest.raises(MergeError, match="not empty and not an earlier merge"):
        merge_matrix(dirs, out=tmp_path / "r", artifacts=precious, catalog=CATALOG,
                     log=lambda m: None)
    assert (precious / "notes.txt").read_text() == "mine"
    with pytest.raises(MergeError, match="overlaps"):
        merge_matrix(dirs, out=tmp_path / "r", artifacts=dirs[0] / "m", catalog=CATALOG,
                     log=lambda m: None)


def test_the_cli_merges_publishes_and_refuses(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    shutil.copy(ROOT / "scenarios" / "baseline-no-fault.yaml", catalog)
    dirs = shard_dirs(tmp_path, 2, scenarios=[scenario("baseline-no-fault")])
    monkeypatch.chdir(tmp_path)
    base = ["matrix-merge", *map(str, dirs), "--scenarios-dir", str(catalog)]
    merged = CliRunner().invoke(app, [*base, "--publish", "published"])
    assert merged.exit_code == 0, merged.output
    [report] = (tmp_path / "matrix-out").iterdir()  # the default --out: never docs/
    assert "(../../published/aiokafka/baseline-no-fault/)" in (report / "matrix.md").read_text()
    assert (tmp_path / "published" / "aiokafka" / "baseline-no-fault" / "1" / "result.json"
            ).exists()
    assert not (tmp_path / "docs").exists()
    refused = CliRunner().invoke(app, [*base, str(dirs[0])])
    assert refused.exit_code == 2 and "shard 1/2 is given twice" in refused.output
    refused = CliRunner().invoke(app, ["matrix-merge", str(tmp_path / "nothing-here"),
                                       "--scenarios-dir", str(catalog)])
    assert refused.exit_code == 2 and "has no results.jsonl" in refused.output


def _give_control(shard: Path, marker: str) -> dict[str, Any]:
    """Attach a fault-free control to the shard's first aiokafka result, with its evidence."""
    lines = (shard / "results.jsonl").read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if json.loads(line)["client"] == "aiokafka")
    first = json.loads(lines.pop(at))
    evidence = f"{first['client']}/baseline-no-fault/control-classic"
    first["control"] = {"scenario": "baseline-no-fault", "protocol": "classic",
                        "verdict": "pass", "evidence": evidence}
    (shard / evidence).mkdir(parents=True)
    (shard / evidence / "result.json").write_text(json.dumps({"marker": marker}))
    (shard / "results.jsonl").write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    return first


def test_controls_come_along_and_two_shards_controls_stay_apart(tmp_path: Path) -> None:
    one, two = shard_dirs(tmp_path)
    a, b = _give_control(one, "shard 1"), _give_control(two, "shard 2")
    merge(tmp_path, [one, two])

    merged = {(r["client"], r["scenario"], r["run"]): r for r in results(tmp_path / "merged")}
    seen = {}
    for original in (a, b):
        r = merged[(original["client"], original["scenario"], original["run"])]
        path = tmp_path / "merged" / r["control"]["evidence"] / "result.json"
        seen[r["control"]["evidence"]] = json.loads(path.read_text())["marker"]
    # The same name in both shards: the second one is carried under another.
    assert seen == {"aiokafka/baseline-no-fault/control-classic": "shard 1",
                    "aiokafka/baseline-no-fault/control-classic-from-2": "shard 2"}


class _InterruptedAt(FakeRuns):
    """Runs like FakeRuns until its n-th run, which is interrupted as a signal would."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def __call__(self, req: Any) -> dict[str, Any]:
        if len(self.calls) + 1 == self.n:
            raise KeyboardInterrupt
        return super().__call__(req)


def test_a_piece_stopped_by_a_signal_keeps_its_time_and_the_merge_never_counts_less(
        tmp_path: Path) -> None:
    # A piece ended by an interrupt never reaches the runner's end: the time it ran must
    # already be in its plan, or the next piece would start counting from zero.
    opts = options(tmp_path, CLIENTS, SCENARIOS, runs=2, artifacts="shard-1",
                   shard=Shard(1, 2))
    with pytest.raises(KeyboardInterrupt):
        run(opts, _InterruptedAt(2))
    plan = json.loads((opts.artifacts / "matrix-plan.json").read_text())
    assert isinstance(plan["wall_time_s"], float) and "not_run" not in plan
    # A plan recording less than its runs took (as one written before that fix does) is
    # counted at its runs' durations: runs are sequential, so they are the wall time's floor.
    dirs = shard_dirs(tmp_path / "later")
    for d in dirs:
        plan = json.loads((d / "matrix-plan.json").read_text())
        (d / "matrix-plan.json").write_text(json.dumps({**plan, "wall_time_s": 0.0}))
    summary = merge(tmp_path, dirs)
    assert summary["wall_time_s"] == sum(r["duration_s"] for r in results(tmp_path / "merged"))
