"""Invariant 3 against a real broker: clients never learn, and never use, a broker address.

Two independent proofs: every broker address in every response the clients received (captured
at the proxy, after rewriting) is a proxy listener; and every TCP connection to the broker's
port opened during the test belongs to the proxy's upstream side (/proc/net/tcp).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from test_proxy_clients import create_topic

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.faults.decision import PASS, Decision, RequestView
from kafka_chaos_proxy.proxy.embedded import EmbeddedProxy
from kafka_chaos_proxy.proxy.real_kafka import KafkaCluster
from tests.support.records import Tally, key, value

RESP = codec.Direction.RESPONSE


class VersionRecorder:
    def __init__(self) -> None:
        self.seen: set[tuple[int, int]] = set()

    def on_request(self, request: RequestView) -> Decision:
        self.seen.add((request.api_key, request.api_version))
        return PASS


def capture_addresses(proxy: EmbeddedProxy) -> list[tuple[str, str, int]]:
    """Wrap the proxy's address-carrying response transforms to record what clients get."""
    out: list[tuple[str, str, int]] = []
    server = proxy.server
    assert server is not None

    def wrap(api_key: int) -> None:
        inner = server.response_transforms[api_key]

        def transform(version: int, frame: bytes) -> bytes | None:
            result = inner(version, frame)
            sent = frame if result is None else result
            _, hsize = codec.parse_response_header(sent[4:], api_key, version)
            body = codec.decode_body(api_key, version, RESP, sent[4 + hsize:])
            for entry in _addresses(api_key, version, body):
                out.append((codec.API_NAMES[api_key], *entry))
            return result

        server.response_transforms[api_key] = transform

    for api_key in (3, 10, 60):
        proxy.call(wrap, api_key)
    return out


def _addresses(api_key: int, version: int, body: dict[str, Any]) -> list[tuple[str, int]]:
    if api_key == 10:
        entries = body["coordinators"] if version >= 4 else [body]
        return [(e["host"], e["port"]) for e in entries if e["error_code"] == 0]
    return [(b["host"], b["port"]) for b in body["brokers"]]


def tcp_connections_to(port: int) -> set[int]:
    """Local ports of established TCP connections whose remote port is `port`."""
    found: set[int] = set()
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(path).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            local, remote, state = parts[1], parts[2], parts[3]
            if state == "01" and int(remote.rsplit(":", 1)[1], 16) == port:
                found.add(int(local.rsplit(":", 1)[1], 16))
    return found


def upstream_ports(proxy: EmbeddedProxy) -> set[int]:
    server = proxy.server
    assert server is not None

    def collect() -> set[int]:
        return {c.upstream.get_extra_info("sockname")[1]
                for c in server.connections.values() if c.upstream is not None}

    return proxy.call(collect)


async def test_no_client_ever_reaches_the_broker_directly(
        proxy_factory: Any, kafka_cluster: KafkaCluster, unique_name: str) -> None:
    recorder = VersionRecorder()
    proxy: EmbeddedProxy = proxy_factory(decider=recorder)
    captured = capture_addresses(proxy)
    broker_ports = {port for _, port in kafka_cluster.nodes.values()}
    before = {p: tcp_connections_to(p) for p in broker_ports}
    bs = proxy.bootstrap_servers
    topic = f"{unique_name}-t"
    create_topic(bs, topic)
    admin = AdminClient({"bootstrap.servers": bs})
    admin.describe_cluster().result(30)

    n = 500
    producer = AIOKafkaProducer(bootstrap_servers=bs)
    await producer.start()
    for seq in range(n):
        await producer.send(topic, value(seq), key=key(seq))
    await producer.flush()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bs, group_id=f"{unique_name}-a",
                                auto_offset_reset="earliest")
    await consumer.start()
    cproducer = Producer({"bootstrap.servers": bs})
    for seq in range(n):
        cproducer.produce(topic, value(seq), key(seq))
    cproducer.flush(30)
    cconsumer = Consumer({"bootstrap.servers": bs, "group.id": f"{unique_name}-c",
                          "auto.offset.reset": "earliest"})
    cconsumer.subscribe([topic])
    tally_a, tally_c = Tally(), Tally()
    deadline = time.monotonic() + 60
    try:
        while (tally_a.count < 2 * n or tally_c.count < 2 * n) and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                tally_a.count += len(records)
            for msg in cconsumer.consume(num_messages=1000, timeout=0.2):
                assert msg.error() is None
                tally_c.count += 1
        # While every client is connected: who holds sockets to the broker?
        proxy_side = upstream_ports(proxy)
        for port in broker_ports:
            new = tcp_connections_to(port) - before[port]
            assert new, "no connection to the broker at all?"
            assert new <= proxy_side, f"direct connections to the broker: {new - proxy_side}"
    finally:
        await consumer.stop()
        await producer.stop()
        cconsumer.close()
    assert tally_a.count == 2 * n and tally_c.count == 2 * n

    listeners = {("127.0.0.1", b["proxy_port"]) for b in proxy.list_brokers()}
    listeners.add(tuple(proxy.server.bootstrap_address))  # type: ignore[union-attr]
    assert {api for api, _, _ in captured} >= {"Metadata", "FindCoordinator"}
    for api, host, port in captured:
        assert (host, port) in listeners, f"{api} leaked {host}:{port}"
        assert (host, port) not in set(kafka_cluster.nodes.values())
    # Versions that could carry NodeEndpoints (Produce v10+, Fetch v16+) were never used.
    assert all(v <= 9 for k, v in recorder.seen if k == 0)
    assert all(v <= 15 for k, v in recorder.seen if k == 1)
    assert any(k == 0 for k, _ in recorder.seen) and any(k == 1 for k, _ in recorder.seen)
