"""A matrix never writes the committed docs unless told to by name: the report goes to a fresh
./matrix-out/<time> directory by default, the evidence stays in the artifacts directory, and
only `--publish DIR` copies evidence anywhere else."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kafka_chaos_proxy.lab.matrix.runner import MatrixOptions
from kafka_chaos_proxy.proxy.cli import app
from tests.support.matrix_fakes import FakeRuns, options, run, scenario

ROOT = Path(__file__).resolve().parents[3]


def test_the_default_report_directory_is_fresh_and_not_docs(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    first = MatrixOptions(clients=[], scenarios=[]).out
    assert first.parts[0] == "matrix-out" and "docs" not in first.parts
    first.mkdir(parents=True)
    assert MatrixOptions(clients=[], scenarios=[]).out != first  # never an earlier report


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with a one-scenario catalog and the artifacts of a matrix run."""
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    shutil.copy(ROOT / "scenarios" / "baseline-no-fault.yaml", catalog)
    opts = options(tmp_path, ["aiokafka"], [scenario("baseline-no-fault")], runs=1,
                   artifacts="artifacts/matrix")
    run(opts, FakeRuns())
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _matrix(*args: str) -> None:
    result = CliRunner().invoke(app, ["matrix", "--report-only", "--clients", "aiokafka",
                                      "--runs", "1", "--scenarios-dir", "catalog", *args])
    assert result.exit_code == 0, result.output


def test_without_out_and_publish_nothing_is_written_to_docs(checkout: Path) -> None:
    _matrix()
    assert not (checkout / "docs").exists()
    [report] = (checkout / "matrix-out").iterdir()
    text = (report / "matrix.md").read_text()
    assert "(../../artifacts/matrix/aiokafka/baseline-no-fault/)" in text  # the working copy


def test_only_publish_writes_evidence_into_docs(checkout: Path) -> None:
    _matrix("--out", "docs")
    assert sorted(p.name for p in (checkout / "docs").iterdir()) == ["matrix.json",
                                                                    "matrix.md"]
    _matrix("--out", "docs", "--publish", "docs/matrix-evidence")
    published = checkout / "docs" / "matrix-evidence" / "aiokafka" / "baseline-no-fault" / "1"
    assert (published / "result.json").exists()
    assert "(matrix-evidence/aiokafka/baseline-no-fault/)" in (
        checkout / "docs" / "matrix.md").read_text()
