"""`--shard K/N`: the shards partition the plan by cell, the split depends on nothing but the
cell's names and N (so separate CI jobs and later sessions agree), and `--resume` continues a
shard and refuses to mix shards in one directory."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kafka_chaos_proxy.lab.matrix.runner import _plan
from kafka_chaos_proxy.lab.matrix.shards import Shard, shard_of
from kafka_chaos_proxy.lab.scenario import Scenario
from kafka_chaos_proxy.proxy.cli import app
from tests.support.matrix_fakes import FakeRuns, options, results, run, scenario

ROOT = Path(__file__).resolve().parents[3]
CLIENTS = ["aiokafka", "kafka-python", "confluent-kafka", "sarama", "franz-go"]
SCENARIOS = [scenario(f"s{i}") for i in range(8)] + [
    scenario("k848", members={"protocol": "consumer"})]


def keys(shard: Shard | None, clients: list[str] = CLIENTS,
         scenarios: list[Scenario] = SCENARIOS, runs: int = 3) -> list[tuple[str, str, int]]:
    """The (client, scenario, run) of every run the plan holds for a client library."""
    opts = options(Path("x"), clients, scenarios, runs=runs, shard=shard)
    return [(p[0].name, p[1].name, p[2]) for p in _plan(opts) if p[3] is not None]


def test_parse() -> None:
    assert Shard.parse("2/4") == Shard(2, 4) and str(Shard.parse(" 1 / 1 ")) == "1/1"
    for bad, says in (("4", "K/N"), ("0/4", "K must be 1 to 4"), ("5/4", "K must be 1 to 4"),
                      ("1/0", "N must be"), ("a/b", "K/N")):
        with pytest.raises(ValueError, match=says):
            Shard.parse(bad)


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7])
def test_the_shards_partition_the_plan_by_cell(count: int) -> None:
    whole = keys(None)
    parts = [keys(Shard(k, count)) for k in range(1, count + 1)]
    assert Counter(k for part in parts for k in part) == Counter(whole)  # each run once
    for part in parts:  # every run of a cell in the same shard as the cell's other runs
        cells = {(c, s) for c, s, _ in part}
        assert sorted(part) == sorted(k for k in whole if (k[0], k[1]) in cells)


def test_the_split_depends_only_on_the_cell_and_n() -> None:
    shard = Shard(2, 3)
    assert keys(shard) == keys(shard)
    # Another selection or order, or a catalog that grew, moves no cell to another shard.
    fewer = keys(shard, CLIENTS[::-1][:3], SCENARIOS[::2])
    assert set(fewer) <= set(keys(shard))
    assert set(keys(shard, CLIENTS, [*SCENARIOS, scenario("new")])) >= set(keys(shard))
    # Pinned: changing the hash would strand every shard directory of an earlier split.
    assert shard_of("sarama", "syncgroup-not-coordinator", 4) == 4
    assert shard_of("aiokafka", "baseline-no-fault", 4) == 2


def test_a_shard_runs_its_cells_and_its_report_names_the_others(tmp_path: Path) -> None:
    fake = FakeRuns()
    opts = options(tmp_path, CLIENTS[:2], SCENARIOS[:4], runs=1, shard=Shard(1, 2))
    summary = run(opts, fake)
    assert sorted(fake.calls) == sorted(keys(Shard(1, 2), CLIENTS[:2], SCENARIOS[:4], 1))
    plan = json.loads((opts.artifacts / "matrix-plan.json").read_text())
    assert plan["shard"] == "1/2" and plan["runs"] == 1 and plan["wall_time_s"] >= 0
    others = [c for c in summary["cells"] if not Shard(1, 2).owns(c["client"], c["scenario"])]
    assert others and all(c["outcome"] == "not_run" for c in others)
    assert all(c["detail"] == "cell of shard 2/2, not of this one (1/2)" for c in others)
    assert "cell of shard 2/2" in (opts.out / "matrix.md").read_text()
    assert summary["shard"] == "1/2"


def test_resume_continues_a_shard_and_refuses_another(tmp_path: Path) -> None:
    opts = options(tmp_path, CLIENTS[:3], SCENARIOS[:4], runs=2, shard=Shard(1, 2))
    planned = keys(Shard(1, 2), CLIENTS[:3], SCENARIOS[:4], 2)
    first = FakeRuns({planned[2]: [KeyboardInterrupt()]})  # interrupted at its third run
    with pytest.raises(KeyboardInterrupt):
        run(opts, first)
    rest = FakeRuns()
    run(dataclasses.replace(opts, resume=True), rest)
    assert rest.calls == planned[2:]  # the two recorded runs are not run again
    assert sorted((r["client"], r["scenario"], r["run"]) for r in results(opts.artifacts)) \
        == sorted(planned)
    with pytest.raises(ValueError, match="holds shard 1/2, resumed with --shard 2/2"):
        run(dataclasses.replace(opts, resume=True, shard=Shard(2, 2)), FakeRuns())
    with pytest.raises(ValueError, match="resumed with no --shard"):
        run(dataclasses.replace(opts, resume=True, shard=None), FakeRuns())


def test_the_cli_refuses_publishing_one_shard_and_resuming_another(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    shutil.copy(ROOT / "scenarios" / "baseline-no-fault.yaml", catalog)
    opts = options(tmp_path, ["aiokafka"], [scenario("baseline-no-fault")], runs=1,
                   shard=Shard(2, 2))
    run(opts, FakeRuns())
    base = ["matrix", "--scenarios-dir", str(catalog), "--artifacts", str(opts.artifacts),
            "--out", str(tmp_path / "out")]
    refused = CliRunner().invoke(app, [*base, "--shard", "1/2", "--publish", "p"])
    assert refused.exit_code == 2 and "matrix-merge" in refused.output
    refused = CliRunner().invoke(app, [*base, "--shard", "1/2", "--resume"])
    assert refused.exit_code == 2 and "holds shard 2/2" in refused.output
    refused = CliRunner().invoke(app, [*base, "--shard", "3/2"])
    assert refused.exit_code == 2 and "K must be 1 to 2" in refused.output
