"""Where the lab finds the scenario catalog and the harness sources: one setting each, with a
default that works from a checkout and from a wheel.

Why: `scenario list` must work in an installed package (the catalog ships as package data),
and when something is not where it is expected the error must name the setting to fix.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kafka_chaos_proxy.lab import paths
from kafka_chaos_proxy.lab.matrix import builds, clients
from kafka_chaos_proxy.proxy.cli import app

ROOT = Path(__file__).resolve().parents[3]
CATALOG_SIZE = len(list((ROOT / "scenarios").glob("*.yaml")))


@pytest.fixture(autouse=True)
def _no_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(paths.SCENARIOS_DIR_ENV, raising=False)
    monkeypatch.delenv(paths.HARNESS_DIR_ENV, raising=False)


def _one_scenario(tmp_path: Path) -> Path:
    folder = tmp_path / "catalog"
    folder.mkdir()
    shutil.copy(ROOT / "scenarios" / "baseline-no-fault.yaml", folder)
    return folder


def test_the_packaged_catalog_is_the_scenarios_folder() -> None:
    assert CATALOG_SIZE >= 30
    assert paths.scenarios_dir() == (ROOT / "scenarios").resolve()
    assert paths.PACKAGED_CATALOG.samefile(ROOT / "lab" / "catalog")


def test_the_setting_overrides_the_default(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    monkeypatch.setenv(paths.SCENARIOS_DIR_ENV, str(tmp_path))
    assert paths.scenarios_dir() == tmp_path
    assert paths.scenarios_dir(ROOT / "scenarios") == ROOT / "scenarios"  # the option wins


def test_a_missing_catalog_names_the_setting(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    monkeypatch.setenv(paths.SCENARIOS_DIR_ENV, str(tmp_path / "nope"))
    with pytest.raises(paths.LabPathError, match=paths.SCENARIOS_DIR_ENV):
        paths.scenarios_dir()


def test_scenario_list_reads_the_packaged_catalog() -> None:
    result = CliRunner().invoke(app, ["scenario", "list"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == CATALOG_SIZE
    assert lines[0].startswith("baseline-no-fault v")


@pytest.mark.parametrize("option", ["--scenarios-dir", "--catalog"])
def test_scenario_list_option(tmp_path: Path, option: str) -> None:
    result = CliRunner().invoke(app, ["scenario", "list", option, str(_one_scenario(tmp_path))])
    assert result.exit_code == 0, result.output
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["baseline-no-fault"]


def test_scenario_list_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(paths.SCENARIOS_DIR_ENV, str(_one_scenario(tmp_path)))
    result = CliRunner().invoke(app, ["scenario", "list"])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 1


def test_scenario_list_of_a_missing_folder_is_one_error_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["scenario", "list", "--scenarios-dir",
                                      str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("error: scenario catalog")


def test_matrix_selects_from_the_chosen_catalog(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["matrix", "--scenarios-dir", str(_one_scenario(tmp_path)),
                                      "--scenarios", "heartbeat-not-coordinator"])
    assert result.exit_code == 2
    assert "unknown scenario 'heartbeat-not-coordinator'; known: baseline-no-fault" \
        in result.stderr


def test_harness_sources_default_to_the_checkout() -> None:
    assert paths.harness_dir() == ROOT / "tests" / "clients"
    assert clients.python_harness_dir() == ROOT / "tests" / "clients" / "python"
    assert builds.go_dir() == ROOT / "tests" / "clients" / "go"


def test_the_harness_setting_moves_them(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(paths.HARNESS_DIR_ENV, str(tmp_path))
    argv = clients.CLIENTS["confluent-kafka"].command()
    assert argv[-1] == str(tmp_path / "python" / "confluent_harness.py")


def test_missing_harness_sources_are_one_line_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(paths.HARNESS_DIR_ENV, str(tmp_path / "nope"))
    with pytest.raises(paths.LabPathError) as info:
        clients.CLIENTS["aiokafka"].command()
    assert paths.HARNESS_DIR_ENV in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(builds.HarnessBuildError, match=paths.HARNESS_DIR_ENV):
        builds.go_dir()
    result = CliRunner().invoke(app, ["matrix", "--clients", "aiokafka"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"error: {info.value}"]


def test_without_a_checkout_the_default_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """As in a wheel install: no tests/clients beside the package."""
    monkeypatch.setattr(paths, "REPO_ROOT", tmp_path)
    with pytest.raises(paths.LabPathError, match=f"set {paths.HARNESS_DIR_ENV}"):
        paths.harness_dir()
