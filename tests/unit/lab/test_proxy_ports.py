"""The matrix's proxy needs no range of free ports: its listeners are ephemeral, the bootstrap
address comes from its banner, and an admin port another process took in the meantime makes
the proxy start again on another port instead of failing the run."""

from __future__ import annotations

import random
import socket
from pathlib import Path

import pytest

from kafka_chaos_proxy.lab.matrix import proxyproc
from kafka_chaos_proxy.lab.matrix.proxyproc import ProxyProcess, bootstrap_from_log


def test_the_bootstrap_address_is_read_from_the_banner() -> None:
    log = ('{"event": "proxy_listening"}\n'
           "kafka-chaos-proxy: bootstrap servers for clients: 127.0.0.1:40123\n"
           "  clients:     point bootstrap.servers at 127.0.0.1:40123\n")
    assert bootstrap_from_log(log) == "127.0.0.1:40123"
    assert bootstrap_from_log('{"event": "starting"}\n') is None


def test_listeners_are_ephemeral() -> None:
    command = ProxyProcess("127.0.0.1:1", Path("w"), 7).command()
    assert command[command.index("--port") + 1] == "0"
    assert command[command.index("--port-base") + 1] == "0"


def test_the_admin_port_is_below_the_ephemeral_range(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    ranges = tmp_path / "range"
    ranges.write_text("32768\t60999\n")
    monkeypatch.setattr(proxyproc, "EPHEMERAL_RANGE_FILE", ranges)
    ports = {proxyproc.admin_port(rng=random.Random(n)) for n in range(20)}
    assert all(proxyproc.ADMIN_PORT_FLOOR <= p < 32768 for p in ports)


def test_a_taken_admin_port_is_retried_on_another(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        busy = taken.getsockname()[1]
        choices = iter([busy, proxyproc.free_port()])
        monkeypatch.setattr(proxyproc, "admin_port", lambda: next(choices))
        proxy = ProxyProcess("127.0.0.1:1", tmp_path, 7)  # no broker needed to start
        try:
            admin = proxy.start()
            assert admin.healthy() and proxy.admin_port != busy and proxy.port
        finally:
            proxy.stop()
    assert len(proxy.start_failures) == 1 and "--admin-port" in proxy.start_failures[0]
    assert "already in use" in (tmp_path / "proxy-start-1.log").read_text()
    assert proxyproc.listener_failure(proxy.log_path) is None  # the run is not an infra_error
