"""What a 3-node local cluster promises the lab's failover scenarios: every internal topic,
`__consumer_offsets` above all, is replicated on all three nodes, so killing the coordinator's
broker moves the group to a replica that has its offsets."""

from __future__ import annotations

from pathlib import Path

import pytest

from kafka_chaos_proxy.proxy.real_kafka.kraft import (
    ExtraListener,
    LocalKraftCluster,
    _Node,
    _render_properties,
)


def props(nodes: int) -> dict[str, str]:
    text = _render_properties(_Node(1, 9092, 9093, Path("/tmp/n1")), "1@127.0.0.1:9093", nodes,
                              {})
    return dict(line.split("=", 1) for line in text.splitlines() if line)


@pytest.mark.parametrize(("nodes", "replication"), [(1, "1"), (3, "3")])
def test_internal_topics_are_replicated_on_every_node(nodes: int, replication: str) -> None:
    p = props(nodes)
    assert p["offsets.topic.replication.factor"] == replication
    assert p["default.replication.factor"] == replication
    assert p["transaction.state.log.replication.factor"] == replication
    # A dead node is fenced within seconds, so a killed coordinator is replaced quickly.
    assert int(p["broker.session.timeout.ms"]) <= 5000


def test_an_extra_listener_advertises_the_address_given() -> None:
    """The listener a plain TCP proxy forwards to tells clients to come back through it."""
    extra = ExtraListener("PEER", 9300, "127.0.0.1:9400")
    node = _Node(1, 9092, 9093, Path("/tmp/n1"), extra_listeners=(extra,))
    text = _render_properties(node, "1@127.0.0.1:9093", 1, {})
    p = dict(line.split("=", 1) for line in text.splitlines() if line)
    assert p["listeners"] == ("PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093,"
                              "PEER://127.0.0.1:9300")
    assert p["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9092,PEER://127.0.0.1:9400"
    assert "PEER:PLAINTEXT" in p["listener.security.protocol.map"].split(",")
    assert p["inter.broker.listener.name"] == "PLAINTEXT"


@pytest.mark.parametrize(("name", "advertised"), [
    ("PLAINTEXT", "127.0.0.1:1"), ("peer", "127.0.0.1:1"), ("PE-ER", "127.0.0.1:1"),
    ("PEER", "127.0.0.1"), ("PEER", ":9400"),
])
def test_an_extra_listener_that_cannot_work_is_refused(name: str, advertised: str) -> None:
    with pytest.raises(ValueError):
        ExtraListener(name, 9300, advertised)


def test_extra_listeners_are_for_one_node() -> None:
    with pytest.raises(ValueError, match="one-node"):
        LocalKraftCluster(3, extra_listeners=(ExtraListener("PEER", 9300, "127.0.0.1:9400"),))
