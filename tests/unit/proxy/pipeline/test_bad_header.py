"""A request whose header does not parse closes its connection before anything is forwarded
(`bad_header`), on pass-through APIs too, small or large enough to be cut through; what
does parse passes byte-exact, whatever its size (invariants 1 and 5)."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator

import pytest

from kafka_chaos_proxy.proxy import metrics
from kafka_chaos_proxy.proxy.pipeline.cut_through import CUT_THROUGH_BYTES
from kafka_chaos_proxy.proxy.pipeline.framing import HEAD_BYTES, with_size
from tests.support.wire_fakes import Client, FakeCluster, raw_request_frame, start_proxy

UNKNOWN_API = 999
BIG = CUT_THROUGH_BYTES + 4096


def header(api_key: int, version: int, client_id_len: int, rest: bytes = b"") -> bytes:
    return struct.pack(">hhih", api_key, version, 1, client_id_len) + rest


BAD = {
    # known APIs (Heartbeat v4: header v2; Produce v9), then one the codec does not know
    "client_id_past_frame": with_size(header(12, 4, 500, b"ab")),
    "client_id_not_utf8": with_size(header(12, 4, 2, b"\xff\xfe\x00")),
    "tagged_fields_past_frame": with_size(header(12, 4, 1, b"a\x05\x01\x7f")),
    "unknown_api_client_id_past_frame": with_size(header(UNKNOWN_API, 0, 500, b"ab")),
    "unknown_api_no_client_id_length": with_size(struct.pack(">hhi", UNKNOWN_API, 0, 1)),
    "unknown_api_half_client_id_length": with_size(struct.pack(">hhi", UNKNOWN_API, 0, 1) + b"\0"),
    "large_produce_client_id_not_utf8": with_size(header(0, 9, 2, b"\xff\xfe" + bytes(BIG))),
    "large_unknown_api_client_id_not_utf8": with_size(
        header(UNKNOWN_API, 0, 2, b"\xff\xfe" + bytes(BIG))),
}


def bad_headers() -> float:
    return float(metrics.frame_errors_total.labels("bad_header")._value.get())


@pytest.fixture
async def upstream() -> AsyncIterator[FakeCluster]:
    fake = await FakeCluster().start()
    yield fake
    await fake.stop()


@pytest.mark.parametrize("name", sorted(BAD))
async def test_an_unparsable_header_closes_before_forwarding(
        upstream: FakeCluster, name: str) -> None:
    server = await start_proxy(upstream)
    client = await Client.connect(*server.bootstrap_address)
    await client.send(raw_request_frame(UNKNOWN_API, 0, 0))  # upstream connected first
    await client.recv()
    before = bad_headers()
    client.writer.write(BAD[name])
    assert await client.at_eof()
    assert bad_headers() == before + 1
    assert len(upstream.received) == 1  # only the first request reached the broker
    await server.stop()


@pytest.mark.parametrize("frame", [
    with_size(header(12, 4, -1, b"\x00" + bytes(20))),  # null client id
    with_size(header(UNKNOWN_API, 0, -5, bytes(20))),  # any negative length is null, as Kafka
    with_size(header(0, 9, HEAD_BYTES + 10, b"c" * (HEAD_BYTES + 10) + bytes(BIG))),
], ids=["null_client_id", "negative_client_id_length", "header_longer_than_the_head"])
async def test_headers_that_parse_pass_byte_exact(upstream: FakeCluster, frame: bytes) -> None:
    upstream.responders[0] = lambda k, v, c, f: with_size(struct.pack(">i", c) + b"\0" * 8)
    upstream.responders[12] = upstream.responders[0]
    server = await start_proxy(upstream)
    client = await Client.connect(*server.bootstrap_address)
    await client.send(frame)
    for _ in range(500):
        if upstream.received:
            break
        await asyncio.sleep(0.01)
    assert upstream.received and upstream.received[0].frame == frame
    client.close()
    await server.stop()
