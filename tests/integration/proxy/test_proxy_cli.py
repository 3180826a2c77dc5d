"""`kafka-chaos-proxy run` as a user runs it: banner, clients through it, clean SIGTERM exit."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from test_proxy_clients import create_topic

from kafka_chaos_proxy.proxy.real_kafka import KafkaCluster

ROOT = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_run_command_proxies_and_shuts_down_on_sigterm(kafka_cluster: KafkaCluster,
                                                       unique_name: str,
                                                       tmp_path: Path) -> None:
    port, base = _free_port(), _free_port()
    log_path = tmp_path / "proxy.log"
    cmd = [sys.executable, "-c", "from kafka_chaos_proxy.proxy.cli import main; main()", "run",
           "--bootstrap-server", kafka_cluster.bootstrap_servers, "--port", str(port),
           "--port-base", str(base), "--no-admin", "--log-format", "json",
           "--log-level", "debug"]  # connection open/close lines are debug
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=log)
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline().decode()
        assert banner.strip().endswith(f"127.0.0.1:{port}"), banner
        rest = [proc.stdout.readline().decode() for _ in range(4)]  # --no-admin: 5 lines
        assert f"point bootstrap.servers at 127.0.0.1:{port}" in rest[0], rest
        assert f"127.0.0.1:{base} (node " in rest[1] and f"{base}+N" in rest[1], rest
        assert kafka_cluster.bootstrap_servers.split(",")[0] in rest[2], rest
        assert "scripts/kcp" in rest[3], rest
        bs = f"127.0.0.1:{port}"
        topic = f"{unique_name}-t"
        create_topic(bs, topic, partitions=1)
        producer = Producer({"bootstrap.servers": bs})
        for i in range(100):
            producer.produce(topic, f"r{i}".encode())
        assert producer.flush(30) == 0
        consumer = Consumer({"bootstrap.servers": bs, "group.id": f"{unique_name}-g"})
        consumer.assign([TopicPartition(topic, 0, 0)])
        got: list[bytes] = []
        for _ in range(60):
            got += [m.value() or b"" for m in consumer.consume(100, timeout=0.5)
                    if not m.error()]
            if len(got) >= 100:
                break
        consumer.close()
        assert got == [f"r{i}".encode() for i in range(100)]
        meta = Producer({"bootstrap.servers": bs}).list_topics(timeout=10)
        assert {b.port for b in meta.brokers.values()} == {base}  # first node: port base
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    assert code == 0
    events = [json.loads(line) for line in log_path.read_text().splitlines()
              if line.startswith("{")]
    names = [e["event"] for e in events]
    assert "proxy_listening" in names and "proxy_stopped" in names
    opened = [e for e in events if e["event"] == "connection_open"]
    closed = [e for e in events if e["event"] == "connection_closed"]
    assert opened and closed
    assert {"peer", "broker", "bytes_in", "bytes_out", "reason"} <= set(closed[0])
