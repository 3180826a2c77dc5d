"""ProxyConfig: address parsing and listener port assignment."""

from __future__ import annotations

import socket

import pytest
import typer

from kafka_chaos_proxy.proxy.cli.run import _node_ports
from kafka_chaos_proxy.proxy.config import ProxyConfig, parse_bootstrap, parse_host_port


def test_parse_addresses() -> None:
    assert parse_host_port("b1:9093") == ("b1", 9093)
    assert parse_host_port("[::1]:9093") == ("::1", 9093)
    assert parse_host_port("b1") == ("b1", 9092)
    assert parse_bootstrap("a:1, b:2,") == [("a", 1), ("b", 2)]


def test_node_ports_explicit_then_base_plus_index() -> None:
    cfg = ProxyConfig([("b", 1)], port=9192, node_ports={7: 30007})
    assert cfg.node_listen_port(7, 0) == 30007
    assert cfg.node_listen_port(1, 0) == 9193
    assert cfg.node_listen_port(2, 1) == 9194
    assert ProxyConfig([("b", 1)], port=9192, port_base=20000).node_listen_port(3, 2) == 20002
    assert ProxyConfig([("b", 1)], port=0).node_listen_port(3, 2) == 0  # ephemeral


def test_advertised_host() -> None:
    assert ProxyConfig([], listen_host="10.0.0.5").advertised == "10.0.0.5"
    assert ProxyConfig([], advertised_host="proxy.example").advertised == "proxy.example"
    assert ProxyConfig([], listen_host="0.0.0.0").advertised == socket.gethostname()


def test_node_port_option() -> None:
    assert _node_ports(["1=9301", "2=9302"]) == {1: 9301, 2: 9302}
    with pytest.raises(typer.BadParameter):
        _node_ports(["1:9301"])
