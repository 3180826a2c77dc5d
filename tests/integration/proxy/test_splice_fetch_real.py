"""Against the real broker: large Fetch responses through the spliced consume path.

A partition holds twelve ~900 KB records (about 10.8 MB); a Fetch for all of them is answered
in one response, which the proxy streams cut-through and splices (upstream socket -> pipe ->
client socket). Checked: the client gets the broker's very bytes (the same Fetch sent directly
is the reference) and a real consumer the produced records; responses queued behind it come
after it, in order; a slow client holds the broker back while the proxy holds about one pipe,
not the response; a client gone mid-response costs its own connection only; and where splice
is refused the transports carry the same bytes. That the splice ran is read from the proxy
(`splice.TO_CLIENT.moved`, the connection's `response_splicer`), not inferred from the bytes.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from kafka_chaos_proxy.proxy import metrics
from kafka_chaos_proxy.proxy.config import parse_host_port
from kafka_chaos_proxy.proxy.embedded import EmbeddedProxy
from kafka_chaos_proxy.proxy.pipeline import splice
from kafka_chaos_proxy.proxy.pipeline.connection import Connection
from kafka_chaos_proxy.proxy.pipeline.cut_through import CUT_THROUGH_BYTES
from kafka_chaos_proxy.proxy.real_kafka import KafkaCluster
from tests.support.splicing import (
    complete_frames,
    correlation_ids,
    held,
    refuse_splice,
    reset_on_close,
    shrink_sockets,
    slow_client,
    until,
)
from tests.support.wire_fakes import Client, decode_response, request_frame

pytestmark = pytest.mark.skipif(not splice.AVAILABLE, reason="no splice(2) on this platform")

FETCH, FETCH_V = 1, 12  # v12: topics by name; a sessionless fetch answers the same bytes twice
API_VERSIONS, AV_V = 18, 3
RECORDS, RECORD_BYTES = 12, 900_000
WAIT_S = 60.0  # a bound on every wait (the broker shares a loaded machine)


@dataclass
class LargeTopic:
    name: str
    values: list[bytes]


@pytest.fixture(scope="module")
def large_topic(kafka_cluster: KafkaCluster) -> Iterator[LargeTopic]:
    """One partition of twelve ~900 KB random (incompressible) records, produced directly."""
    bootstrap = kafka_cluster.bootstrap_servers
    name = f"splice-fetch-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, 1, 1, config={"max.message.bytes": "2097152"})])[
        name].result(30)
    values = [os.urandom(RECORD_BYTES) for _ in range(RECORDS)]
    producer = Producer({"bootstrap.servers": bootstrap, "message.max.bytes": 2097152,
                         "linger.ms": 0, "acks": "all"})
    failures: list[str] = []
    for i, v in enumerate(values):
        producer.produce(name, v, f"k{i}".encode(), partition=0,
                         on_delivery=lambda err, _m: failures.append(str(err)) if err else None)
        producer.poll(0)
    assert producer.flush(60) == 0 and failures == []
    yield LargeTopic(name, values)
    admin.delete_topics([name])


def fetch(corr: int, topic: str, offset: int = 0) -> bytes:
    body = {"replica_id": -1, "max_wait_ms": 0, "min_bytes": 1, "max_bytes": 64 << 20,
            "isolation_level": 0, "session_id": 0, "session_epoch": -1,
            "topics": [{"topic": topic, "partitions": [{
                "partition": 0, "current_leader_epoch": -1, "fetch_offset": offset,
                "last_fetched_epoch": -1, "log_start_offset": -1,
                "partition_max_bytes": 64 << 20}]}],
            "forgotten_topics_data": [], "rack_id": ""}
    return request_frame(FETCH, FETCH_V, corr, body)


def api_versions(corr: int) -> bytes:
    return request_frame(API_VERSIONS, AV_V, corr, {"client_software_name": "kcp-test",
                                                    "client_software_version": "1"})


def records_bytes(frame: bytes) -> int:
    _, body = decode_response(frame, FETCH, FETCH_V)
    assert body["error_code"] == 0
    (partition,) = body["responses"][0]["partitions"]
    assert partition["error_code"] == 0
    return len(partition["records"] or b"")


async def direct_fetch(kafka_cluster: KafkaCluster, topic: str, corr: int) -> bytes:
    client = await Client.connect(*parse_host_port(kafka_cluster.bootstrap_servers.split(",")[0]))
    await client.send(fetch(corr, topic))
    frame = await client.recv(timeout=WAIT_S)
    client.close()
    assert records_bytes(frame) > (RECORDS - 1) * RECORD_BYTES  # all of it, in one response
    return frame


async def _slow_client(proxy: EmbeddedProxy) -> tuple[Client, Connection]:
    """A client that reads only when told, with the proxy's sockets of its connection small:
    a response of ~10 MB cannot all be in flight in the kernel."""
    client, port = await slow_client(parse_host_port(proxy.bootstrap_servers))
    await client.send(api_versions(0))  # the upstream connection is made
    await client.recv(timeout=WAIT_S)
    conn = _conn(proxy, port)
    proxy.call(shrink_sockets, conn)
    return client, conn


def _conn(proxy: EmbeddedProxy, port: int) -> Connection:
    def find() -> Connection:
        assert proxy.server is not None
        (conn,) = [c for c in proxy.server.connections.values() if c.client_port == port]
        return conn
    return proxy.call(find)


@dataclass
class Seen:
    """One look at a connection's response side, taken on the proxy's loop."""

    held: int  # bytes of responses in the client transport, the upstream reader and the pipe
    waiting: bool  # the splice waits for the client socket
    left: int  # bytes of the spliced response not yet taken from the broker
    spliced: bool  # a response splice is under way
    upstream_reading: bool
    pipe_bytes: int


def look(proxy: EmbeddedProxy, conn: Connection) -> Seen:
    def at_loop() -> Seen:
        assert conn.upstream is not None
        s = conn.response_splicer
        if s is None:
            return Seen(held(conn), False, 0, False, conn.upstream.is_reading(), 0)
        return Seen(held(conn), s.waiting_for_dest, s.left, s.active,
                    conn.upstream.is_reading(), s.pipe_bytes)
    return proxy.call(at_loop)


async def test_large_fetches_spliced_are_the_brokers_bytes_in_request_order(
        proxy_server: EmbeddedProxy, kafka_cluster: KafkaCluster,
        large_topic: LargeTopic) -> None:
    """Two large Fetch answers with small ones between and after, asked for in one write."""
    topic = large_topic.name
    direct = {c: await direct_fetch(kafka_cluster, topic, c) for c in (1, 4)}
    moved = splice.TO_CLIENT.moved
    client = await Client.connect(*parse_host_port(proxy_server.bootstrap_servers))
    sent = [fetch(1, topic), api_versions(2), fetch(3, topic, offset=RECORDS), fetch(4, topic),
            api_versions(5)]
    await client.send(b"".join(sent))
    got = [await client.recv(timeout=WAIT_S) for _ in sent]
    assert correlation_ids(got) == [1, 2, 3, 4, 5]
    assert got[0] == direct[1] and got[3] == direct[4]  # byte for byte what the broker sends
    assert records_bytes(got[2]) == 0
    conn = _conn(proxy_server, client.writer.get_extra_info("sockname")[1])
    splicer = conn.response_splicer
    assert splicer is not None  # the spliced path was taken ...
    big = len(direct[1]) + len(direct[4])
    assert splicer.moved >= big - 2 * CUT_THROUGH_BYTES  # ... for all but a head of each
    assert splice.TO_CLIENT.moved - moved >= splicer.moved
    client.close()


def test_a_real_consumer_gets_the_large_records_through_the_splice(
        proxy_server: EmbeddedProxy, large_topic: LargeTopic) -> None:
    """librdkafka (one connection per broker, Fetch with topic ids) consumes them all."""
    moved = splice.TO_CLIENT.moved
    consumer = Consumer({"bootstrap.servers": proxy_server.bootstrap_servers,
                         "group.id": f"splice-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False,
                         "max.partition.fetch.bytes": 16 << 20, "fetch.max.bytes": 32 << 20})
    consumer.assign([TopicPartition(large_topic.name, 0, 0)])
    got: list[tuple[bytes | None, bytes | None]] = []
    deadline = time.monotonic() + WAIT_S
    try:
        while len(got) < RECORDS and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=RECORDS, timeout=1.0):
                assert msg.error() is None, msg.error()
                got.append((msg.key(), msg.value()))
    finally:
        consumer.close()
    assert got == [(f"k{i}".encode(), v) for i, v in enumerate(large_topic.values)]
    assert splice.TO_CLIENT.moved - moved > RECORDS * RECORD_BYTES // 2


async def test_a_slow_client_holds_the_broker_back_while_the_proxy_holds_one_pipe(
        proxy_factory: Callable[..., EmbeddedProxy], kafka_cluster: KafkaCluster,
        large_topic: LargeTopic) -> None:
    """A ~10 MB Fetch answer read slowly, three answers queued behind it: the proxy's
    buffers stay about one pipe (never the response's size), the rest waits at the broker,
    and everything arrives whole and in order."""
    topic = large_topic.name
    direct = await direct_fetch(kafka_cluster, topic, 1)
    proxy = proxy_factory(high_water=64 * 1024)
    client, conn = await _slow_client(proxy)
    sent = [fetch(1, topic), api_versions(2), fetch(3, topic, offset=RECORDS), api_versions(4)]
    await client.send(b"".join(sent))
    await until(lambda: (seen := look(proxy, conn)).waiting and seen.left > 0, WAIT_S)
    seen = look(proxy, conn)
    bound = CUT_THROUGH_BYTES + seen.pipe_bytes + 64 * 1024
    most = seen.held
    data = bytearray()
    while len(got := complete_frames(bytes(data))) < len(sent):
        chunk = await asyncio.wait_for(client.reader.read(65536), WAIT_S)
        assert chunk
        data += chunk
        seen = look(proxy, conn)
        most = max(most, seen.held)
        assert not (seen.spliced and seen.upstream_reading)  # one reader of that socket
    assert most <= bound < len(direct) // 4
    assert got[0] == direct and correlation_ids(got) == [1, 2, 3, 4]
    assert conn.response_splicer is not None
    assert conn.response_splicer.moved >= len(direct) - CUT_THROUGH_BYTES
    client.close()


async def test_a_client_gone_mid_splice_closes_its_connection_alone(
        proxy_factory: Callable[..., EmbeddedProxy], kafka_cluster: KafkaCluster,
        large_topic: LargeTopic) -> None:
    topic = large_topic.name
    direct = await direct_fetch(kafka_cluster, topic, 7)
    proxy = proxy_factory()
    client, conn = await _slow_client(proxy)
    before = metrics.connection_closes_total.labels("client_closed")._value.get()
    await client.send(fetch(1, topic))
    await until(lambda: look(proxy, conn).waiting, WAIT_S)
    splicer = conn.response_splicer
    assert splicer is not None
    reset_on_close(client)  # gone mid-response
    await until(lambda: conn.closed, WAIT_S)
    assert conn.close_reason == "client_closed" and conn.response_splicer is None
    assert splicer.closed  # its pipe and duplicated descriptors are released
    assert metrics.connection_closes_total.labels("client_closed")._value.get() == before + 1
    other = await Client.connect(*parse_host_port(proxy.bootstrap_servers))  # serving on
    await other.send(fetch(7, topic) + api_versions(8))
    assert await other.recv(timeout=WAIT_S) == direct
    assert correlation_ids([await other.recv(timeout=WAIT_S)]) == [8]
    other.close()


@pytest.mark.parametrize("how", ["refused", "unsupported"])
async def test_where_splice_is_refused_the_transports_carry_the_same_bytes(
        proxy_server: EmbeddedProxy, kafka_cluster: KafkaCluster, large_topic: LargeTopic,
        monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    if how == "refused":
        refuse_splice(monkeypatch)
    else:
        monkeypatch.setattr(splice, "_refused", True)
    topic = large_topic.name
    direct = await direct_fetch(kafka_cluster, topic, 1)
    moved = splice.TO_CLIENT.moved
    client = await Client.connect(*parse_host_port(proxy_server.bootstrap_servers))
    await client.send(fetch(1, topic) + api_versions(2))
    assert await client.recv(timeout=WAIT_S) == direct
    assert correlation_ids([await client.recv(timeout=WAIT_S)]) == [2]
    conn = _conn(proxy_server, client.writer.get_extra_info("sockname")[1])
    assert conn.response_splicer is None and splice.TO_CLIENT.moved == moved
    assert not splice.splice_supported()
    client.close()
