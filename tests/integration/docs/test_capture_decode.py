"""The README's capture walkthrough for real: a consumer group's JoinGroup and SyncGroup
captured by a proxy (`run --capture`, here `ProxyConfig.capture_path`) in front of a real
broker, then read back by `decode --capture` with the subscription and assignment shown."""

from __future__ import annotations

import json
from pathlib import Path

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic
from typer.testing import CliRunner

from kafka_chaos_proxy.proxy.capture import Direction, read_capture
from kafka_chaos_proxy.proxy.cli import app
from kafka_chaos_proxy.proxy.real_kafka import KafkaCluster
from tests.support.proxies import make_proxy


def _objects(text: str) -> list[dict[str, object]]:
    decoder, out, pos = json.JSONDecoder(), [], 0
    text = text.strip()
    while pos < len(text):
        obj, pos = decoder.raw_decode(text, pos)
        out.append(obj)
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def test_a_consumer_groups_join_and_sync_are_captured_and_decoded(
        kafka_cluster: KafkaCluster, unique_name: str, tmp_path: Path) -> None:
    path = tmp_path / "rebalance.kcpcap"
    topic, group = f"{unique_name}-t", f"{unique_name}-g"
    proxy = make_proxy(kafka_cluster, capture_path=path,
                       capture_apis=("JoinGroup", "SyncGroup"))
    try:
        admin = AdminClient({"bootstrap.servers": proxy.bootstrap_servers})
        admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(30)
        consumer = Consumer({"bootstrap.servers": proxy.bootstrap_servers, "group.id": group,
                             "auto.offset.reset": "earliest"})
        consumer.subscribe([topic])
        for _ in range(60):
            consumer.poll(0.5)
            if consumer.assignment():
                break
        assert consumer.assignment(), "the consumer never got its partitions"
        consumer.close()
    finally:
        proxy.stop()  # closes the capture: every buffered frame is in the file

    frames = list(read_capture(path))
    assert {f.api_key for f in frames} == {11, 14}  # only the chosen APIs
    assert {f.direction for f in frames} == set(Direction)

    result = CliRunner().invoke(app, ["decode", "--capture", str(path), "--api", "JoinGroup"])
    assert result.exit_code == 0, result.output
    joins = _objects(result.stdout)
    requests = [j for j in joins if j["direction"] == "client->broker"]
    assert requests and all(j["api"] == "JoinGroup" for j in joins)
    body = requests[-1]["body"]
    assert isinstance(body, dict) and body["group_id"] == group
    assert body["protocols"][0]["subscription"]["topics"] == [topic]

    result = CliRunner().invoke(app, ["decode", "--capture", str(path), "--api", "SyncGroup"])
    assert result.exit_code == 0, result.output
    answers = [s for s in _objects(result.stdout) if s["direction"] == "broker->client"]
    assigned = answers[-1]["body"]["assignment"]["assigned_partitions"]  # type: ignore[index]
    assert assigned == [{"topic": topic, "partitions": [0, 1]}]
