"""The connection pipeline against a loopback upstream: pass-through, order, every fault
action with a fixed decider, malformed input, SASL v0 framing, correlation checks."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator

import pytest

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.faults.decision import ActionKind, CloseMode, CloseWhen, Decision, Side
from kafka_chaos_proxy.proxy import metrics
from kafka_chaos_proxy.proxy.config import ProxyConfig
from kafka_chaos_proxy.proxy.pipeline.framing import with_size
from kafka_chaos_proxy.proxy.server import ProxyServer
from tests.support.wire_fakes import (
    Client,
    Collect,
    FakeCluster,
    FixedDecider,
    decode_response,
    raw_request_frame,
    request_frame,
    response_frame,
    start_proxy,
)

HEARTBEAT = 12
HB_V = 4
HB_BODY = {"group_id": "g", "generation_id": 1, "member_id": "m"}


@pytest.fixture
async def upstream() -> AsyncIterator[FakeCluster]:
    fake = await FakeCluster().start()
    yield fake
    await fake.stop()


async def _proxy_and_client(upstream: FakeCluster, decider: object = None,
                            observers: object = (), **config: object
                            ) -> tuple[ProxyServer, Client]:
    server = await start_proxy(upstream, decider, observers, **config)
    host, port = server.bootstrap_address
    return server, await Client.connect(host, port)


def hb(corr: int) -> bytes:
    return request_frame(HEARTBEAT, HB_V, corr, HB_BODY)


def metric(counter: object, *labels: str) -> float:
    return float(counter.labels(*labels)._value.get())  # type: ignore[attr-defined]


async def test_pass_through_is_byte_exact_both_ways(upstream: FakeCluster) -> None:
    server, client = await _proxy_and_client(upstream)
    frames = [hb(i) for i in range(5)]
    for f in frames:
        await client.send(f)
    got = [await client.recv() for _ in frames]
    assert [r.frame for r in upstream.received] == frames
    assert got == upstream.sent
    client.close()
    await server.stop()


async def test_unknown_api_key_passes_through_raw(upstream: FakeCluster) -> None:
    server, client = await _proxy_and_client(upstream)
    frame = raw_request_frame(999, 3, 4242, b"\x01\x02\x03")
    await client.send(frame)
    got = await client.recv()
    assert upstream.received[0].frame == frame
    assert got == with_size(struct.pack(">i", 4242) + b"raw-answer")
    client.close()
    await server.stop()


async def test_response_delay_holds_later_responses_in_order(upstream: FakeCluster) -> None:
    decider = FixedDecider(Decision(ActionKind.DELAY, "r", side=Side.RESPONSE, delay_s=0.3))
    server, client = await _proxy_and_client(upstream, decider)
    await client.send(hb(1))
    await client.send(hb(2))
    first, second = await client.recv(), await client.recv()
    assert decode_response(first, HEARTBEAT, HB_V)[0] == 1
    assert decode_response(second, HEARTBEAT, HB_V)[0] == 2
    assert decider.applied == 1
    client.close()
    await server.stop()


async def test_request_delay_keeps_forwarding_order(upstream: FakeCluster) -> None:
    decider = FixedDecider(Decision(ActionKind.DELAY, "r", side=Side.REQUEST, delay_s=0.3))
    server, client = await _proxy_and_client(upstream, decider)
    await client.send(hb(1))
    await client.send(hb(2))
    got = [decode_response(await client.recv(), HEARTBEAT, HB_V)[0] for _ in range(2)]
    assert got == [1, 2]
    assert [r.correlation_id for r in upstream.received] == [1, 2]
    client.close()
    await server.stop()


async def test_error_short_circuits_with_a_synthesized_response(upstream: FakeCluster) -> None:
    decider = FixedDecider(Decision(ActionKind.ERROR, "r", error_code=27), HEARTBEAT)
    collect = Collect()
    server, client = await _proxy_and_client(upstream, decider, [collect])
    await client.send(hb(7))
    corr, body = decode_response(await client.recv(), HEARTBEAT, HB_V)
    assert (corr, body["error_code"]) == (7, 27)
    assert upstream.received == []
    assert decider.applied == 1
    assert collect.exchanges[0].outcome == "error_injected"
    assert collect.exchanges[0].request_body["group_id"] == "g"
    client.close()
    await server.stop()


async def test_error_after_forward_reaches_broker_but_client_sees_error(
        upstream: FakeCluster) -> None:
    decider = FixedDecider(Decision(ActionKind.ERROR_AFTER_FORWARD, "r", error_code=25))
    server, client = await _proxy_and_client(upstream, decider)
    await client.send(hb(3))
    corr, body = decode_response(await client.recv(), HEARTBEAT, HB_V)
    assert (corr, body["error_code"]) == (3, 25)
    assert len(upstream.received) == 1
    client.close()
    await server.stop()


async def test_drop_request_stalls_then_closes(upstream: FakeCluster) -> None:
    decider = FixedDecider(Decision(ActionKind.DROP_REQUEST, "r", close_after_s=0.5))
    collect = Collect()
    server, client = await _proxy_and_client(upstream, decider, [collect])
    await client.send(hb(1))
    await client.send(hb(2))  # forwarded and answered, but held behind the dropped slot
    assert await client.at_eof()
    assert [r.correlation_id for r in upstream.received] == [2]
    assert decider.applied == 1
    assert [e.outcome for e in collect.exchanges] == ["dropped", "closed"]
    await server.stop()


async def test_drop_response_holds_later_responses(upstream: FakeCluster) -> None:
    decider = FixedDecider(Decision(ActionKind.DROP_RESPONSE, "r"))
    server, client = await _proxy_and_client(upstream, decider)
    await client.send(hb(1))
    await client.send(hb(2))
    assert await client.nothing_within(0.3)
    assert [r.correlation_id for r in upstream.received] == [1, 2]
    conns = server.list_connections()
    assert conns[0]["pending_responses"] == 2
    client.close()
    await server.stop()


@pytest.mark.parametrize("mode", [CloseMode.GRACEFUL, CloseMode.RESET])
async def test_close_before_never_forwards(upstream: FakeCluster, mode: CloseMode) -> None:
    decider = FixedDecider(Decision(ActionKind.CLOSE, "r", close_when=CloseWhen.BEFORE,
                                    close_mode=mode))
    server, client = await _proxy_and_client(upstream, decider)
    await client.send(hb(1))
    if mode is CloseMode.RESET:
        with pytest.raises(ConnectionResetError):
            await client.at_eof()
    else:
        assert await client.at_eof()
    assert upstream.received == []
    assert decider.applied == 1
    await server.stop()


async def test_close_after_forwards_and_discards_the_response(upstream: FakeCluster) -> None:
    decider = FixedDecider(Decision(ActionKind.CLOSE, "r", close_when=CloseWhen.AFTER))
    server, client = await _proxy_and_client(upstream, decider)
    await client.send(hb(1))
    assert await client.at_eof()
    assert len(upstream.received) == 1
    await server.stop()


async def test_throttle_caps_the_connection_and_still_delivers(upstream: FakeCluster) -> None:
    decider = FixedDecider(Decision(ActionKind.THROTTLE, "r", throttle_bytes_per_s=2000))
    server, client = await _proxy_and_client(upstream, decider)
    for i in range(3):
        await client.send(hb(i))
    got = [decode_response(await client.recv(), HEARTBEAT, HB_V)[0] for _ in range(3)]
    assert got == [0, 1, 2]
    assert server.list_connections()[0]["throttle_bytes_per_s"] == 2000
    client.close()
    await server.stop()


async def test_observers_get_decoded_exchanges_and_failures_are_swallowed(
        upstream: FakeCluster) -> None:
    class Boom:
        def observe(self, exchange: object) -> None:
            raise RuntimeError("observer bug")

    collect = Collect()
    server, client = await _proxy_and_client(upstream, None, [Boom(), collect])
    await client.send(hb(1))
    await client.send(raw_request_frame(999, 0, 2))
    await client.recv()
    await client.recv()
    assert len(collect.exchanges) == 1  # only coordination APIs are observed
    ex = collect.exchanges[0]
    assert (ex.api_key, ex.correlation_id, ex.outcome) == (HEARTBEAT, 1, "ok")
    assert ex.response_body == {"throttle_time_ms": 0, "error_code": 0}
    client.close()
    await server.stop()


async def test_produce_acks0_gets_no_slot(upstream: FakeCluster) -> None:
    upstream.responders[0] = lambda k, v, c, f: None  # a broker never answers acks=0
    server, client = await _proxy_and_client(upstream)
    produce = request_frame(0, 9, 1, {"acks": 0, "timeout_ms": 100, "topic_data": []})
    await client.send(produce)
    await client.send(hb(2))
    corr, _ = decode_response(await client.recv(), HEARTBEAT, HB_V)
    assert corr == 2
    client.close()
    await server.stop()


@pytest.mark.parametrize(("payload", "reason"), [
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "frame_too_large"),
    (struct.pack(">i", -5) + b"xxxx", "negative_length"),
    (with_size(b"\x00\x01"), "short_header"),
])
async def test_malformed_input_closes_only_that_connection(
        upstream: FakeCluster, payload: bytes, reason: str) -> None:
    server, good = await _proxy_and_client(upstream, max_frame_bytes=1 << 20)
    bad = await Client.connect(*server.bootstrap_address)
    before = metric(metrics.frame_errors_total, reason)
    await bad.send(payload)
    assert await bad.at_eof()
    assert metric(metrics.frame_errors_total, reason) == before + 1
    await good.send(hb(1))
    assert decode_response(await good.recv(), HEARTBEAT, HB_V)[0] == 1
    good.close()
    await server.stop()


async def test_truncated_frame_then_eof_is_a_frame_error(upstream: FakeCluster) -> None:
    server, client = await _proxy_and_client(upstream)
    before = metric(metrics.frame_errors_total, "truncated_frame")
    await client.send(hb(1)[:-3])
    client.writer.write_eof()
    assert await client.at_eof()
    for _ in range(100):
        if metric(metrics.frame_errors_total, "truncated_frame") > before:
            break
        await asyncio.sleep(0.01)
    assert metric(metrics.frame_errors_total, "truncated_frame") == before + 1
    await server.stop()


async def test_correlation_mismatch_closes_the_pair(upstream: FakeCluster) -> None:
    upstream.responders[HEARTBEAT] = lambda k, v, c, f: response_frame(k, v, c + 1)
    server, client = await _proxy_and_client(upstream)
    before = metric(metrics.connection_closes_total, "correlation_mismatch")
    await client.send(hb(1))
    assert await client.at_eof()
    assert metric(metrics.connection_closes_total, "correlation_mismatch") == before + 1
    await server.stop()


async def test_upstream_connect_failure_closes_client_and_proxy_keeps_serving(
        upstream: FakeCluster) -> None:
    dead = FakeCluster()
    dead.port = upstream.port
    await upstream.stop()  # nothing listens there any more
    server, client = await _proxy_and_client(dead)
    assert await client.at_eof()
    assert server.list_connections() == []
    fresh = await FakeCluster().start()
    server.config.bootstrap_servers[:] = [(fresh.host, fresh.port)]
    again = await Client.connect(*server.bootstrap_address)
    await again.send(hb(5))
    assert decode_response(await again.recv(), HEARTBEAT, HB_V)[0] == 5
    again.close()
    await server.stop()
    await fresh.stop()


async def test_sasl_handshake_v0_raw_tokens_pass_through(upstream: FakeCluster) -> None:
    server, client = await _proxy_and_client(upstream)
    await client.send(request_frame(17, 0, 1, {"mechanism": "PLAIN"}))
    corr, body = decode_response(await client.recv(), 17, 0)
    assert (corr, body["error_code"]) == (1, 0)
    token = with_size(b"\x00alice\x00secret")
    await client.send(token)
    assert await client.recv() == with_size(b"ok:" + b"\x00alice\x00secret")
    assert upstream.received[-1].frame == token
    await client.send(hb(2))  # back to Kafka framing
    assert decode_response(await client.recv(), HEARTBEAT, HB_V)[0] == 2
    client.close()
    await server.stop()


async def test_metadata_brokers_get_listeners_before_the_client_sees_them(
        upstream: FakeCluster) -> None:
    def metadata(k: int, v: int, c: int, f: bytes) -> bytes:
        return response_frame(k, v, c, {"brokers": [
            {"node_id": 7, "host": upstream.host, "port": upstream.port, "rack": None}],
            "cluster_id": "c", "controller_id": 7, "topics": []})

    upstream.responders[3] = metadata
    server, client = await _proxy_and_client(upstream)
    await client.send(request_frame(3, 12, 1, {"topics": None}))
    _, body = decode_response(await client.recv(), 3, 12)
    broker = body["brokers"][0]
    assert broker["host"] == "127.0.0.1" and broker["port"] != upstream.port
    node_client = await Client.connect(broker["host"], broker["port"])
    await node_client.send(hb(9))
    assert decode_response(await node_client.recv(), HEARTBEAT, HB_V)[0] == 9
    assert [b["node_id"] for b in server.list_brokers()] == [7]
    node_client.close()
    client.close()
    await server.stop()


async def test_api_versions_clamped_through_the_pipeline(upstream: FakeCluster) -> None:
    upstream.responders[18] = lambda k, v, c, f: response_frame(k, v, c, {"api_keys": [
        {"api_key": 0, "min_version": 0, "max_version": 11},
        {"api_key": 3, "min_version": 0, "max_version": 99}]})
    server, client = await _proxy_and_client(upstream)
    await client.send(request_frame(18, 3, 1, {"client_software_name": "t",
                                               "client_software_version": "1"}))
    _, body = decode_response(await client.recv(), 18, 3)
    got = {e["api_key"]: e["max_version"] for e in body["api_keys"]}
    assert got == {0: 9, 3: codec.supported_versions(3)[1]}
    client.close()
    await server.stop()


async def test_max_inflight_pauses_reading_instead_of_buffering(upstream: FakeCluster) -> None:
    decider = FixedDecider(Decision(ActionKind.DROP_RESPONSE, "r"))
    server, client = await _proxy_and_client(upstream, decider, max_inflight=3)
    for i in range(10):
        await client.send(hb(i))
    for _ in range(100):
        if server.list_connections()[0]["paused"]:
            break
        await asyncio.sleep(0.01)
    conn = server.list_connections()[0]
    assert conn["paused"] == ["inflight"]
    assert conn["pending_responses"] == 3
    client.close()
    await server.stop()


async def test_broker_going_away_closes_its_clients_cleanly(upstream: FakeCluster) -> None:
    server, client = await _proxy_and_client(upstream)
    other = await Client.connect(*server.bootstrap_address)
    await client.send(hb(1))
    await other.send(hb(1))
    await client.recv()
    await other.recv()
    before = metric(metrics.connection_closes_total, "upstream_closed")
    broker_side = upstream.connections[0]
    assert broker_side.transport is not None
    broker_side.transport.close()  # the broker restarts under one connection
    assert await client.at_eof()
    assert metric(metrics.connection_closes_total, "upstream_closed") == before + 1
    await other.send(hb(2))  # the other pair is untouched
    assert decode_response(await other.recv(), HEARTBEAT, HB_V)[0] == 2
    other.close()
    await server.stop()


async def test_shutdown_drains_owed_responses_then_closes(upstream: FakeCluster) -> None:
    decider = FixedDecider(Decision(ActionKind.DELAY, "r", side=Side.RESPONSE, delay_s=0.2))
    server, client = await _proxy_and_client(upstream, decider)
    await client.send(hb(1))
    for _ in range(200):
        if upstream.received:
            break
        await asyncio.sleep(0.01)
    stopping = asyncio.ensure_future(server.stop(drain_timeout_s=5.0))
    assert decode_response(await client.recv(), HEARTBEAT, HB_V)[0] == 1
    assert await client.at_eof()
    await stopping
    with pytest.raises(OSError):
        await Client.connect(*server.bootstrap_address)


def _big_answer(size: int) -> object:
    def answer(k: int, v: int, c: int, f: bytes) -> bytes:
        return with_size(struct.pack(">i", c) + bytes(range(256)) * (size // 256))
    return answer


async def test_large_pass_through_response_is_streamed_byte_exact(upstream: FakeCluster) -> None:
    upstream.responders[998] = _big_answer(3 * 1024 * 1024)  # type: ignore[assignment]
    server, client = await _proxy_and_client(upstream)
    await client.send(raw_request_frame(998, 0, 1))
    await client.send(hb(2))
    await client.send(raw_request_frame(998, 0, 3))
    first, second, third = [await client.recv() for _ in range(3)]
    assert first == upstream.sent[0] and third == upstream.sent[2]
    assert decode_response(second, HEARTBEAT, HB_V)[0] == 2
    client.close()
    await server.stop()


async def test_large_response_behind_a_held_slot_waits_its_turn(upstream: FakeCluster) -> None:
    upstream.responders[998] = _big_answer(1024 * 1024)  # type: ignore[assignment]
    decider = FixedDecider(Decision(ActionKind.DELAY, "r", side=Side.RESPONSE, delay_s=0.3),
                           HEARTBEAT)
    server, client = await _proxy_and_client(upstream, decider)
    await client.send(hb(1))
    await client.send(raw_request_frame(998, 0, 2))
    assert decode_response(await client.recv(), HEARTBEAT, HB_V)[0] == 1
    assert await client.recv() == upstream.sent[1]
    client.close()
    await server.stop()


def _big_request(corr: int, size: int) -> bytes:
    """An InitProducerId request with a large tail: never decoded on the cut-through path."""
    frame = request_frame(22, 4, corr, {"transactional_id": None,
                                        "transaction_timeout_ms": 1})
    payload = frame[4:] + bytes(range(256)) * (size // 256)
    return with_size(payload)


async def test_large_request_is_streamed_upstream_byte_exact(upstream: FakeCluster) -> None:
    server, client = await _proxy_and_client(upstream)
    await client.send(hb(0))  # upstream connected before the big one starts
    await client.recv()
    big = _big_request(1, 2 * 1024 * 1024)
    client.writer.write(big[:300_000])
    await client.writer.drain()
    await asyncio.sleep(0.05)  # the rest arrives later: the head is already on its way
    conn = next(iter(server.connections.values()))
    assert 0 < conn.req_stream_left < len(big)
    await client.send(big[300_000:])
    await client.send(hb(2))
    corr1, _ = decode_response(await client.recv(), 22, 4)
    corr2, _ = decode_response(await client.recv(), HEARTBEAT, HB_V)
    assert (corr1, corr2) == (1, 2)
    assert upstream.received[1].frame == big
    client.close()
    await server.stop()


async def test_large_request_with_a_fault_waits_for_the_whole_frame(
        upstream: FakeCluster) -> None:
    decider = FixedDecider(Decision(ActionKind.ERROR, "r", error_code=7), api_key=22)
    server, client = await _proxy_and_client(upstream, decider)
    await client.send(hb(0))  # upstream connected before the big one starts
    await client.recv()
    big = _big_request(1, 2 * 1024 * 1024)
    client.writer.write(big[:300_000])
    await client.writer.drain()
    await asyncio.sleep(0.05)
    conn = next(iter(server.connections.values()))
    assert conn.req_stream_left == 0 and conn._predecided is not None
    await client.send(big[300_000:])
    corr, body = decode_response(await client.recv(), 22, 4)
    assert (corr, body["error_code"]) == (1, 7)
    assert [r.api_key for r in upstream.received] == [HEARTBEAT]
    assert len(decider.views) == 2 and decider.applied == 1
    client.close()
    await server.stop()


async def test_slow_client_pauses_reading_from_the_broker(upstream: FakeCluster) -> None:
    upstream.responders[998] = _big_answer(1024 * 1024)  # type: ignore[assignment]
    server, client = await _proxy_and_client(upstream, high_water=64 * 1024)
    for corr in range(40):  # 40 MiB of answers to a client that reads nothing
        client.writer.write(raw_request_frame(998, 0, corr))
    await client.writer.drain()
    conn = next(iter(server.connections.values()))
    for _ in range(300):
        if conn.upstream is not None and not conn.upstream.is_reading():
            break
        await asyncio.sleep(0.01)
    assert conn.upstream is not None and not conn.upstream.is_reading()
    got = [await client.recv(timeout=30) for _ in range(40)]  # reading resumes, order intact
    assert got == upstream.sent
    client.close()
    await server.stop()


async def test_truncated_produce_body_is_a_frame_error(upstream: FakeCluster) -> None:
    server, client = await _proxy_and_client(upstream)
    header = codec.encode_request_header(0, 7, 1, "c")
    await client.send(with_size(header + b"\x00"))  # no room for transactional_id/acks
    assert await client.at_eof()
    other = await Client.connect(*server.bootstrap_address)
    await other.send(hb(1))
    assert decode_response(await other.recv(), HEARTBEAT, HB_V)[0] == 1
    other.close()
    await server.stop()


async def test_a_failing_decider_never_breaks_the_connection(upstream: FakeCluster) -> None:
    class Broken:
        def on_request(self, request: object) -> Decision:
            raise RuntimeError("engine bug")

    server, client = await _proxy_and_client(upstream, Broken())
    await client.send(hb(1))
    assert decode_response(await client.recv(), HEARTBEAT, HB_V)[0] == 1
    client.close()
    await server.stop()


async def test_random_client_bytes_never_take_the_proxy_down(upstream: FakeCluster) -> None:
    import random

    rng = random.Random(1234)
    server = await start_proxy(upstream, max_frame_bytes=1 << 16)
    addr = server.bootstrap_address
    for _ in range(40):
        junk = await Client.connect(*addr)
        size = rng.randrange(0, 200)
        body = bytes(rng.randrange(256) for _ in range(size))
        if rng.random() < 0.5:  # a plausible length prefix around garbage
            body = with_size(body)
        junk.writer.write(body)
        junk.writer.write_eof()
        with contextlib.suppress(Exception):
            await junk.at_eof(timeout=5)
        junk.close()
    ok = await Client.connect(*addr)
    await ok.send(hb(1))
    assert decode_response(await ok.recv(), HEARTBEAT, HB_V)[0] == 1
    ok.close()
    await server.stop()


async def test_api_versions_newer_than_the_codec_is_answered_unsupported(
        upstream: FakeCluster) -> None:
    server, client = await _proxy_and_client(upstream)
    await client.send(raw_request_frame(18, 99, 5))
    corr, body = decode_response(await client.recv(), 18, 0)
    assert (corr, body["error_code"]) == (5, 35)
    assert body["api_keys"] == [{"api_key": 18, "min_version": 0,
                                 "max_version": codec.supported_versions(18)[1]}]
    assert upstream.received == []
    client.close()
    await server.stop()


async def test_throttle_trickles_even_one_large_response(upstream: FakeCluster) -> None:
    upstream.responders[998] = _big_answer(1024 * 1024)  # type: ignore[assignment]
    decider = FixedDecider(Decision(ActionKind.THROTTLE, "r", throttle_bytes_per_s=2_000_000))
    server, client = await _proxy_and_client(upstream, decider)
    await client.send(raw_request_frame(998, 0, 1))
    first = await asyncio.wait_for(client.reader.readexactly(150_000), 10)
    conn = next(iter(server.connections.values()))
    assert conn.trickle is not None and len(conn.trickle) > 0  # the rest is still held back
    rest = await asyncio.wait_for(client.reader.readexactly(len(upstream.sent[0]) - 150_000), 10)
    assert first + rest == upstream.sent[0]
    client.close()
    await server.stop()


async def test_start_up_discovery_binds_listeners_in_node_id_order(upstream: FakeCluster) -> None:
    upstream.responders[18] = lambda k, v, c, f: response_frame(k, v, c, {"api_keys": [
        {"api_key": 3, "min_version": 0, "max_version": 12},
        {"api_key": 18, "min_version": 0, "max_version": 4}]})
    upstream.responders[3] = lambda k, v, c, f: response_frame(k, v, c, {"brokers": [
        {"node_id": n, "host": upstream.host, "port": upstream.port, "rack": None}
        for n in (5, 2, 9)], "cluster_id": "c", "controller_id": 2, "topics": []})
    server = ProxyServer(ProxyConfig([(upstream.host, upstream.port)], port=0))
    await server.start()
    routes = {r.node_id: r for r in server.address_map.routes()}
    assert [routes[n].discovery_index for n in (2, 5, 9)] == [0, 1, 2]
    assert all(r.listen_port for r in routes.values())
    client = await Client.connect("127.0.0.1", routes[9].listen_port or 0)
    await client.send(hb(1))
    assert decode_response(await client.recv(), HEARTBEAT, HB_V)[0] == 1
    client.close()
    await server.stop()


async def test_start_up_discovery_is_best_effort(upstream: FakeCluster) -> None:
    await upstream.stop()
    server = ProxyServer(ProxyConfig([(upstream.host, upstream.port)], port=0))
    await server.start()  # nobody answers: still starts
    assert server.list_brokers() == []
    await server.stop()
