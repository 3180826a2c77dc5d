"""Broker listeners are bounded in count, their ports stay in range, and the backlog is ours."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from kafka_chaos_proxy.proxy import metrics
from kafka_chaos_proxy.proxy.config import ListenerLimitError, ProxyConfig
from kafka_chaos_proxy.proxy.listeners import BOOTSTRAP_NODE, ListenerSet


def _refusals(reason: str) -> float:
    value = metrics.REGISTRY.get_sample_value("kcp_listener_refusals_total", {"reason": reason})
    return value or 0.0


async def test_listeners_stop_at_max_brokers_and_say_why() -> None:
    listeners = ListenerSet("127.0.0.1", lambda node: asyncio.Protocol, max_brokers=3)
    listeners.bind(BOOTSTRAP_NODE, 0)
    for node in range(3):
        listeners.bind(node, 0)
    before = _refusals("max_brokers")
    with pytest.raises(ListenerLimitError, match="--max-brokers 3"):
        listeners.bind(99, 0)
    assert _refusals("max_brokers") == before + 1
    assert sorted(listeners.listeners) == [BOOTSTRAP_NODE, 0, 1, 2]
    assert listeners.bind(1, 0) is listeners.listeners[1]  # a known broker is no new listener
    await listeners.close()
    await listeners.wait_closed()


async def test_listen_backlog_survives_create_server() -> None:
    listeners = ListenerSet("127.0.0.1", lambda node: asyncio.Protocol, backlog=777)
    listener = listeners.bind(BOOTSTRAP_NODE, 0)
    await listeners.wait_serving()
    # `ss -l` shows a listening socket's backlog as its Send-Q.
    out = subprocess.run(["ss", "-Hlnt", f"sport = :{listener.port}"], capture_output=True,
                         text=True, check=True).stdout.split()
    await listeners.close()
    await listeners.wait_closed()
    assert out[0] == "LISTEN" and out[2] == "777"


def test_port_arithmetic_never_wraps() -> None:
    config = ProxyConfig([("127.0.0.1", 9092)], port=65000)
    assert config.node_listen_port(1, 534) == 65535
    with pytest.raises(ListenerLimitError, match="beyond 65535"):
        config.node_listen_port(1, 535)
