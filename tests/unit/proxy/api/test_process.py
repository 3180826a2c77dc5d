"""`kafka-chaos-proxy run` as a child process (`proxy.api.process`): what it is started
with, how its bootstrap address and admin port are found."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from kafka_chaos_proxy.proxy.api import process
from kafka_chaos_proxy.proxy.api.process import ProxyProcess, bootstrap_from_log


def test_the_bootstrap_address_is_read_from_the_banner() -> None:
    log = ('{"event": "proxy_listening"}\n'
           "kafka-chaos-proxy: bootstrap servers for clients: 127.0.0.1:40123\n"
           "  clients:     point bootstrap.servers at 127.0.0.1:40123\n")
    assert bootstrap_from_log(log) == "127.0.0.1:40123"
    assert bootstrap_from_log('{"event": "starting"}\n') is None


def test_the_admin_port_is_below_the_ephemeral_range(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    ranges = tmp_path / "range"
    ranges.write_text("32768\t60999\n")
    monkeypatch.setattr(process, "EPHEMERAL_RANGE_FILE", ranges)
    ports = {process.admin_port(rng=random.Random(n)) for n in range(20)}
    assert all(process.ADMIN_PORT_FLOOR <= p < 32768 for p in ports)


def test_listeners_are_ephemeral_and_the_admin_api_on_loopback() -> None:
    command = ProxyProcess("127.0.0.1:1", Path("x.log"), args=["--seed", "3"]).command()
    assert command[command.index("run") + 1:command.index("run") + 3] == [
        "--bootstrap-server", "127.0.0.1:1"]
    assert command[command.index("--port") + 1] == "0"
    assert command[command.index("--port-base") + 1] == "0"
    assert command[command.index("--admin-host") + 1] == "127.0.0.1"
    assert command[-2:] == ["--seed", "3"]


def test_without_an_upstream_the_child_picks_the_broker() -> None:
    assert "--bootstrap-server" not in ProxyProcess(None, Path("x.log")).command()


def test_a_token_reaches_the_child_by_its_environment_not_its_command_line() -> None:
    proxy = ProxyProcess("127.0.0.1:1", Path("x.log"), token="s3cret", env={"A": "1"})
    assert "s3cret" not in " ".join(proxy.command())
    assert proxy._child_env() == {"A": "1", "KCP_ADMIN_TOKEN": "s3cret"}
    assert ProxyProcess("127.0.0.1:1", Path("x.log"), env={"A": "1"})._child_env() == {"A": "1"}
