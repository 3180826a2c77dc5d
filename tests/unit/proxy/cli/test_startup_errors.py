"""Every way `kafka-chaos-proxy run` can fail to start: exit code 2, one line on stderr that
names what to fix, and nothing left behind (no kcp-* temp dir, no JVM, no bound listener).

Missing Java and Maven are real: the CLI runs in a subprocess whose PATH holds only `python`
(and `java`, for the Maven case), never a mock.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kafka_chaos_proxy.proxy import logging as proxy_logging
from kafka_chaos_proxy.proxy.cli import app

ROOT = Path(__file__).resolve().parents[4]

BAD_FAULTS = "- match: {apis: [SyncGroup]}\n  action: {type: eror}\n"


def _kcp_dirs(folder: str) -> set[str]:
    return {p.name for p in Path(folder).iterdir() if p.name.startswith("kcp-")}


@pytest.fixture
def private_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """A temp folder of this test's own, so other runs on the machine cannot blur the
    before/after comparison of `tempfile.gettempdir()`."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    before = _kcp_dirs(tempfile.gettempdir())
    yield str(folder)
    assert _kcp_dirs(tempfile.gettempdir()) == before


def _invoke(monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, list[str]]:
    monkeypatch.setattr(proxy_logging, "configure_logging", lambda *a, **k: None)
    result = CliRunner().invoke(app, ["run", "--log-format", "json", *args])
    return result.exit_code, result.stderr.splitlines()


def _listening() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    return sock


def _bin_with(tmp_path: Path, *tools: str) -> Path:
    """A PATH folder holding only `python` and the named tools (links to the real ones)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "python").symlink_to(sys.executable)
    for tool in tools:
        found = shutil.which(tool)
        if found is None:
            pytest.skip(f"{tool} is not installed here")
        (folder / tool).symlink_to(found)
    return folder


def _run_cli(tmp_path: Path, private_tmp: str, path: Path, *args: str,
             **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items()
               if k not in ("JAVA_HOME", "KAFKA_BOOTSTRAP_SERVERS") and not k.startswith("KCP_")}
    environ.update(PATH=str(path), TMPDIR=private_tmp, KCP_KAFKA_PROVIDER="local", **env)
    return subprocess.run(
        [sys.executable, "-m", "kafka_chaos_proxy", "run", "--port", "0", "--no-admin", *args],
        cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60, check=False)


def test_busy_bootstrap_port_names_port_flag_and_holder(
        monkeypatch: pytest.MonkeyPatch, private_tmp: str) -> None:
    with _listening() as held:
        port = held.getsockname()[1]
        code, lines = _invoke(monkeypatch, "-b", "127.0.0.1:1", "--port", str(port),
                              "--no-admin")
    assert code == 2 and len(lines) == 1, lines
    assert f"port {port} (--port)" in lines[0]
    assert f"pid {os.getpid()}" in lines[0]  # this test holds it


def test_busy_admin_port_binds_nothing(monkeypatch: pytest.MonkeyPatch,
                                       private_tmp: str) -> None:
    with _listening() as held, _listening() as probe:
        port, free = held.getsockname()[1], probe.getsockname()[1]
        probe.close()
        code, lines = _invoke(monkeypatch, "-b", "127.0.0.1:1", "--port", str(free),
                              "--admin-port", str(port))
        assert code == 2 and len(lines) == 1, lines
        assert f"port {port} (--admin-port)" in lines[0]
        with socket.socket() as again:  # the bootstrap port was never left bound
            again.bind(("127.0.0.1", free))


def test_bad_config_file_and_env_value(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                       private_tmp: str) -> None:
    config = tmp_path / "kcp.yaml"
    config.write_text("admin_prot: 1\n")
    code, lines = _invoke(monkeypatch, "--config", str(config))
    assert code == 2 and len(lines) == 1, lines
    assert "'admin_prot'" in lines[0] and str(config) in lines[0]
    monkeypatch.setenv("KCP_PORT", "nine")
    code, lines = _invoke(monkeypatch, "-b", "127.0.0.1:1")
    assert code == 2 and len(lines) == 1, lines
    assert "KCP_PORT" in lines[0] and "integer" in lines[0]


def test_missing_java_names_it_and_the_install(tmp_path: Path, private_tmp: str) -> None:
    proc = _run_cli(tmp_path, private_tmp, _bin_with(tmp_path))
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "java" in lines[0] and "apt-get install openjdk-17-jre-headless" in lines[0]


def test_missing_maven_with_a_cold_cache(tmp_path: Path, private_tmp: str) -> None:
    cache = tmp_path / "cache"
    proc = _run_cli(tmp_path, private_tmp, _bin_with(tmp_path, "java"),
                    KCP_CACHE_DIR=str(cache))
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "mvn not found" in lines[0] and "apt-get install maven" in lines[0]
    assert str(cache) in lines[0]


def test_faults_typo_is_reported_before_the_broker_starts(tmp_path: Path,
                                                          private_tmp: str) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(BAD_FAULTS)
    # No java on PATH: had the broker come first, the error would be about Java.
    proc = _run_cli(tmp_path, private_tmp, _bin_with(tmp_path), "--faults", str(rules))
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert str(rules) in lines[0] and "rule 0" in lines[0] and "action" in lines[0]


def test_busy_first_broker_listener_names_port_base(monkeypatch: pytest.MonkeyPatch,
                                                    private_tmp: str) -> None:
    with _listening() as held, _listening() as probe:
        base, free = held.getsockname()[1], probe.getsockname()[1]
        probe.close()
        code, lines = _invoke(monkeypatch, "-b", "127.0.0.1:1", "--port", str(free),
                              "--port-base", str(base), "--no-admin")
    assert code == 2 and len(lines) == 1, lines
    assert f"port {base} (--port-base)" in lines[0]
