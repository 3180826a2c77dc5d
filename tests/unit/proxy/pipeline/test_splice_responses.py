"""Cut-through responses moved by splice(2): byte-exact, frame-bounded, in order, bounded by a
slow client, closed cleanly on either peer's loss, and a clean fallback where splice refuses.

Real loopback sockets (the splicer works on socket descriptors); the upstream is the scripted
fake broker of `tests.support.wire_fakes`. The pipeline scenarios run on asyncio's loop and on
uvloop's (the proxy's own): their transports differ in how they read, buffer and pause.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop
from structlog.testing import capture_logs

from kafka_chaos_proxy.faults.decision import ActionKind, Decision
from kafka_chaos_proxy.proxy import metrics
from kafka_chaos_proxy.proxy.pipeline import splice
from kafka_chaos_proxy.proxy.pipeline.connection import Connection
from kafka_chaos_proxy.proxy.pipeline.cut_through import CUT_THROUGH_BYTES
from kafka_chaos_proxy.proxy.pipeline.framing import with_size
from kafka_chaos_proxy.proxy.server import ProxyServer
from kafka_chaos_proxy.proxy.tls.settings import ListenerTls, UpstreamTls
from tests.support.pki import Pki, make_pki
from tests.support.splicing import (
    WAIT_S,
    complete_frames,
    held,
    refuse_splice,
    reset_on_close,
    shrink_sockets,
    slow_client,
    until,
)
from tests.support.wire_fakes import (
    Client,
    FakeCluster,
    FixedDecider,
    decode_response,
    raw_request_frame,
    request_frame,
    start_proxy,
)

pytestmark = pytest.mark.skipif(not splice.AVAILABLE, reason="no splice(2) on this platform")

HEARTBEAT, HB_V = 12, 4
BIG = 998  # an api key the codec does not know: its answers pass through undecoded
TRUNCATED = 997  # answered with a frame cut short, then the broker's connection closes
LOOPS = ["asyncio", "uvloop"]


def run(loop: str, scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    (uvloop.run if loop == "uvloop" else asyncio.run)(scenario())


def hb(corr: int) -> bytes:
    return request_frame(HEARTBEAT, HB_V, corr, {"group_id": "g", "generation_id": 1,
                                                 "member_id": "m"})


def big_answer(size: int) -> Callable[[int, int, int, bytes], bytes]:
    """A pass-through answer of `size` random bytes (a stand-in for a large Fetch response)."""
    def answer(k: int, v: int, c: int, f: bytes) -> bytes:
        return with_size(struct.pack(">i", c) + os.urandom(size))
    return answer


def _conn(server: ProxyServer) -> Connection:
    return next(iter(server.connections.values()))


async def _proxy(upstream: FakeCluster, decider: Any = None,
                 **config: Any) -> tuple[ProxyServer, Client, Connection]:
    server = await start_proxy(upstream, decider, (), **config)
    client = await Client.connect(*server.bootstrap_address)
    await client.send(hb(0))  # upstream connected before the big one is asked for
    await client.recv()
    return server, client, _conn(server)


async def _slow_client(server: ProxyServer) -> tuple[Client, Connection]:
    """A client that reads nothing until told, with the proxy's sockets of its connection
    small: a large answer cannot all be in flight in the kernel, so the splice must wait."""
    client, port = await slow_client(server.bootstrap_address)
    await client.send(hb(0))
    await client.recv()
    conn = next(c for c in server.connections.values() if c.client_port == port)
    shrink_sockets(conn)
    return client, conn


def _stalled(conn: Connection, upstream: FakeCluster) -> bool:
    """The splice waits for the client and the broker cannot send: back-pressure end to end."""
    s = conn.response_splicer
    broker = upstream.connections[-1].transport
    return (s is not None and s.waiting_for_dest and broker is not None
            and broker.get_write_buffer_size() > 0)


def _b2c() -> float:
    return float(metrics.frame_counts.b2c.value)


def _closes(reason: str) -> float:
    return float(metrics.connection_closes_total.labels(reason)._value.get())


# ------------------------------------------------------------------ the splicer on its own


async def _tcp_pair() -> tuple[socket.socket, socket.socket]:
    """(the proxy's end, the peer's end) of a loopback TCP connection, both non-blocking."""
    listener = socket.create_server(("127.0.0.1", 0))
    peer = socket.create_connection(listener.getsockname())
    ours, _ = listener.accept()
    listener.close()
    for s in (ours, peer):
        s.setblocking(False)
    return ours, peer


class Outcome:
    def __init__(self) -> None:
        self.taken = self.delivered = 0
        self.done = asyncio.Event()
        self.errors: list[tuple[str, str]] = []

    def take(self, n: int) -> None:
        self.taken += n

    def deliver(self, n: int) -> None:
        self.delivered += n

    def error(self, reason: str, detail: str) -> None:
        self.errors.append((reason, detail))
        self.done.set()


async def _drain(sock: socket.socket, n: int) -> bytes:
    loop = asyncio.get_running_loop()
    got = bytearray()
    while len(got) < n:
        chunk = await asyncio.wait_for(loop.sock_recv(sock, n - len(got)), WAIT_S)
        assert chunk, "EOF"
        got += chunk
    return bytes(got)


def _splicer(route: splice.Route, src: socket.socket, dst: socket.socket,
             pending: Callable[[], int], out: Outcome) -> splice.Splicer:
    return splice.Splicer(asyncio.get_running_loop(), route, src.fileno(), dst.fileno(),
                          pending, out.take, out.deliver, out.done.set, out.error)


async def test_exactly_count_bytes_move_after_the_destination_transport_buffer() -> None:
    """Nothing is spliced while the destination's transport still has bytes (order), and the
    splice stops at the frame's end: what follows stays in the source socket."""
    route = splice.Route("upstream", "client", "upstream_closed")
    src, src_peer = await _tcp_pair()
    dst, dst_peer = await _tcp_pair()
    body, after = os.urandom(600_000), b"next frame"
    src_peer.setblocking(True)
    src_peer.sendall(body + after)
    buffered = [1]  # the transport's buffer, emptied below
    out = Outcome()
    s = _splicer(route, src, dst, lambda: buffered[0], out)
    s.begin(len(body))
    await until(lambda: s.in_pipe > 0)
    assert s.waiting_for_dest and s.in_pipe <= s.pipe_bytes and s.left > 0  # one pipe, no more
    with pytest.raises(BlockingIOError):
        dst_peer.recv(1)  # the transport's bytes go first
    buffered[0] = 0
    assert await _drain(dst_peer, len(body)) == body
    await asyncio.wait_for(out.done.wait(), WAIT_S)
    assert out.errors == [] and out.taken == out.delivered == s.moved == route.moved == len(body)
    assert not s.active and not s.owns_source
    assert await _drain(src, len(after)) == after  # the next frame was left where it was
    s.close()
    for sock in (src, src_peer, dst, dst_peer):
        sock.close()


async def test_the_sources_eof_mid_frame_is_the_routes_eof_reason() -> None:
    src, src_peer = await _tcp_pair()
    dst, dst_peer = await _tcp_pair()
    src_peer.setblocking(True)
    src_peer.sendall(b"x" * 1000)
    src_peer.close()
    out = Outcome()
    s = _splicer(splice.TO_CLIENT, src, dst, lambda: 0, out)
    s.begin(5000)
    await asyncio.wait_for(out.done.wait(), WAIT_S)
    assert out.errors == [("upstream_closed", "4000 bytes short at EOF")] and s.closed
    assert await _drain(dst_peer, 1000) == b"x" * 1000
    for sock in (src, dst, dst_peer):
        sock.close()


async def test_a_destination_gone_mid_splice_names_the_destination() -> None:
    src, src_peer = await _tcp_pair()
    dst, dst_peer = await _tcp_pair()
    dst.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    src_peer.setblocking(True)
    src_peer.sendall(os.urandom(200_000))
    out = Outcome()
    s = _splicer(splice.Route("upstream", "client", "upstream_closed"), src, dst, lambda: 0, out)
    s.begin(3_000_000)
    await until(lambda: s.waiting_for_dest)
    dst_peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    dst_peer.close()  # a reset: the next splice into it fails
    src_peer.sendall(os.urandom(200_000))
    await asyncio.wait_for(out.done.wait(), WAIT_S)
    ((reason, detail),) = out.errors
    assert reason == "client_closed" and ("EPIPE" in detail or "ECONNRESET" in detail
                                          or "Broken pipe" in detail or "reset" in detail)
    assert s.closed
    for sock in (src, src_peer, dst):
        sock.close()


async def test_a_refusal_before_any_byte_is_reported_and_remembered(
        monkeypatch: pytest.MonkeyPatch) -> None:
    refuse_splice(monkeypatch)
    src, src_peer = await _tcp_pair()
    dst, dst_peer = await _tcp_pair()
    src_peer.setblocking(True)
    src_peer.sendall(b"y" * 100)
    out = Outcome()
    s = _splicer(splice.TO_CLIENT, src, dst, lambda: 0, out)
    s.begin(200_000)
    assert out.errors and out.errors[0][0] == splice.REFUSED and s.closed
    assert not splice.splice_supported()
    assert src.recv(1000) == b"y" * 100  # nothing taken: the transport reads it all
    for sock in (src, src_peer, dst, dst_peer):
        sock.close()


# ------------------------------------------------------------------ through the pipeline


@pytest.mark.parametrize("loop", LOOPS)
def test_large_responses_are_spliced_byte_exact_in_order_up_to_their_frame(loop: str) -> None:
    """Large answers with small ones between them, all in one upstream chunk: each splice
    stops at its frame's end, the next head is read by hand, and the next large answer is
    spliced from its start (everything but that head bypasses user space)."""
    async def scenario() -> None:
        upstream = await FakeCluster().start()
        upstream.responders[BIG] = big_answer(3 * 1024 * 1024)
        server, client, conn = await _proxy(upstream)
        out_before, b2c_before, route_before = conn.bytes_out, _b2c(), splice.TO_CLIENT.moved
        # The client reads nothing until the broker has answered all: the answers lie back
        # to back in the upstream socket, so each splice ends right before the next frame.
        frames = [raw_request_frame(BIG, 0, 1), hb(2), hb(3), raw_request_frame(BIG, 0, 4),
                  hb(5)]
        await client.send(b"".join(frames))
        await until(lambda: len(upstream.sent) == 6)
        got = [await client.recv(timeout=WAIT_S) for _ in frames]
        assert got == upstream.sent[1:]  # byte-exact, in request order
        assert [decode_response(f, HEARTBEAT, HB_V)[0] for f in (got[1], got[2], got[4])] \
            == [2, 3, 5]
        s = conn.response_splicer
        assert s is not None  # the spliced path was taken, and kept for the next one
        big = len(got[0])
        assert s.moved >= 2 * big - CUT_THROUGH_BYTES - splice.HEAD_BYTES
        assert splice.TO_CLIENT.moved - route_before == s.moved
        assert conn.bytes_out - out_before == sum(map(len, got)) == _b2c() - b2c_before
        assert conn.stream_left == 0 and not s.active
        # hb(5)'s answer was the head read by hand after the second splice: small, so the
        # transport reads again. After a large answer that is the last, the next head is
        # awaited by hand; a small one gives reading back again.
        await until(lambda: not conn.upstream_paused)
        assert conn.upstream is not None and conn.upstream.is_reading()
        await client.send(raw_request_frame(BIG, 0, 6))
        assert await client.recv(timeout=WAIT_S) == upstream.sent[-1]
        await until(lambda: s.awaiting_head)
        assert not conn.upstream.is_reading() and conn.upstream_paused == {"splice"}
        await client.send(hb(7))
        assert decode_response(await client.recv(), HEARTBEAT, HB_V)[0] == 7
        await until(lambda: not conn.upstream_paused)
        assert conn.upstream.is_reading() and not s.owns_source
        client.close()
        await server.stop()
        await upstream.stop()
    run(loop, scenario)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_response_filled_behind_a_splice_leaves_as_soon_as_it_ends(loop: str) -> None:
    """Nothing else comes from the broker after the spliced answer: the end of the splice
    itself must release the (synthesized) answer queued behind it."""
    async def scenario() -> None:
        upstream = await FakeCluster().start()
        upstream.responders[BIG] = big_answer(3 * 1024 * 1024)
        decider = FixedDecider(Decision(ActionKind.ERROR, "r", error_code=7), api_key=HEARTBEAT,
                               times=0)
        server, client, conn = await _proxy(upstream, decider)
        decider.remaining = 1
        await client.send(raw_request_frame(BIG, 0, 1) + hb(2))
        assert await client.recv(timeout=WAIT_S) == upstream.sent[1]
        corr, body = decode_response(await client.recv(timeout=WAIT_S), HEARTBEAT, HB_V)
        assert (corr, body["error_code"]) == (2, 7)
        assert len(upstream.received) == 2 and conn.response_splicer is not None
        assert conn.response_splicer.moved > 0
        client.close()
        await server.stop()
        await upstream.stop()
    run(loop, scenario)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_slow_client_holds_the_broker_back_and_the_proxy_holds_one_pipe(loop: str) -> None:
    """A ~10 MB answer to a client that reads slowly, five answers queued behind it and one
    synthesized while it streams: the proxy's buffers stay at about one pipe (not the answer's
    size), the broker is held back, and everything arrives in order."""
    async def scenario() -> None:
        upstream = await FakeCluster().start()
        upstream.responders[BIG] = big_answer(10 * 1024 * 1024)
        decider = FixedDecider(Decision(ActionKind.ERROR, "r", error_code=7), api_key=HEARTBEAT,
                               times=0)
        server = await start_proxy(upstream, decider, (), high_water=64 * 1024)
        client, conn = await _slow_client(server)
        await client.send(raw_request_frame(BIG, 0, 1) + b"".join(hb(c) for c in range(2, 7)))
        await until(lambda: _stalled(conn, upstream))
        s = conn.response_splicer
        assert s is not None and s.left > 0
        # A response filled while the splice runs (an ERROR fault) waits its turn too.
        decider.remaining = 1
        await client.send(hb(7))
        await until(lambda: conn.requests == 8)
        slots = list(conn.slots)
        assert [x.correlation_id for x in slots] == [2, 3, 4, 5, 6, 7] and slots[-1].filled
        # The client transport's pause and resume (its buffer) never let the upstream
        # transport read while the splicer reads that socket.
        conn.client_pause_writing()
        conn.client_resume_writing()
        assert conn.upstream is not None and not conn.upstream.is_reading()
        assert conn.upstream_paused == {"splice"}
        bound = CUT_THROUGH_BYTES + s.pipe_bytes + 64 * 1024
        most = held(conn)
        data = bytearray()
        while s.active or conn.slots:
            chunk = await asyncio.wait_for(client.reader.read(65536), WAIT_S)
            assert chunk
            data += chunk
            most = max(most, held(conn))
            if s.active:
                assert not conn.upstream.is_reading()
        while len(got := complete_frames(bytes(data))) < 7:
            data += await asyncio.wait_for(client.reader.read(65536), WAIT_S)
        assert most <= bound < 10 * 1024 * 1024 // 4
        assert got[0] == upstream.sent[1] and got[1:6] == upstream.sent[2:7]
        corr, body = decode_response(got[6], HEARTBEAT, HB_V)
        assert (corr, body["error_code"]) == (7, 7)
        assert s.moved >= len(got[0]) - CUT_THROUGH_BYTES
        client.close()
        await server.stop()
        await upstream.stop()
    run(loop, scenario)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_client_closing_mid_splice_closes_its_connection_alone(loop: str) -> None:
    async def scenario() -> None:
        upstream = await FakeCluster().start()
        upstream.responders[BIG] = big_answer(10 * 1024 * 1024)
        server = await start_proxy(upstream, None, ())
        client, conn = await _slow_client(server)
        before = _closes("client_closed")
        await client.send(raw_request_frame(BIG, 0, 1))
        await until(lambda: _stalled(conn, upstream))
        s = conn.response_splicer
        assert s is not None
        reset_on_close(client)  # gone mid-response
        await until(lambda: conn.closed)
        assert conn.close_reason == "client_closed" and conn.response_splicer is None
        assert s.closed  # its pipe and duplicated descriptors are released
        assert _closes("client_closed") == before + 1
        await until(lambda: upstream.lost >= 1)  # the broker's connection is closed too
        other = await Client.connect(*server.bootstrap_address)  # the proxy serves on
        await other.send(raw_request_frame(BIG, 0, 5) + hb(6))
        assert await other.recv(timeout=WAIT_S) == upstream.sent[-2]
        assert decode_response(await other.recv(), HEARTBEAT, HB_V)[0] == 6
        other.close()
        await server.stop()
        await upstream.stop()
    run(loop, scenario)


@pytest.mark.parametrize("loop", LOOPS)
def test_the_broker_closing_mid_splice_closes_the_connection(loop: str) -> None:
    async def scenario() -> None:
        upstream = await FakeCluster().start()

        def truncated(k: int, v: int, c: int, f: bytes) -> bytes:
            # Claims 4 MiB, sends 1 MiB, then the broker's side closes (once it is written).
            transport = upstream.connections[-1].transport
            assert transport is not None
            asyncio.get_running_loop().call_soon(transport.close)
            return struct.pack(">ii", 4 * 1024 * 1024 + 4, c) + os.urandom(1024 * 1024)

        upstream.responders[TRUNCATED] = truncated
        server, client, conn = await _proxy(upstream)
        before, moved = _closes("upstream_closed"), splice.TO_CLIENT.moved
        with capture_logs() as logs:
            await client.send(raw_request_frame(TRUNCATED, 0, 1))
            await until(lambda: conn.closed)
        assert conn.close_reason == "upstream_closed"
        assert _closes("upstream_closed") == before + 1
        assert splice.TO_CLIENT.moved > moved
        (line,) = [e for e in logs if e["event"] == "connection_closed"]
        assert "short at EOF" in line["detail"]  # the splicer saw it, mid-frame
        # What the broker did send reached the client, byte-exact, then the end.
        assert await asyncio.wait_for(client.reader.read(), WAIT_S) == upstream.sent[-1]
        await server.stop()
        await upstream.stop()
    run(loop, scenario)


@pytest.mark.parametrize("loop", LOOPS)
def test_the_broker_closing_while_the_next_head_is_awaited_closes_cleanly(loop: str) -> None:
    async def scenario() -> None:
        upstream = await FakeCluster().start()
        upstream.responders[BIG] = big_answer(1024 * 1024)
        server, client, conn = await _proxy(upstream)
        await client.send(raw_request_frame(BIG, 0, 1))
        assert await client.recv(timeout=WAIT_S) == upstream.sent[1]
        s = conn.response_splicer
        await until(lambda: s is not None and s.awaiting_head)
        broker = upstream.connections[-1].transport
        assert broker is not None
        broker.close()  # the hand-read sees the EOF and hands it to the transport
        await until(lambda: conn.closed)
        assert conn.close_reason == "upstream_closed" and conn.response_splicer is None
        assert s is not None and s.closed
        assert await client.at_eof(timeout=WAIT_S)
        await server.stop()
        await upstream.stop()
    run(loop, scenario)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_pause_for_another_reason_stops_the_upstream_head_reader_too(loop: str) -> None:
    """A slow client (the client transport's pause_writing) holds upstream reading while the
    next head is awaited: the splicer's own reader must not read on."""
    async def scenario() -> None:
        upstream = await FakeCluster().start()
        upstream.responders[BIG] = big_answer(1024 * 1024)
        server, client, conn = await _proxy(upstream)
        await client.send(raw_request_frame(BIG, 0, 1))
        assert await client.recv(timeout=WAIT_S) == upstream.sent[1]
        s = conn.response_splicer
        await until(lambda: s is not None and s.awaiting_head)
        assert s is not None
        conn.client_pause_writing()
        assert not s.owns_source and conn.upstream_paused == {"backpressure"}
        await client.send(hb(2))
        await until(lambda: len(upstream.sent) == 3)  # answered: it waits in the socket
        assert await client.nothing_within(0.2)  # nothing read while held
        conn.client_resume_writing()
        assert decode_response(await client.recv(), HEARTBEAT, HB_V)[0] == 2
        assert not conn.upstream_paused and conn.upstream is not None
        assert conn.upstream.is_reading()
        client.close()
        await server.stop()
        await upstream.stop()
    run(loop, scenario)


@pytest.mark.parametrize("how", ["refused", "unsupported"])
@pytest.mark.parametrize("loop", LOOPS)
def test_where_splice_refuses_responses_stream_through_the_transports(
        loop: str, how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if how == "refused":
        refuse_splice(monkeypatch)
    else:
        monkeypatch.setattr(splice, "_refused", True)

    async def scenario() -> None:
        upstream = await FakeCluster().start()
        upstream.responders[BIG] = big_answer(3 * 1024 * 1024)
        server, client, conn = await _proxy(upstream)
        moved = splice.TO_CLIENT.moved
        await client.send(raw_request_frame(BIG, 0, 1) + hb(2) + raw_request_frame(BIG, 0, 3))
        got = [await client.recv(timeout=WAIT_S) for _ in range(3)]
        assert got == upstream.sent[1:]
        assert conn.response_splicer is None and not splice.splice_supported()
        assert splice.TO_CLIENT.moved == moved and not conn.upstream_paused
        assert conn.bytes_out == sum(map(len, upstream.sent))
        client.close()
        await server.stop()
        await upstream.stop()
    run(loop, scenario)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


async def test_a_large_response_streams_through_tls_without_the_splice(pki: Pki) -> None:
    upstream = await FakeCluster(tls=pki.server_context()).start()
    upstream.responders[BIG] = big_answer(3 * 1024 * 1024)
    server = await start_proxy(
        upstream, listener_tls=ListenerTls(cert_file=pki.server_cert, key_file=pki.server_key),
        upstream_tls=UpstreamTls(ca_file=pki.ca))
    client = await Client.connect(*server.bootstrap_address, tls=pki.client_context())
    await client.send(raw_request_frame(BIG, 0, 1) + hb(2))
    got = [await client.recv(timeout=WAIT_S) for _ in range(2)]
    assert got == upstream.sent  # order, byte-exact
    assert _conn(server).response_splicer is None  # splice(2) would have moved ciphertext
    client.close()
    await server.stop()
    await upstream.stop()


async def test_a_throttled_connection_is_never_spliced() -> None:
    decider = FixedDecider(Decision(ActionKind.THROTTLE, "r", throttle_bytes_per_s=50_000_000),
                           api_key=HEARTBEAT)
    upstream = await FakeCluster().start()
    upstream.responders[BIG] = big_answer(1024 * 1024)
    server, client, conn = await _proxy(upstream, decider)  # hb(0) turns throttling on
    assert conn.throttle_bps
    await client.send(raw_request_frame(BIG, 0, 1))
    assert await client.recv(timeout=WAIT_S) == upstream.sent[1]
    assert conn.response_splicer is None
    client.close()
    await server.stop()
    await upstream.stop()
