"""`kafka-chaos-proxy run` option parsing: flags reach `RunOptions` (no proxy is started)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from kafka_chaos_proxy.proxy import logging as proxy_logging
from kafka_chaos_proxy.proxy import runtime as proxy_runtime
from kafka_chaos_proxy.proxy.cli import app
from kafka_chaos_proxy.proxy.control_plane import build_control_plane
from kafka_chaos_proxy.proxy.observers import ClientIdCounter
from kafka_chaos_proxy.proxy.runtime import RunOptions


def _parse(monkeypatch: pytest.MonkeyPatch, *args: str) -> RunOptions:
    seen: list[RunOptions] = []

    def fake_run(options: RunOptions) -> int:
        seen.append(options)
        return 0

    monkeypatch.setattr(proxy_runtime, "run", fake_run)
    # Global structlog set-up would bind the runner's temporary stderr; keep the tests' own.
    monkeypatch.setattr(proxy_logging, "configure_logging", lambda *a, **k: None)
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


def test_fetch_events_is_opt_in_by_flag_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KCP_FETCH_EVENTS", raising=False)
    assert _parse(monkeypatch).config.fetch_events is False
    assert _parse(monkeypatch, "--fetch-events").config.fetch_events is True
    monkeypatch.setenv("KCP_FETCH_EVENTS", "true")
    assert _parse(monkeypatch).config.fetch_events is True


def test_fetch_events_help_says_what_it_costs(monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200"})
    assert "--fetch-events" in result.output
    assert "every Fetch request's body is decoded" in " ".join(result.output.split())


def test_other_options_reach_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    options = _parse(monkeypatch, "--port", "0", "--node-port", "3=9303", "--seed", "7")
    assert options.config.bootstrap_servers == [("127.0.0.1", 9092)]
    assert options.config.port == 0 and options.config.node_ports == {3: 9303}
    assert options.control.admin_port is None and options.control.seed == 7


def _invoke(monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str, list[RunOptions]]:
    seen: list[RunOptions] = []
    monkeypatch.setattr(proxy_runtime, "run", lambda options: seen.append(options) or 0)
    monkeypatch.setattr(proxy_logging, "configure_logging", lambda *a, **k: None)
    result = CliRunner().invoke(app, ["run", "-b", "127.0.0.1:9092", "--log-format", "json",
                                      *args])
    return result.exit_code, result.output, seen


def test_admin_token_from_file_env_or_flag(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: pytest.TempPathFactory) -> None:
    token_file = tmp_path / "token"  # type: ignore[operator]
    token_file.write_text("from-file\nignored\n")
    monkeypatch.delenv("KCP_ADMIN_TOKEN", raising=False)
    code, _, seen = _invoke(monkeypatch, "--admin-token-file", str(token_file))
    assert code == 0 and seen[0].control.admin_token == "from-file"
    monkeypatch.setenv("KCP_ADMIN_TOKEN", "from-env")
    code, _, seen = _invoke(monkeypatch)
    assert code == 0 and seen[0].control.admin_token == "from-env"
    code, output, seen = _invoke(monkeypatch, "--admin-token", "from-flag")
    assert code == 0 and seen[0].control.admin_token == "from-flag"
    assert "visible to other users in `ps`" in output
    token_file.write_text("")
    code, output, seen = _invoke(monkeypatch, "--admin-token-file", str(token_file))
    assert code == 2 and "empty first line" in output and not seen


def test_admin_beyond_loopback_needs_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KCP_ADMIN_TOKEN", raising=False)
    code, output, seen = _invoke(monkeypatch, "--admin-host", "0.0.0.0")
    assert code == 2 and not seen
    assert "open to the network without a token" in " ".join(output.split())
    monkeypatch.setenv("KCP_ADMIN_TOKEN", "t")
    code, _, seen = _invoke(monkeypatch, "--admin-host", "0.0.0.0", "--admin-allowed-host", "*")
    assert code == 0 and seen[0].control.admin_allowed_hosts == ("*",)


def test_limits_reach_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    options = _parse(monkeypatch, "--max-connections", "50", "--max-connections-per-ip", "5",
                     "--idle-timeout-s", "0", "--request-timeout-s", "2.5", "--max-brokers", "3",
                     "--max-buffered-bytes-per-connection", "1024", "--max-rules", "7")
    config = options.config
    assert (config.max_connections, config.max_connections_per_ip, config.max_brokers) == (
        50, 5, 3)
    assert config.idle_timeout_s is None and config.request_timeout_s == 2.5
    assert config.max_buffered_bytes_per_connection == 1024
    assert options.control.max_rules == 7


def test_log_level_and_capture_reach_their_places(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: pytest.TempPathFactory) -> None:
    levels: list[tuple[object, ...]] = []
    seen: list[RunOptions] = []
    monkeypatch.setattr(proxy_runtime, "run", lambda options: seen.append(options) or 0)
    monkeypatch.setattr(proxy_logging, "configure_logging", lambda *a: levels.append(a))
    capture = tmp_path / "frames.kcpcap"  # type: ignore[operator]
    result = CliRunner().invoke(app, [
        "run", "-b", "127.0.0.1:9092", "--no-admin", "--log-level", "debug", "--capture",
        str(capture), "--capture-api", "JoinGroup", "--capture-api", "SyncGroup"])
    assert result.exit_code == 0, result.output
    assert levels == [(None, "debug")]
    assert seen[0].config.capture_path == capture
    assert seen[0].config.capture_apis == ("JoinGroup", "SyncGroup")
    result = CliRunner().invoke(app, ["run", "-b", "127.0.0.1:9092", "--log-level", "loud"])
    assert result.exit_code == 2 and "--log-level" in result.stderr


def test_env_and_config_file_fill_what_no_flag_gives(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: pytest.TempPathFactory) -> None:
    config = tmp_path / "kcp.toml"  # type: ignore[operator]
    config.write_text("port = 7000\nadmin_port = 7001\nseed = 3\n")
    monkeypatch.setenv("KCP_ADMIN_PORT", "8001")
    code, _, seen = _invoke(monkeypatch, "--config", str(config), "--seed", "5")
    assert code == 0
    assert seen[0].config.port == 7000 and seen[0].control.admin_port == 8001
    assert seen[0].control.seed == 5


def test_version_and_python_dash_m(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import version

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == (
        f"kafka-chaos-proxy {version('kafka-chaos-proxy')}")
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "kafka_chaos_proxy", "--version"],
                          capture_output=True, text=True, check=True)
    assert proc.stdout == result.output


def test_help_groups_options_in_panels() -> None:
    result = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for panel in ("Listeners", "Upstream", "Admin", "Faults", "Events", "Limits", "Logging"):
        assert f"─ {panel}" in result.output, panel
    limits = result.output.split("─ Limits")[1].split("╰")[0]
    assert "--max-connections" in limits and "--max-rules" in limits
