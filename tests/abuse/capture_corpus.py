"""Record real Kafka frames for the fuzz target's seed corpus (`tests/abuse/corpus/`).

Starts a local broker (`proxy.real_kafka.provide_kafka`) and a proxy in front of it, drives a
real session through the proxy (aiokafka producer and consumer group, confluent-kafka producer
and consumer: ApiVersions, Metadata, Produce, Fetch, FindCoordinator, JoinGroup, SyncGroup,
Heartbeat, OffsetCommit, OffsetFetch, LeaveGroup, ...), and writes every distinct request and
response frame the proxy's frame readers saw, in the input format of `fuzz_frames.py`: a
5-byte prefix (chunking seed, then the api key and version to decode a response as) and the
frame with its size prefix. At most a few files per (direction, api, version), none over
64 KiB, so the corpus stays small.

    .venv/bin/python tests/abuse/capture_corpus.py [tests/abuse/corpus]
"""

from __future__ import annotations

import asyncio
import hashlib
import struct
import sys
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from kafka_chaos_proxy import codec  # noqa: E402
from kafka_chaos_proxy.proxy.pipeline import core  # noqa: E402
from kafka_chaos_proxy.proxy.pipeline.framing import FrameReader  # noqa: E402

PER_KIND = 3
MAX_FRAME = 64 * 1024

_readers: dict[int, tuple[str, Any]] = {}  # id(reader) -> (direction, connection)
_pending: dict[int, dict[int, tuple[int, int]]] = defaultdict(dict)  # conn -> corr -> api
_saved: dict[tuple[str, int, int], int] = defaultdict(int)
_out: Path


def _save(direction: str, api_key: int, version: int, frame: bytes) -> None:
    kind = (direction, api_key, version)
    if _saved[kind] >= PER_KIND or len(frame) > MAX_FRAME:
        return
    _saved[kind] += 1
    name = codec.API_NAMES.get(api_key, str(api_key))
    digest = hashlib.sha1(frame).hexdigest()[:8]
    data = struct.pack(">Bhh", len(frame) % 251, api_key, version) + frame
    (_out / f"{direction}-{name}-v{version}-{digest}").write_bytes(data)


def _record(reader: FrameReader, frames: list[bytes]) -> None:
    entry = _readers.get(id(reader))
    if entry is None:
        return
    direction, conn = entry
    pending = _pending[id(conn)]
    for frame in frames:
        try:
            if direction == "req":
                hdr = codec.parse_request_header(memoryview(frame)[4:])
                pending[hdr.correlation_id] = (hdr.api_key, hdr.api_version)
                _save("req", hdr.api_key, hdr.api_version, frame)
            else:
                (corr,) = struct.unpack_from(">i", frame, 4)
                api = pending.pop(corr, None)
                if api is not None:
                    _save("resp", api[0], api[1], frame)
        except (codec.CodecError, struct.error):
            continue


def _install() -> None:
    feed = FrameReader.feed
    init = core.ConnectionCore.__init__

    def recording_feed(self: FrameReader, data: bytes) -> list[bytes]:
        frames = feed(self, data)
        if frames:
            _record(self, frames)
        return frames

    def recording_init(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        _readers[id(self.creader)] = ("req", self)
        _readers[id(self.ureader)] = ("resp", self)

    FrameReader.feed = recording_feed  # type: ignore[method-assign]
    core.ConnectionCore.__init__ = recording_init  # type: ignore[method-assign]


async def _aiokafka_session(bootstrap: str, topic: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(30):
            await producer.send_and_wait(topic, f"v{i}".encode(), key=f"k{i}".encode())
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"{topic}-g",
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                heartbeat_interval_ms=300, session_timeout_ms=6000)
    await consumer.start()
    try:
        seen = 0
        for _ in range(40):
            batches = await consumer.getmany(timeout_ms=250)
            seen += sum(len(b) for b in batches.values())
            if seen >= 30:
                break
        await consumer.commit()
        await asyncio.sleep(1.0)  # a heartbeat or two
    finally:
        await consumer.stop()  # LeaveGroup


def _confluent_session(bootstrap: str, topic: str) -> None:
    from confluent_kafka import Consumer, Producer

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for i in range(30):
        producer.produce(topic, f"c{i}".encode(), f"k{i}".encode())
    producer.flush(30)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{topic}-c",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    seen = 0
    for _ in range(100):
        msg = consumer.poll(0.2)
        if msg is not None and not msg.error():
            seen += 1
            if seen >= 30:
                consumer.commit(message=msg, asynchronous=False)
                break
    consumer.close()


def main(out: Path) -> None:
    global _out
    _out = out
    out.mkdir(parents=True, exist_ok=True)
    _install()
    from kafka_chaos_proxy.proxy.real_kafka import provide_kafka
    from tests.support.chaos import create_topic
    from tests.support.proxies import make_proxy

    with provide_kafka(nodes=1) as cluster:
        proxy = make_proxy(cluster)
        try:
            topic = f"kcp-corpus-{uuid.uuid4().hex[:6]}"
            create_topic(cluster.bootstrap_servers, topic, 3)
            asyncio.run(_aiokafka_session(proxy.bootstrap_servers, topic))
            _confluent_session(proxy.bootstrap_servers, topic)
        finally:
            proxy.stop()
    total = sum(f.stat().st_size for f in out.iterdir())
    print(f"{sum(_saved.values())} frames, {total} bytes in {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "corpus")
