"""Bytes held for frames assembled whole are capped per connection and process-wide, and the
process-wide count is given back on every path (invariant 5)."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator

import pytest

from kafka_chaos_proxy.proxy import metrics
from kafka_chaos_proxy.proxy.pipeline import limits
from kafka_chaos_proxy.proxy.pipeline.framing import with_size
from tests.support.wire_fakes import Client, FakeCluster, start_proxy

KIB = 1024


def big_unknown(corr: int, size: int) -> bytes:
    """A frame of an API the codec does not know: framed whole (never cut through)."""
    return with_size(struct.pack(">hhih", 30_000, 0, corr, 1) + b"c" + bytes(size - 11))


def errors(reason: str) -> float:
    return float(metrics.frame_errors_total.labels(reason)._value.get())


async def settled(predicate: object, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.01)):
        if predicate():  # type: ignore[operator]
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


@pytest.fixture
async def upstream() -> AsyncIterator[FakeCluster]:
    fake = await FakeCluster().start()
    yield fake
    await fake.stop()


async def test_a_frame_over_the_connection_limit_closes_that_connection(
        upstream: FakeCluster) -> None:
    base = limits.BUFFERED.total
    server = await start_proxy(upstream, max_buffered_bytes_per_connection=64 * KIB)
    good = await Client.connect(*server.bootstrap_address)
    bad = await Client.connect(*server.bootstrap_address)
    before = errors("buffer_limit")
    frame = big_unknown(1, 200 * KIB)
    bad.writer.write(frame[:100 * KIB])
    assert await bad.at_eof()
    assert errors("buffer_limit") == before + 1
    assert limits.BUFFERED.total == base
    small = big_unknown(2, 60 * KIB)  # under the limit: assembled and forwarded
    await good.send(small)
    assert struct.unpack_from(">i", await good.recv(), 4)[0] == 2
    assert upstream.received[-1].frame == small
    good.close()
    await server.stop()


async def test_the_process_wide_limit_closes_the_connection_that_crosses_it(
        upstream: FakeCluster) -> None:
    base = limits.BUFFERED.total
    server = await start_proxy(upstream, max_buffered_bytes_total=base + 150 * KIB)
    first = await Client.connect(*server.bootstrap_address)
    second = await Client.connect(*server.bootstrap_address)
    frame = big_unknown(1, 120 * KIB)  # alone under the limit
    await first.send(frame[:100 * KIB])
    await settled(lambda: limits.BUFFERED.total >= base + 100 * KIB)
    before = errors("buffer_limit")
    await second.send(big_unknown(1, 120 * KIB)[:100 * KIB])
    assert await second.at_eof()
    assert errors("buffer_limit") == before + 1
    await first.send(frame[100 * KIB:])  # the first one's frame completes: given back
    assert struct.unpack_from(">i", await first.recv(), 4)[0] == 1
    assert upstream.received[-1].frame == frame
    assert limits.BUFFERED.total == base
    await first.send(frame[:50 * KIB])  # held again, then given back when it closes
    await settled(lambda: limits.BUFFERED.total == base + 50 * KIB)
    first.close()
    await settled(lambda: limits.BUFFERED.total == base)
    await server.stop()


async def test_a_cut_through_frame_holds_nothing(upstream: FakeCluster) -> None:
    base = limits.BUFFERED.total
    server = await start_proxy(upstream, max_buffered_bytes_per_connection=128 * KIB)
    client = await Client.connect(*server.bootstrap_address)
    frame = with_size(struct.pack(">hhih", 22, 4, 1, 1) + b"c" + b"\x00\xff\xff\xff\xff\x00"
                      + bytes(1024 * KIB))  # InitProducerId + tail: streamed, not assembled
    await client.send(big_unknown(0, 100))
    await client.recv()  # upstream connected before the big one starts
    await client.send(frame)
    await settled(lambda: len(upstream.received) == 2)
    assert upstream.received[1].frame == frame
    assert limits.BUFFERED.total == base
    client.close()
    await server.stop()
