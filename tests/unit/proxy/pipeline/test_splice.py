"""Cut-through requests moved by splice(2): byte-exact, frame-bounded, and a clean fallback.

Real loopback sockets (the splicer works on socket descriptors); the upstream is the scripted
fake broker of `tests.support.wire_fakes`.
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import AsyncIterator

import pytest

from kafka_chaos_proxy.proxy.pipeline import splice
from kafka_chaos_proxy.proxy.pipeline.connection import Connection
from kafka_chaos_proxy.proxy.pipeline.framing import with_size
from kafka_chaos_proxy.proxy.server import ProxyServer
from tests.support.wire_fakes import (
    Client,
    FakeCluster,
    decode_response,
    request_frame,
    start_proxy,
)

pytestmark = pytest.mark.skipif(not splice.AVAILABLE, reason="no splice(2) on this platform")

HEARTBEAT, HB_V = 12, 4


@pytest.fixture
async def upstream() -> AsyncIterator[FakeCluster]:
    fake = await FakeCluster().start()
    yield fake
    await fake.stop()


def hb(corr: int) -> bytes:
    return request_frame(HEARTBEAT, HB_V, corr, {"group_id": "g", "generation_id": 1,
                                                 "member_id": "m"})


def big_request(corr: int, size: int) -> bytes:
    """InitProducerId with a large tail: a pass-through request the proxy never decodes."""
    frame = request_frame(22, 4, corr, {"transactional_id": None, "transaction_timeout_ms": 1})
    return with_size(frame[4:] + os.urandom(size))


async def _connected(upstream: FakeCluster) -> tuple[ProxyServer, Client, Connection]:
    server = await start_proxy(upstream, None, ())
    client = await Client.connect(*server.bootstrap_address)
    await client.send(hb(0))  # upstream connected before the big one starts
    await client.recv()
    return server, client, next(iter(server.connections.values()))


async def _until(cond: object, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if cond():  # type: ignore[operator]
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_large_request_body_is_spliced_byte_exact_and_bounded_by_its_frame(
        upstream: FakeCluster) -> None:
    server, client, conn = await _connected(upstream)
    big = big_request(1, 3 * 1024 * 1024)
    client.writer.write(big[:300_000])
    await client.writer.drain()
    await _until(lambda: conn.splicer is not None and conn.splicer.active)
    assert conn.paused == {"splice"}  # the transport reads nothing while the kernel moves bytes
    # The rest and the next request in one write: the splice must stop at the frame boundary.
    await client.send(big[300_000:] + hb(2))
    corr1, _ = decode_response(await client.recv(), 22, 4)
    corr2, _ = decode_response(await client.recv(), HEARTBEAT, HB_V)
    assert (corr1, corr2) == (1, 2)
    assert [r.frame for r in upstream.received[1:]] == [big, hb(2)]
    splicer = conn.splicer
    assert splicer is not None and not splicer.active
    assert not conn.paused and conn.req_stream_left == 0
    assert conn.bytes_in == len(hb(0)) + len(big) + len(hb(2))
    again = big_request(3, 2 * 1024 * 1024)  # the next large request reuses the splicer
    await client.send(again)
    assert decode_response(await client.recv(), 22, 4)[0] == 3
    assert upstream.received[-1].frame == again and conn.splicer is splicer
    client.close()
    await server.stop()


async def test_client_eof_mid_splice_is_a_truncated_frame(upstream: FakeCluster) -> None:
    server, client, conn = await _connected(upstream)
    big = big_request(1, 3 * 1024 * 1024)
    await client.send(big[:1_000_000])
    await _until(lambda: conn.splicer is not None and conn.splicer.active)
    client.writer.write_eof()
    await _until(lambda: conn.closed)
    assert conn.close_reason == "frame_error:truncated_frame" and conn.splicer is None
    other = await Client.connect(*server.bootstrap_address)  # the proxy serves on
    await other.send(hb(5))
    assert decode_response(await other.recv(), HEARTBEAT, HB_V)[0] == 5
    other.close()
    client.close()
    await server.stop()


async def test_refused_splice_falls_back_to_the_transport_path(
        upstream: FakeCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> int:
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(splice.os, "splice", refuse)
    monkeypatch.setattr(splice, "_refused", False)
    server, client, conn = await _connected(upstream)
    big = big_request(1, 3 * 1024 * 1024)
    await client.send(big + hb(2))
    corr1, _ = decode_response(await client.recv(), 22, 4)
    corr2, _ = decode_response(await client.recv(), HEARTBEAT, HB_V)
    assert (corr1, corr2) == (1, 2)
    assert [r.frame for r in upstream.received[1:]] == [big, hb(2)]
    assert conn.splicer is None and not splice.splice_supported()  # refused once: not again
    client.close()
    await server.stop()


async def test_back_to_back_large_requests_are_spliced_in_order(upstream: FakeCluster) -> None:
    """After a splice the next head is read by hand; large or small, every request arrives
    whole, in order, and the transport reads again after a small one."""
    server, client, conn = await _connected(upstream)
    frames = [big_request(1, 700_000), big_request(2, 1_500_000), hb(3),
              big_request(4, 400_000), hb(5), hb(6), big_request(7, 2_000_000)]
    await client.send(b"".join(frames))
    got = [decode_response(await client.recv(), 22 if len(f) > 1000 else HEARTBEAT,
                           4 if len(f) > 1000 else HB_V)[0] for f in frames]
    assert got == [1, 2, 3, 4, 5, 6, 7]
    assert [r.frame for r in upstream.received[1:]] == frames
    # Waiting for the next head by hand; a small request hands reading back to the transport.
    await client.send(hb(8))
    assert decode_response(await client.recv(), HEARTBEAT, HB_V)[0] == 8
    await _until(lambda: not conn.paused)
    assert conn.splicer is not None and not conn.splicer.owns_source
    await client.send(hb(9))
    assert decode_response(await client.recv(), HEARTBEAT, HB_V)[0] == 9
    client.close()
    await server.stop()


async def test_client_eof_while_waiting_for_the_next_head_closes_cleanly(
        upstream: FakeCluster) -> None:
    server, client, conn = await _connected(upstream)
    await client.send(big_request(1, 1_000_000))
    assert decode_response(await client.recv(), 22, 4)[0] == 1
    assert conn.splicer is not None and conn.splicer.owns_source  # waiting for a head
    client.writer.write_eof()
    await _until(lambda: conn.closed)
    assert conn.close_reason == "client_closed" and conn.splicer is None
    client.close()
    await server.stop()


async def test_a_pause_for_another_reason_stops_the_head_reader_too(
        upstream: FakeCluster) -> None:
    """Shutdown (or back-pressure) pauses reading: the splicer's own reader must not read on."""
    server, client, conn = await _connected(upstream)
    await client.send(big_request(1, 1_000_000))
    assert decode_response(await client.recv(), 22, 4)[0] == 1
    assert conn.splicer is not None and conn.splicer.awaiting_head
    conn.pause_client_reading("shutdown")
    assert not conn.splicer.owns_source and conn.paused == {"shutdown"}
    seen = len(upstream.received)
    await client.send(hb(2))
    await asyncio.sleep(0.2)
    assert len(upstream.received) == seen  # nothing read while paused
    conn.resume_client_reading("shutdown")
    assert decode_response(await client.recv(), HEARTBEAT, HB_V)[0] == 2
    client.close()
    await server.stop()
