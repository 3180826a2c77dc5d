"""Requests forwarded without a context (`proxy.pipeline.passing`): the same bytes, the same
order, the same slots and the same errors as the full path, one upstream write per run.

The connection here has transports that record what is written (no sockets), so a test can
say how many writes a chunk took and compare two connections write for write: one whose
decider can name its quiet API keys (the fault engine: the scan is on) and one whose decider
cannot (the scan is off, every request takes the full path).
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.faults.decision import PASS, Decision, RequestView
from kafka_chaos_proxy.faults.engine import FaultEngine
from kafka_chaos_proxy.proxy.config import ProxyConfig
from kafka_chaos_proxy.proxy.observers import ClientIdCounter
from kafka_chaos_proxy.proxy.pipeline.connection import Connection
from kafka_chaos_proxy.proxy.pipeline.passing import passing_table
from kafka_chaos_proxy.proxy.pipeline.request_context import PassThrough, RequestContext
from kafka_chaos_proxy.proxy.server import ProxyServer
from tests.support.wire_fakes import decode_response, request_frame, response_frame

PRODUCE, FETCH, LIST_OFFSETS, HEARTBEAT = 0, 1, 2, 12
REQ = codec.Direction.REQUEST


class Recording(asyncio.Transport):
    """Takes every write at once and keeps it, as written."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[Any] = []
        self.reading = True

    def write(self, data: Any) -> None:
        self.writes.append(data)

    def writelines(self, list_of_data: Any) -> None:
        self.writes.append(b"".join(bytes(d) for d in list_of_data))

    @property
    def bytes(self) -> bytes:
        return b"".join(bytes(w) for w in self.writes)

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


class Blind:
    """A decider that cannot name quiet keys: every request is asked about, and passes or
    gets what `engine` decides."""

    def __init__(self, engine: FaultEngine | None = None) -> None:
        self.asked = 0
        self.engine = engine

    def on_request(self, request: RequestView) -> Decision:
        self.asked += 1
        return PASS if self.engine is None else self.engine.on_request(request)


def connection(decider: Any, **config: Any) -> tuple[Connection, Recording, Recording]:
    server = ProxyServer(ProxyConfig([("127.0.0.1", 9)], port=0, **config), decider)
    conn = Connection(server, 1)
    client, upstream = Recording(), Recording()
    conn.client = client
    conn.upstream = upstream
    return conn, client, upstream


def produce(corr: int, acks: int = 1, version: int = 9, client_id: str = "p",
            transactional_id: str | None = None) -> bytes:
    body = {"transactional_id": transactional_id, "acks": acks, "timeout_ms": 30000,
            "topic_data": [{"name": "t", "partition_data": [
                {"index": 0, "records": b"\0" * 100}]}]}
    return request_frame(PRODUCE, version, corr, body, client_id=client_id)


def answer(frame: bytes) -> bytes:
    """The broker's (empty) answer to a request frame."""
    api_key, version, corr = codec.parse_request_header(memoryview(frame)[4:])[:3]
    return response_frame(api_key, version, corr, {})


async def test_a_chunk_of_pass_through_frames_goes_up_in_one_write_of_the_same_bytes() -> None:
    conn, client, upstream = connection(FaultEngine())
    chunk = b"".join(produce(i) for i in range(16))
    conn.client_data(chunk)
    assert len(upstream.writes) == 1 and upstream.writes[0] is chunk
    assert [s.correlation_id for s in conn.slots] == list(range(16))
    assert all(isinstance(ctx, PassThrough) for ctx in conn.inflight)
    answers = b"".join(answer(produce(i)) for i in range(16))
    conn.upstream_data(answers)
    assert len(client.writes) == 1 and client.writes[0] is answers
    assert not conn.slots and not conn.inflight and not conn.closed


async def test_acks_zero_takes_no_slot_and_gets_no_response() -> None:
    conn, _client, upstream = connection(FaultEngine())
    chunk = produce(1, acks=0) + produce(2, acks=1) + produce(3, acks=0)
    conn.client_data(chunk)
    assert upstream.bytes == chunk
    assert [s.correlation_id for s in conn.slots] == [2]
    assert conn.requests == 3


async def test_non_flexible_produce_and_transactional_ids_are_read_right() -> None:
    conn, _client, upstream = connection(FaultEngine())
    chunk = (produce(1, acks=0, version=7, transactional_id="tx-1")
             + produce(2, acks=-1, version=7, transactional_id="tx-2")
             + produce(3, acks=0, version=10, transactional_id="tx-3"))
    conn.client_data(chunk)
    assert upstream.bytes == chunk
    assert [s.correlation_id for s in conn.slots] == [2]


async def test_an_incomplete_last_frame_is_held_and_finished_by_the_next_chunk() -> None:
    conn, _client, upstream = connection(FaultEngine())
    frames = [produce(i) for i in range(4)]
    cut = len(frames[2]) // 2
    conn.client_data(frames[0] + frames[1] + frames[2][:cut])
    assert upstream.bytes == frames[0] + frames[1]
    assert conn.creader.pending == cut
    conn.client_data(frames[2][cut:] + frames[3])
    assert upstream.bytes == b"".join(frames)
    assert [s.correlation_id for s in conn.slots] == [0, 1, 2, 3]
    # The frame that came in two pieces passed too, as the joined frame it became.
    assert all(isinstance(ctx, PassThrough) for ctx in conn.inflight)


async def test_a_frame_something_looks_at_ends_the_run_and_order_is_kept() -> None:
    engine = FaultEngine()
    conn, client, upstream = connection(engine)
    beat = request_frame(HEARTBEAT, 4, 3, {"group_id": "g", "generation_id": 1,
                                           "member_id": "m"})
    chunk = produce(1) + produce(2) + beat + produce(4)
    conn.client_data(chunk)
    assert upstream.bytes == chunk
    kinds = [type(ctx) for ctx in conn.inflight]
    assert kinds == [PassThrough, PassThrough, RequestContext, RequestContext]
    conn.upstream_data(answer(produce(1)) + answer(produce(2)) + answer(beat)
                       + answer(produce(4)))
    assert [decode_response(f, key, v)[0] for f, key, v in _split(client.bytes)] == [1, 2, 3, 4]


def _split(data: bytes) -> list[tuple[bytes, int, int]]:
    """Response frames with the api key and version of the test's requests (by corr)."""
    out = []
    pos = 0
    while pos < len(data):
        size = int.from_bytes(data[pos:pos + 4], "big")
        frame = data[pos:pos + 4 + size]
        corr = int.from_bytes(frame[4:8], "big")
        out.append((frame, HEARTBEAT if corr == 3 else PRODUCE, 4 if corr == 3 else 9))
        pos += 4 + size
    return out


async def test_a_rule_for_the_api_turns_the_scan_off_for_it_and_removing_it_back_on() -> None:
    engine = FaultEngine()
    conn, client, upstream = connection(engine)
    conn.client_data(produce(1))
    assert isinstance(conn.inflight[-1], PassThrough)
    engine.add({"id": "no-produce", "match": {"apis": ["Produce"]},
                "action": {"type": "error", "error": "NOT_LEADER_OR_FOLLOWER"}})
    conn.client_data(produce(2))
    assert len(upstream.writes) == 1, "the faulted Produce must not reach the broker"
    conn.upstream_data(answer(produce(1)))  # releases the broker's answer, then the error
    first, second = _frames(client.bytes)
    assert first == answer(produce(1))
    err_corr, err = decode_response(second, PRODUCE, 9)
    assert err_corr == 2
    assert err["responses"][0]["partition_responses"][0]["error_code"] == 6
    engine.remove("no-produce")
    conn.client_data(produce(3))
    assert isinstance(conn.inflight[-1], PassThrough)


async def test_an_answer_the_proxy_made_between_two_goes_out_between_them() -> None:
    engine = FaultEngine()
    engine.add({"match": {"apis": ["Heartbeat"]},
                "action": {"type": "error", "error": "REBALANCE_IN_PROGRESS"}})
    conn, client, upstream = connection(engine)
    beat = request_frame(HEARTBEAT, 4, 2, {"group_id": "g", "generation_id": 1,
                                           "member_id": "m"})
    conn.client_data(produce(1) + beat)
    conn.client_data(produce(3))  # a chunk of its own: scanned, its slot behind the error's
    assert isinstance(conn.inflight[-1], PassThrough)
    assert upstream.bytes == produce(1) + produce(3)
    conn.upstream_data(answer(produce(1)) + answer(produce(3)))
    corrs = [int.from_bytes(f[4:8], "big") for f in _frames(client.bytes)]
    assert corrs == [1, 2, 3]
    assert decode_response(_frames(client.bytes)[1], HEARTBEAT, 4)[1]["error_code"] == 27


async def test_an_answer_to_another_request_closes_the_connection() -> None:
    conn, _client, _upstream = connection(FaultEngine())
    conn.client_data(produce(1) + produce(2))
    conn.upstream_data(answer(produce(2)))
    assert conn.closed and conn.close_reason == "correlation_mismatch"


async def test_an_incomplete_last_answer_is_held_and_the_rest_written() -> None:
    conn, client, _upstream = connection(FaultEngine())
    conn.client_data(produce(1) + produce(2))
    first, second = answer(produce(1)), answer(produce(2))
    conn.upstream_data(first + second[:5])
    assert client.bytes == first
    conn.upstream_data(second[5:])
    assert client.bytes == first + second and not conn.slots


async def test_a_rule_for_another_api_or_group_leaves_the_scan_on() -> None:
    engine = FaultEngine()
    engine.load([{"id": f"sync-{n}", "match": {"apis": ["SyncGroup"], "group_id": f"g-{n}"},
                  "action": {"type": "error", "error": "REBALANCE_IN_PROGRESS"}}
                 for n in range(50)])
    conn, _client, _upstream = connection(engine)
    conn.client_data(produce(1))
    assert isinstance(conn.inflight[-1], PassThrough)
    assert codec.ApiKey.SYNC_GROUP not in engine.quiet_api_keys()


async def test_a_rule_for_every_api_turns_the_scan_off_for_its_clients_only() -> None:
    engine = FaultEngine()
    engine.add({"id": "slow-app", "match": {"client_id": "app-*"},
                "action": {"type": "delay", "fixed_ms": 5}})
    conn, _client, upstream = connection(engine)
    conn.client_data(produce(1, client_id="p"))
    assert isinstance(conn.inflight[-1], PassThrough)
    conn.client_data(produce(2, client_id="app-1") + produce(3, client_id="p"))
    # The delayed Produce and the one behind it (the rest of the chunk: the full path) wait.
    assert [type(c) for c in conn.to_forward] == [RequestContext, RequestContext]
    assert upstream.bytes == produce(1, client_id="p")
    engine.add({"id": "everyone", "match": {"any": True},
                "action": {"type": "delay", "fixed_ms": 5}})
    assert engine.quiet_api_keys("p") >= {codec.ApiKey.API_VERSIONS}
    assert PRODUCE not in engine.quiet_api_keys("p")


async def test_the_in_flight_limit_holds_the_rest_and_releases_it_in_order() -> None:
    conn, client, upstream = connection(FaultEngine(), max_inflight=4)
    frames = [produce(i) for i in range(10)]
    conn.client_data(b"".join(frames))
    assert upstream.bytes == b"".join(frames[:4])
    assert len(conn.backlog) == 6 and "inflight" in conn.paused
    for i in range(10):
        conn.upstream_data(answer(frames[i]))
    assert upstream.bytes == b"".join(frames)
    assert client.bytes == b"".join(answer(f) for f in frames)
    assert "inflight" not in conn.paused


async def test_a_client_id_that_is_not_utf8_closes_as_the_full_path_does() -> None:
    """The same reason either way; the scan has sent the good frame before it upstream
    (the full path drops its whole batch): the connection closes, so neither is answered."""
    bad = bytearray(produce(1, client_id="ab"))
    bad[14:16] = b"\xff\xfe"
    sent = []
    for decider in (FaultEngine(), Blind()):
        conn, _client, upstream = connection(decider)
        conn.client_data(produce(0) + bytes(bad))
        assert conn.closed and conn.close_reason == "frame_error:bad_header"
        sent.append(upstream.bytes)
    assert sent == [produce(0), b""]


async def test_a_decider_that_counts_every_request_sees_every_request() -> None:
    blind = Blind()
    conn, _client, upstream = connection(ClientIdCounter(blind))  # type: ignore[arg-type]
    chunk = produce(1) + produce(2)
    conn.client_data(chunk)
    assert blind.asked == 2 and upstream.bytes == chunk
    assert conn.server.quiet_api_keys("p") == frozenset()


def test_the_table_holds_supported_versions_only_and_produce_from_v3() -> None:
    table = passing_table(frozenset({PRODUCE, FETCH, 9999}), frozenset({FETCH}))
    versions = sorted(key & 0xFFFF for key in table)
    lo, hi = codec.supported_versions(PRODUCE)
    assert versions == list(range(max(lo, 3), hi + 1))
    assert all(key >> 16 == PRODUCE for key in table)


# ----------------------------------------------------------------- the same as the full path

def _request(kind: int, corr: int, client_id: str, acks: int) -> bytes:
    if kind == 0:
        return produce(corr, acks=acks, client_id=client_id)
    if kind == 1:
        return produce(corr, acks=acks, version=5, client_id=client_id, transactional_id="t")
    if kind == 2:
        return request_frame(FETCH, 12, corr, {"max_wait_ms": 100, "min_bytes": 1},
                             client_id=client_id)
    if kind == 3:
        return request_frame(LIST_OFFSETS, 7, corr, {}, client_id=client_id)
    return request_frame(HEARTBEAT, 4, corr, {"group_id": "g", "generation_id": 1,
                                              "member_id": "m"}, client_id=client_id)


requests = st.lists(st.tuples(st.integers(0, 4), st.sampled_from(["p", "", "ünï", "c-2"]),
                              st.sampled_from([0, 1, -1])), min_size=1, max_size=24)


@example(  # an error the proxy answered itself, between two requests scanned in two chunks
    specs=[(0, "p", 1), (4, "p", 1), (0, "p", 1)], cuts=[], inflight=30, beats_rejected=True,
    aligned=True, answer_every=3, splits=[True] * 24)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs=requests, cuts=st.lists(st.integers(1, 4000), max_size=6),
       inflight=st.integers(1, 30), beats_rejected=st.booleans(), aligned=st.booleans(),
       answer_every=st.integers(1, 3), splits=st.lists(st.booleans(), min_size=24, max_size=24))
def test_the_scan_and_the_full_path_write_the_same_bytes_in_the_same_order(
        specs: list[tuple[int, str, int]], cuts: list[int], inflight: int,
        beats_rejected: bool, aligned: bool, answer_every: int, splits: list[bool]) -> None:
    """Any mix of requests that pass, that a rule answers itself (Heartbeats, when
    `beats_rejected`) and that get no answer (acks=0), cut anywhere, answered in pieces cut
    anywhere, answered at once or a few chunks later, under any in-flight limit: byte for
    byte what the full path writes."""

    def engine_with_rules() -> FaultEngine:
        engine = FaultEngine()
        if beats_rejected:
            engine.add({"match": {"apis": ["Heartbeat"]},
                        "action": {"type": "error", "error": "REBALANCE_IN_PROGRESS"}})
        return engine

    frames = [_request(kind, corr, cid, acks) for corr, (kind, cid, acks) in enumerate(specs)]
    stream = b"".join(frames)
    answer_cuts = cuts
    if aligned:  # cut between frames only (about every other one): each chunk a new scan
        ends = itertools.accumulate(len(f) for f in frames)
        cuts = [end for end, cut in zip(ends, splits, strict=False) if cut]
    chunks, pos = [], 0
    for cut in sorted(cuts):
        if pos < cut < len(stream):
            chunks.append(stream[pos:cut])
            pos = cut
    chunks.append(stream[pos:])

    async def run(decider: Any) -> tuple[bytes, bytes, list[int]]:
        conn, client, upstream = connection(decider, max_inflight=inflight)
        for i, chunk in enumerate(chunks, 1):
            conn.client_data(chunk)
            while conn.inflight and (i % answer_every == 0 or i == len(chunks)):
                # the broker answers what it has, in order, in pieces
                answers = b"".join(
                    response_frame(ctx.api_key, ctx.api_version, ctx.correlation_id, {})
                    for ctx in conn.inflight)
                at = 0
                for cut in [*sorted(c % (len(answers) + 1) for c in answer_cuts),
                            len(answers)]:
                    if cut > at:
                        conn.upstream_data(answers[at:cut])
                        at = cut
        assert not conn.closed, conn.close_reason
        corrs = [int.from_bytes(f[4:8], "big") for f in _frames(client.bytes)]
        return upstream.bytes, client.bytes, corrs

    scanned = asyncio.run(run(engine_with_rules()))
    full = asyncio.run(run(Blind(engine_with_rules())))
    assert scanned == full
    assert scanned[0] == b"".join(f for f, (kind, *_rest) in zip(frames, specs, strict=True)
                                  if kind != 4 or not beats_rejected)
    expected = [corr for corr, (kind, _cid, acks) in enumerate(specs)
                if not (kind in (0, 1) and acks == 0)]
    assert scanned[2] == expected


def _frames(data: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(data):
        size = int.from_bytes(data[pos:pos + 4], "big")
        out.append(data[pos:pos + 4 + size])
        pos += 4 + size
    return out
