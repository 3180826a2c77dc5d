"""`kafka-chaos-proxy run` option parsing: flags reach `RunOptions` (no proxy is started)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import proxy.logging
import proxy.runtime
from proxy.cli import app
from proxy.control_plane import build_control_plane
from proxy.observers import ClientIdCounter
from proxy.runtime import RunOptions


def _parse(monkeypatch: pytest.MonkeyPatch, *args: str) -> RunOptions:
    seen: list[RunOptions] = []

    def fake_run(options: RunOptions) -> int:
        seen.append(options)
        return 0

    monkeypatch.setattr(proxy.runtime, "run", fake_run)
    # Global structlog set-up would bind the runner's temporary stderr; keep the tests' own.
    monkeypatch.setattr(proxy.logging, "configure_logging", lambda *a, **k: None)
    result = CliRunner().invoke(
        app, ["run", "-b", "127.0.0.1:9092", "--no-admin", "--log-format", "json", *args])
    assert result.exit_code == 0, result.output
    assert len(seen) == 1
    return seen[0]


def test_metrics_client_ids_is_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    options = _parse(monkeypatch)
    assert options.control.metrics_client_ids is False
    assert not isinstance(build_control_plane(options.control).decider, ClientIdCounter)


def test_metrics_client_ids_flag_counts_per_client_id(monkeypatch: pytest.MonkeyPatch) -> None:
    options = _parse(monkeypatch, "--metrics-client-ids")
    assert options.control.metrics_client_ids is True
    assert isinstance(build_control_plane(options.control).decider, ClientIdCounter)


def test_other_options_reach_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    options = _parse(monkeypatch, "--port", "0", "--node-port", "3=9303", "--seed", "7")
    assert options.config.bootstrap_servers == [("127.0.0.1", 9092)]
    assert options.config.port == 0 and options.config.node_ports == {3: 9303}
    assert options.control.admin_port is None and options.control.seed == 7
