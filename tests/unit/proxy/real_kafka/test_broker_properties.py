"""What a 3-node local cluster promises the lab's failover scenarios: every internal topic,
`__consumer_offsets` above all, is replicated on all three nodes, so killing the coordinator's
broker moves the group to a replica that has its offsets."""

from __future__ import annotations

from pathlib import Path

import pytest

from kafka_chaos_proxy.proxy.real_kafka.kraft import _Node, _render_properties


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
