"""Against the real broker: ApiVersions clamping, unknown api/version pass-through, malformed
input isolated to its own connection."""

from __future__ import annotations

import asyncio
import struct
import uuid

import pytest
import structlog
from aiokafka import AIOKafkaProducer

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.proxy import metrics
from kafka_chaos_proxy.proxy.config import parse_host_port
from kafka_chaos_proxy.proxy.embedded import EmbeddedProxy
from kafka_chaos_proxy.proxy.pipeline.framing import with_size
from kafka_chaos_proxy.proxy.real_kafka import KafkaCluster
from kafka_chaos_proxy.proxy.versions import DECODED_API_KEYS, VERSION_CAPS
from tests.support.wire_fakes import Client, decode_response, raw_request_frame, request_frame


async def api_versions(host: str, port: int, version: int) -> tuple[int, dict[int, tuple]]:
    client = await Client.connect(host, port)
    body = {"client_software_name": "kcp-test", "client_software_version": "1"}
    if version <= codec.supported_versions(18)[1]:
        await client.send(request_frame(18, version, 1, body))
    else:  # a version nobody knows: v3 layout, raw
        payload = codec.encode_request_header(18, 3, 1, "t") + codec.encode_body(
            18, 3, codec.Direction.REQUEST, body)
        await client.send(with_size(struct.pack(">hh", 18, version) + payload[4:]))
    frame = await client.recv()
    client.close()
    as_version = 0 if struct.unpack_from(">h", frame, 8)[0] == 35 else version
    _, decoded = decode_response(frame, 18, as_version)
    return decoded["error_code"], {e["api_key"]: (e["min_version"], e["max_version"])
                                   for e in decoded["api_keys"]}


def expected(api_key: int, lo: int, hi: int) -> tuple[int, int] | None:
    if api_key not in DECODED_API_KEYS and api_key not in VERSION_CAPS:
        return lo, hi
    cap = min(hi, VERSION_CAPS.get(api_key, hi))
    if api_key in DECODED_API_KEYS:
        cmin, cmax = codec.supported_versions(api_key)
        cap = min(cap, cmax)
        if cap < max(lo, cmin):
            return None  # no version both sides know: the API is not offered at all
    return lo, cap


@pytest.mark.parametrize("version", [0, 3, 99])
async def test_api_versions_clamped_against_the_real_broker(
        proxy_server: EmbeddedProxy, kafka_cluster: KafkaCluster, version: int) -> None:
    host, port = parse_host_port(kafka_cluster.bootstrap_servers.split(",")[0])
    direct_err, direct = await api_versions(host, port, version)
    via_err, via = await api_versions(*parse_host_port(proxy_server.bootstrap_servers), version)
    assert direct_err == via_err == (35 if version == 99 else 0)
    assert set(via) <= set(direct)
    for api_key, (lo, hi) in direct.items():
        assert via.get(api_key) == expected(api_key, lo, hi), codec.API_NAMES.get(api_key)
    if version != 99:  # an UNSUPPORTED_VERSION answer lists only ApiVersions itself
        assert via[0][1] <= 9 and via[1][1] <= 15
        assert any(direct[k] != via[k] for k in via)  # the broker offers more than we allow


async def test_unknown_api_key_is_forwarded_raw_not_a_frame_error(
        proxy_server: EmbeddedProxy) -> None:
    before = sum(s.value for m in metrics.frame_errors_total.collect() for s in m.samples
                 if s.name.endswith("_total"))
    client = await Client.connect(*parse_host_port(proxy_server.bootstrap_servers))
    await client.send(raw_request_frame(32000, 0, 7, b"\x00\x00"))
    # The broker itself refuses an api key it does not know by closing the connection;
    # the proxy forwarded it and only mirrors that close.
    assert await client.at_eof(timeout=30)
    after = sum(s.value for m in metrics.frame_errors_total.collect() for s in m.samples
                if s.name.endswith("_total"))
    assert after == before
    assert metrics.connection_closes_total.labels("upstream_closed")._value.get() >= 1


async def test_malformed_client_is_closed_alone_while_another_keeps_producing(
        proxy_server: EmbeddedProxy, unique_name: str) -> None:
    bs = proxy_server.bootstrap_servers
    producer = AIOKafkaProducer(bootstrap_servers=bs)
    await producer.start()
    reason = "frame_too_large"
    before = metrics.frame_errors_total.labels(reason)._value.get()
    try:
        await producer.send_and_wait(f"{unique_name}-t", b"before")
        with structlog.testing.capture_logs() as logs:
            bad = await Client.connect(*parse_host_port(bs))
            # A size prefix of 1.9 GiB (a TLS ClientHello is told apart: tls_on_plaintext,
            # tests/integration/secured/test_secured_bad_peers.py).
            await bad.send(b"\x7f\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64)
            assert await bad.at_eof()
            for _ in range(100):
                if any(e.get("event") == "frame_error" for e in logs):
                    break
                await asyncio.sleep(0.02)
        for seq in range(20):
            await producer.send_and_wait(f"{unique_name}-t", f"after-{seq}".encode())
    finally:
        await producer.stop()
    assert metrics.frame_errors_total.labels(reason)._value.get() == before + 1
    errors = [e for e in logs if e.get("event") == "frame_error"]
    assert errors and errors[0]["reason"] == reason and errors[0]["peer"].startswith("127.0.0.1")


@pytest.mark.parametrize("version", [1, 8, 12])
async def test_real_metadata_differs_only_in_broker_addresses(
        proxy_server: EmbeddedProxy, kafka_cluster: KafkaCluster, unique_name: str,
        version: int) -> None:
    from test_proxy_clients import create_topic

    topic = f"{unique_name}-t"
    create_topic(proxy_server.bootstrap_servers, topic)
    body = {"topics": [{"name": topic, "topic_id": uuid.UUID(int=0)}],
            "allow_auto_topic_creation": False,
            "include_topic_authorized_operations": False}
    direct_addr = parse_host_port(kafka_cluster.bootstrap_servers.split(",")[0])
    proxy_addr = parse_host_port(proxy_server.bootstrap_servers)
    hsize = 5 if version >= 9 else 4

    async def fetch(addr: tuple[str, int]) -> tuple[bytes, bytes]:
        client = await Client.connect(*addr)
        await client.send(request_frame(3, version, 5, body))
        frame = await client.recv()
        client.close()
        _, off = codec.decode_body_prefix(3, version, codec.Direction.RESPONSE,
                                          frame[4 + hsize:], upto="brokers")
        return frame, frame[4 + hsize + off:]

    # Right after creation, leaders and ISRs may still move between two calls: compare the
    # proxied answer with direct answers taken just before and just after it.
    for _ in range(20):
        direct, before = await fetch(direct_addr)
        via, rest = await fetch(proxy_addr)
        _, after = await fetch(direct_addr)
        if rest in (before, after):
            break
        await asyncio.sleep(0.2)
    assert rest in (before, after)  # topics, partitions, cluster id...: the very same bytes
    _, d = decode_response(direct, 3, version)
    _, v = decode_response(via, 3, version)
    assert [b["node_id"] for b in d["brokers"]] == [b["node_id"] for b in v["brokers"]]
    assert {(b["host"], b["port"]) for b in v["brokers"]}.isdisjoint(
        {(b["host"], b["port"]) for b in d["brokers"]})


def test_brokers_have_listeners_from_start_up(proxy_server: EmbeddedProxy,
                                              kafka_cluster: KafkaCluster) -> None:
    brokers = proxy_server.list_brokers()
    assert {b["node_id"] for b in brokers} == set(kafka_cluster.nodes)
    assert all(b["proxy_port"] for b in brokers)
