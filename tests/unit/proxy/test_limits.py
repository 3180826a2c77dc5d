"""Connection limits and timeouts (invariant 5): refused on accept, closed by the sweep."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from kafka_chaos_proxy.faults.decision import ActionKind, Decision, Side
from kafka_chaos_proxy.proxy import metrics
from kafka_chaos_proxy.proxy.config import ProxyConfig
from kafka_chaos_proxy.proxy.pipeline import limits
from kafka_chaos_proxy.proxy.server import ProxyServer
from tests.support.wire_fakes import (
    Client,
    FakeCluster,
    FixedDecider,
    decode_response,
    request_frame,
    start_proxy,
)

HB = (12, 4)


def hb(corr: int) -> bytes:
    return request_frame(*HB, corr, {"group_id": "g", "generation_id": 1, "member_id": "m"})


def count(counter: object, label: str) -> float:
    return float(counter.labels(label)._value.get())  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def fast_sweep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "SWEEP_INTERVAL_S", 0.05)


@pytest.fixture
async def upstream() -> AsyncIterator[FakeCluster]:
    fake = await FakeCluster().start()
    yield fake
    await fake.stop()


async def _roundtrip(client: Client, corr: int) -> None:
    await client.send(hb(corr))
    assert decode_response(await client.recv(), *HB)[0] == corr


def test_defaults_are_documented_bounds() -> None:
    cfg = ProxyConfig([("b", 9092)])
    assert cfg.max_connections == 10_000 and cfg.max_connections_per_ip is None
    assert cfg.max_buffered_bytes_per_connection > cfg.max_frame_bytes
    assert cfg.max_buffered_bytes_total >= 4 * cfg.max_buffered_bytes_per_connection
    assert (cfg.idle_timeout_s, cfg.request_timeout_s, cfg.handshake_timeout_s) == (
        600.0, 60.0, 30.0)


async def test_over_max_connections_is_refused_on_accept(upstream: FakeCluster) -> None:
    server = await start_proxy(upstream, max_connections=2)
    addr = server.bootstrap_address
    first, second = await Client.connect(*addr), await Client.connect(*addr)
    await _roundtrip(first, 1)
    await _roundtrip(second, 1)
    before = count(metrics.connection_refusals_total, "max_connections")
    third = await Client.connect(*addr)
    assert await third.at_eof()
    assert count(metrics.connection_refusals_total, "max_connections") == before + 1
    assert len(server.connections) == 2 and len(upstream.connections) == 2
    first.close()
    for _ in range(200):
        if len(server.connections) < 2:
            break
        await asyncio.sleep(0.01)
    again = await Client.connect(*addr)  # a slot is free again
    await _roundtrip(again, 2)
    await _roundtrip(second, 2)
    again.close()
    second.close()
    await server.stop()


async def test_max_connections_per_ip(upstream: FakeCluster) -> None:
    server = await start_proxy(upstream, max_connections_per_ip=1)
    addr = server.bootstrap_address
    first = await Client.connect(*addr)
    await _roundtrip(first, 1)
    before = count(metrics.connection_refusals_total, "max_connections_per_ip")
    second = await Client.connect(*addr)
    assert await second.at_eof()
    assert count(metrics.connection_refusals_total, "max_connections_per_ip") == before + 1
    await _roundtrip(first, 2)
    first.close()
    await server.stop()
    assert server.admission.open == 0 and server.admission.from_ip("127.0.0.1") == 0


async def test_idle_connection_is_closed(upstream: FakeCluster) -> None:
    server = await start_proxy(upstream, idle_timeout_s=0.3)
    client = await Client.connect(*server.bootstrap_address)
    await _roundtrip(client, 1)
    before = count(metrics.connection_closes_total, "idle_timeout")
    assert await client.at_eof(timeout=5)
    assert count(metrics.connection_closes_total, "idle_timeout") == before + 1
    await server.stop()


async def test_a_response_still_owed_is_not_idle(upstream: FakeCluster) -> None:
    decider = FixedDecider(Decision(ActionKind.DELAY, "r", side=Side.RESPONSE, delay_s=1.0))
    server = await start_proxy(upstream, decider, idle_timeout_s=0.2)
    client = await Client.connect(*server.bootstrap_address)
    await client.send(hb(1))
    assert decode_response(await client.recv(), *HB)[0] == 1  # delivered, not cut off
    assert await client.at_eof(timeout=5)  # idle afterwards
    await server.stop()


async def test_a_frame_trickling_in_is_closed_at_the_request_timeout(
        upstream: FakeCluster) -> None:
    server = await start_proxy(upstream, request_timeout_s=0.4, idle_timeout_s=None)
    client = await Client.connect(*server.bootstrap_address)
    await _roundtrip(client, 1)
    before = count(metrics.connection_closes_total, "request_timeout")
    frame = hb(2)
    for byte in frame[:-1]:  # bytes keep moving, the frame never ends
        if client.reader.at_eof():
            break
        client.writer.write(bytes([byte]))
        await asyncio.sleep(0.05)
    assert await client.at_eof(timeout=5)
    assert count(metrics.connection_closes_total, "request_timeout") == before + 1
    await server.stop()


async def test_frames_that_complete_in_time_keep_the_connection(upstream: FakeCluster) -> None:
    server = await start_proxy(upstream, request_timeout_s=0.3, idle_timeout_s=None)
    client = await Client.connect(*server.bootstrap_address)
    for corr in range(8):  # each frame split, completed within the timeout: 0.8 s in all
        frame = hb(corr)
        client.writer.write(frame[:10])
        await asyncio.sleep(0.1)
        await client.send(frame[10:])
        assert decode_response(await client.recv(), *HB)[0] == corr
    client.close()
    await server.stop()


async def test_no_first_request_within_the_handshake_timeout(upstream: FakeCluster) -> None:
    server = await start_proxy(upstream, handshake_timeout_s=0.3)
    silent = await Client.connect(*server.bootstrap_address)
    talker = await Client.connect(*server.bootstrap_address)
    await _roundtrip(talker, 1)
    before = count(metrics.connection_closes_total, "handshake_timeout")
    assert await silent.at_eof(timeout=5)
    assert count(metrics.connection_closes_total, "handshake_timeout") == before + 1
    await _roundtrip(talker, 2)  # past the handshake: untouched
    talker.close()
    await server.stop()


async def test_stop_ends_the_sweep(upstream: FakeCluster) -> None:
    server = ProxyServer(ProxyConfig([(upstream.host, upstream.port)], port=0))
    await server.start(discover=False)
    assert server._sweep_handle is not None
    await server.stop()
    assert server._sweep_handle is None
    await asyncio.sleep(0.1)
    assert server._sweep_handle is None


def test_admission_counts_release_by_ip() -> None:
    adm = limits.Admission(ProxyConfig([("b", 1)], max_connections=3, max_connections_per_ip=2))
    assert [adm.admit(ip) for ip in ("a", "a", "a", "b", "c")] == [
        None, None, limits.MAX_CONNECTIONS_PER_IP, None, limits.MAX_CONNECTIONS]
    adm.release("a")
    assert adm.admit("c") is None and adm.open == 3
    for ip in ("a", "b", "c"):
        adm.release(ip)
    assert adm.open == 0 and adm.from_ip("a") == 0




def test_the_descriptor_limit_caps_admission(monkeypatch: pytest.MonkeyPatch) -> None:
    import resource

    monkeypatch.setattr(resource, "getrlimit", lambda _which: (1024, 4096))
    cap = limits.descriptor_cap(10_000)
    assert cap is not None and 0 < cap < (1024 - 128) // 2
    assert limits.descriptor_cap(cap) is None  # max_connections already tighter
    monkeypatch.setattr(resource, "getrlimit",
                        lambda _which: (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    assert limits.descriptor_cap(10_000) is None
    adm = limits.Admission(ProxyConfig([("b", 1)]), fd_cap=1)
    assert [adm.admit("a"), adm.admit("b")] == [None, limits.FD_LIMIT]
