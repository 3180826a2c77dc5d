"""The product does not depend on the lab; the lab's commands reach the CLI by entry point.

Why: `lab -> proxy -> faults -> codec` is the one allowed direction (DESIGN.md, Layout). The
proxy must install and run without the lab's client libraries, and a lab command that fails to
load must not take the product's CLI down with it.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

import pytest
import typer
import typer.main

from kafka_chaos_proxy.proxy import cli as proxy_cli
from kafka_chaos_proxy.proxy.cli import ENTRY_POINT_GROUP, app, register_entry_points
from tests.support.imports import ROOT, imported_names, layer, our_modules

PRODUCT = ("proxy", "faults", "codec")
LAB_COMMANDS = {"matrix": "kafka_chaos_proxy.lab.cli:register_matrix",
                "scenario": "kafka_chaos_proxy.lab.cli:register_scenario"}


def test_the_product_never_imports_lab() -> None:
    """Statically, through the shared import walker (which also sees `import_module`)."""
    modules = our_modules()
    offenders = [f"{modules[m].relative_to(ROOT)}:{line}: {name}"
                 for m in modules if layer(m) in PRODUCT
                 for line, name in imported_names(m, modules[m])
                 if layer(name) == "lab"]
    assert not offenders, "the product imports lab:\n" + "\n".join(offenders)


def test_the_walk_would_see_a_lab_import(tmp_path: Path) -> None:
    source = tmp_path / "probe.py"
    source.write_text("import kafka_chaos_proxy.lab\n"
                      "from kafka_chaos_proxy.lab.matrix import runner\n"
                      "importlib.import_module('kafka_chaos_proxy.lab.cli')\n")
    names = [n for _, n in imported_names("kafka_chaos_proxy.proxy.probe", source)]
    assert names == ["kafka_chaos_proxy.lab", "kafka_chaos_proxy.lab.matrix.runner",
                     "kafka_chaos_proxy.lab.cli"]
    assert {layer(n) for n in names} == {"lab"}


def test_the_data_plane_loads_without_lab() -> None:
    """At run time too: the proxy's server, engine and codec pull in no lab module."""
    code = ("import sys, kafka_chaos_proxy.proxy.server, kafka_chaos_proxy.proxy.runtime, "
            "kafka_chaos_proxy.faults.engine, kafka_chaos_proxy.codec; "
            "print(sorted(m for m in sys.modules if m.startswith('kafka_chaos_proxy.lab')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True, timeout=120).stdout.strip()
    assert out == "[]"


def test_pyproject_declares_the_lab_commands() -> None:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert data["project"]["entry-points"][ENTRY_POINT_GROUP] == LAB_COMMANDS


def test_the_installed_metadata_declares_them() -> None:
    declared = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert declared == LAB_COMMANDS, "reinstall (scripts/bootstrap) after editing entry points"


def test_the_cli_registers_scenario_and_matrix() -> None:
    group = typer.main.get_command(app)
    commands = getattr(group, "commands", {})
    assert {"matrix", "scenario"} <= set(commands)
    assert set(getattr(commands["scenario"], "commands", {})) == {"run", "list", "validate"}
    # The product's own commands are all still there.
    assert {"run", "decode", "faults", "events", "groups"} <= set(commands)


def _fake(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)


@pytest.mark.parametrize("value", ["kafka_chaos_proxy.lab.no_such_module:register",
                                   "kafka_chaos_proxy.lab.cli:no_such_function",
                                   "json:dumps"])  # the last loads but fails when called
def test_a_broken_entry_point_is_one_warning_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    real = list(entry_points(group=ENTRY_POINT_GROUP))
    monkeypatch.setattr(proxy_cli, "entry_points", lambda group: [_fake("broken", value), *real])
    target = typer.Typer()
    assert register_entry_points(target) == ["matrix", "scenario"]
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("warning: kafka-chaos-proxy: command 'broken'")
    assert value in err[0]
    commands = getattr(typer.main.get_command(target), "commands", {})
    assert {"matrix", "scenario"} <= set(commands)


def test_duplicate_names_register_once(monkeypatch: pytest.MonkeyPatch) -> None:
    real = list(entry_points(group=ENTRY_POINT_GROUP))
    monkeypatch.setattr(proxy_cli, "entry_points", lambda group: [*real, *real])
    assert register_entry_points(typer.Typer()) == ["matrix", "scenario"]


def test_the_scenario_player_and_the_pytest_plugin_are_entry_points() -> None:
    """The Python API reaches the lab's player by entry point; pytest finds the plugin so."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    declared = data["project"]["entry-points"]
    assert declared["kafka_chaos_proxy.scenarios"] == {"play": "kafka_chaos_proxy.lab.play:play"}
    assert declared["pytest11"] == {"kafka_chaos_proxy": "kafka_chaos_proxy.proxy.pytest_plugin"}
    installed = {(ep.group, ep.name): ep.value
                 for group in ("kafka_chaos_proxy.scenarios", "pytest11")
                 for ep in entry_points(group=group)}
    assert installed[("kafka_chaos_proxy.scenarios", "play")] == "kafka_chaos_proxy.lab.play:play"
    assert installed[("pytest11", "kafka_chaos_proxy")] == "kafka_chaos_proxy.proxy.pytest_plugin"
