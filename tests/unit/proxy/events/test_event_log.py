"""The ring buffer, its queries, the JSON-lines file and live subscribers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace

from kafka_chaos_proxy.proxy import metrics
from kafka_chaos_proxy.proxy.events import EventFilter, EventLog


def _fill(log: EventLog, build: SimpleNamespace, n: int) -> None:
    clock = build.Clock()
    for i in range(n):
        group = "even" if i % 2 == 0 else "odd"
        log.observe(build.heartbeat(group, f"m-{i % 3}", 1, at=clock.tick()))


def test_ring_buffer_is_bounded_and_numbered(build: SimpleNamespace) -> None:
    log = EventLog(capacity=5)
    _fill(log, build, 12)
    assert len(log) == 5 and log.last_seq == 12
    assert [e["seq"] for e in log] == [8, 9, 10, 11, 12]


def test_query_filters_since_and_limit(build: SimpleNamespace) -> None:
    log = EventLog(capacity=100)
    _fill(log, build, 10)
    assert [e["seq"] for e in log.query(limit=3)] == [8, 9, 10]  # newest, oldest first
    assert [e["seq"] for e in log.query(since=4, limit=2)] == [5, 6]  # paging forward
    assert all(e["group"] == "odd" for e in log.query(EventFilter(group="odd")))
    assert len(log.query(EventFilter(group="odd"))) == 5
    assert [e["seq"] for e in log.query(EventFilter(member="m-0"))] == [1, 4, 7, 10]
    assert len(log.query(EventFilter(api="heartbeat"))) == 10
    assert len(log.query(EventFilter(api="12"))) == 10
    assert log.query(EventFilter(api="SyncGroup")) == []
    assert log.query(limit=0) == []


def test_member_filter_matches_listed_members(build: SimpleNamespace) -> None:
    log = EventLog()
    log.observe(build.join("g", "m-1", 1, "m-1", members=["m-1", "m-2"]))
    assert len(log.query(EventFilter(member="m-2"))) == 1


def test_json_lines_file(tmp_path: Path, build: SimpleNamespace) -> None:
    path = tmp_path / "logs" / "events.jsonl"
    log = EventLog(capacity=2, path=path)
    log.observe(build.join("g", "m-1", 1, "m-1", members=["m-1"]))
    log.observe(build.sync("g", "m-1", 1, {"t": [0]}, assignments={"m-1": {"t": [0]}}))
    log.observe(build.commit("g", "m-1", 1, {"t": {0: 3}}))
    log.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e["api"] for e in lines] == ["JoinGroup", "SyncGroup", "OffsetCommit"]  # not bounded
    assert lines[1]["assignments"] == {"m-1": {"t": [0]}}
    assert lines[2]["offsets"] == {"t": {"0": {"offset": 3, "error": None}}}


async def test_subscriber_receives_matching_events(build: SimpleNamespace) -> None:
    log = EventLog()
    with log.subscribe(EventFilter(group="odd")) as sub:
        _fill(log, build, 4)
        got = [await sub.get(timeout=1) for _ in range(2)]
        assert [e["seq"] for e in got if e] == [2, 4]
        assert await sub.get(timeout=0.01) is None  # nothing more
    assert log.subscriber_count == 0


async def test_slow_subscriber_drops_oldest_and_counts(build: SimpleNamespace) -> None:
    log = EventLog()
    before = metrics.event_subscriber_drops_total._value.get()
    sub = log.subscribe(maxsize=3)
    _fill(log, build, 10)  # never awaited: the producer must not block
    assert sub.dropped == 7
    assert metrics.event_subscriber_drops_total._value.get() - before == 7
    got = [await sub.get(timeout=1) for _ in range(3)]
    assert [e["seq"] for e in got if e] == [8, 9, 10]
    sub.close()


async def test_close_wakes_blocked_reader(build: SimpleNamespace) -> None:
    log = EventLog()
    sub = log.subscribe(maxsize=1)
    _fill(log, build, 3)  # queue full when closing
    reader = asyncio.create_task(sub.get(timeout=5))
    await asyncio.sleep(0)
    log.close()
    first = await asyncio.wait_for(reader, 5)
    assert first is None or first["seq"] == 3
    assert await asyncio.wait_for(sub.get(timeout=5), 5) is None


def _big_commit(build: SimpleNamespace, partitions: int) -> object:
    return build.commit("g", "m-1", 1, {"topic": dict.fromkeys(range(partitions), 7)})


def test_one_event_always_fits_the_ring(build: SimpleNamespace) -> None:
    log = EventLog(buffer_bytes=10_000, max_event_bytes=1_000_000)
    log.observe(_big_commit(build, 1000))
    assert log.max_event_bytes == 10_000 and 0 < log.buffered_bytes <= 10_000


def test_ring_is_bounded_in_bytes_too(build: SimpleNamespace) -> None:
    log = EventLog(capacity=1000, buffer_bytes=200_000, max_event_bytes=1_000_000)
    for _ in range(50):
        log.observe(_big_commit(build, 2000))  # ~60 KB each as JSON
    assert log.buffered_bytes <= 200_000 and 1 <= len(log) < 10
    assert [e["seq"] for e in log][-1] == 50  # the newest survive
    sizes = [len(json.dumps(e, separators=(",", ":"))) for e in log]
    assert sum(sizes) == log.buffered_bytes


def test_a_huge_event_keeps_its_identity_and_says_what_was_cut(build: SimpleNamespace) -> None:
    log = EventLog(max_event_bytes=4096)
    log.observe(_big_commit(build, 5000))
    (event,) = list(log)
    assert event["api"] == "OffsetCommit" and event["group"] == "g"
    assert event["member_id"] == "m-1" and event["generation"] == 1
    assert event["offsets"].endswith("bytes, truncated>")
    assert event["truncated"]["offsets"] > 100_000
    assert log.buffered_bytes <= 4096


def test_event_file_rotates_by_size_and_keeps_n(tmp_path: Path, build: SimpleNamespace) -> None:
    path = tmp_path / "events.jsonl"
    log = EventLog(path=path, file_max_bytes=20_000, file_keep=2)
    for _ in range(40):
        log.observe(_big_commit(build, 100))  # ~3 KB each
    log.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["events.jsonl", "events.jsonl.1", "events.jsonl.2"]
    assert all(p.stat().st_size <= 20_000 for p in tmp_path.iterdir())
    seqs = [json.loads(line)["seq"] for name in ("events.jsonl.2", "events.jsonl.1",
                                                 "events.jsonl")
            for line in (tmp_path / name).read_text().splitlines()]
    assert seqs == list(range(seqs[0], 41))  # in order, nothing lost inside what is kept


def test_queries_are_bounded_in_bytes_and_page_on(build: SimpleNamespace) -> None:
    log = EventLog(capacity=1000, max_event_bytes=1_000_000)
    for _ in range(30):
        log.observe(_big_commit(build, 2000))  # ~60 KB each
    newest = log.query(limit=1000, max_bytes=200_000)
    assert 1 <= len(newest) < 10 and newest[-1]["seq"] == 30  # the newest, still oldest first
    first = log.query(since=0, limit=1000, max_bytes=200_000)
    assert [e["seq"] for e in first] == list(range(1, len(first) + 1))
    again = log.query(since=first[-1]["seq"], limit=1000, max_bytes=200_000)
    assert again[0]["seq"] == first[-1]["seq"] + 1
    assert len(log.query(since=0, limit=1000, max_bytes=1)) == 1  # never empty-handed
