"""The matrix's proxy is the product's proxy process (`proxy.api.process`, tested in
tests/unit/proxy/api/test_process.py) with one run's settings: ephemeral listeners, its seed
and event log in the run's directory, and an admin port another process took in the meantime
making the proxy start again on another port instead of failing the run."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from kafka_chaos_proxy.lab.matrix import proxyproc
from kafka_chaos_proxy.lab.matrix.proxyproc import ProxyProcess
from kafka_chaos_proxy.proxy.api import process


def test_listeners_are_ephemeral_and_the_run_settings_are_passed() -> None:
    command = ProxyProcess("127.0.0.1:1", Path("w"), 7).command()
    assert command[command.index("--port") + 1] == "0"
    assert command[command.index("--port-base") + 1] == "0"
    assert command[command.index("--bootstrap-server") + 1] == "127.0.0.1:1"
    assert command[command.index("--seed") + 1] == "7"
    assert command[command.index("--event-log") + 1] == str(Path("w") / "proxy-events.jsonl")
    assert command[command.index("--log-format") + 1] == "json"


def test_a_taken_admin_port_is_retried_on_another(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        busy = taken.getsockname()[1]
        choices = iter([busy, process.free_port()])
        monkeypatch.setattr(process, "admin_port", lambda: next(choices))
        proxy = ProxyProcess("127.0.0.1:1", tmp_path, 7)  # no broker needed to start
        try:
            admin = proxy.start()
            assert admin.healthy() and proxy.admin_port != busy and proxy.port
        finally:
            proxy.stop()
    assert len(proxy.start_failures) == 1 and "--admin-port" in proxy.start_failures[0]
    assert "already in use" in (tmp_path / "proxy-start-1.log").read_text()
    assert proxyproc.listener_failure(proxy.log_path) is None  # the run is not an infra_error
