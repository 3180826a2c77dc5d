"""Frame splitting and the Produce acks read without decoding (pure)."""

from __future__ import annotations

import struct
import time

import pytest

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.proxy.pipeline.framing import (
    HEAD_BYTES,
    FrameError,
    FrameReader,
    produce_acks,
    with_size,
)


def test_frames_split_across_arbitrary_chunks() -> None:
    frames = [with_size(bytes([i]) * i) for i in range(0, 40)]
    stream = b"".join(frames)
    for chunk in (1, 3, 7, 64, len(stream)):
        reader = FrameReader(1000)
        got: list[bytes] = []
        for i in range(0, len(stream), chunk):
            got.extend(reader.feed(stream[i:i + chunk]))
        assert got == frames
        assert reader.pending == 0


def test_single_frame_chunk_is_the_same_object() -> None:
    frame = with_size(b"x" * 100)
    assert FrameReader(1000).feed(frame)[0] is frame


@pytest.mark.parametrize(("data", "reason"), [
    (struct.pack(">i", -1), "negative_length"),
    (struct.pack(">i", 1001), "frame_too_large"),
    (b"GET / HTTP/1.1\r\n", "frame_too_large"),
])
def test_bad_lengths(data: bytes, reason: str) -> None:
    with pytest.raises(FrameError) as info:
        FrameReader(1000).feed(data)
    assert info.value.reason == reason


def test_truncated_frame_is_pending() -> None:
    reader = FrameReader(1000)
    assert reader.feed(with_size(b"abcdef")[:-2]) == []
    assert reader.pending == 8


@pytest.mark.parametrize("version", [2, 3, 7, 8, 9, 11])
@pytest.mark.parametrize("acks", [0, 1, -1])
def test_produce_acks_without_decoding(version: int, acks: int) -> None:
    body: dict[str, object] = {"transactional_id": "tx" if version >= 3 else None, "acks": acks,
            "timeout_ms": 1000, "topic_data": []}
    payload = codec.encode_request_header(0, version, 1, "c") + codec.encode_body(
        0, version, codec.Direction.REQUEST, body)
    frame = with_size(payload)
    hdr = codec.parse_request_header(frame[4:])
    assert hdr.header_size is not None
    assert produce_acks(frame, 4 + hdr.header_size, version,
                        codec.is_flexible(0, version)) == acks


def _feed_one_frame(size: int, chunk: int = 64 * 1024) -> tuple[float, bytes]:
    """CPU seconds to assemble one `size`-byte frame fed in `chunk`-byte pieces, calling
    `partial()` after every piece as the pipeline does; and the frame it returned."""
    reader = FrameReader(1 << 30)
    piece = bytes(chunk)
    first = struct.pack(">i", size - 4) + piece[4:]
    started = time.process_time()
    frames = reader.feed(first)
    fed = chunk
    while not frames:
        head = reader.partial()
        assert head is not None and head[0] == size and head[1][:4] == first[:4]
        frames = reader.feed(piece if size - fed >= chunk else piece[:size - fed])
        fed += chunk
    return time.process_time() - started, frames[0]


def test_assembly_cost_is_linear_in_frame_size() -> None:
    """Joining every chunk on each `partial()` made a 100 MiB frame cost ~40 s of CPU; the
    ratio of two sizes in one run says linear (4) from quadratic (16) on any machine."""
    # The best of three per size: a busy machine (another job on the other core) only ever
    # adds time, so the minimum is the closest to the code's own cost. Both sizes are above
    # glibc's largest mmap threshold (32 MiB), so both frames land in fresh pages the kernel
    # must fault in: with 25 MiB the small one reused warm heap memory while the large one
    # paid its page faults, and a linear run once measured 13x.
    small_s, small = min((_feed_one_frame(40 << 20) for _ in range(3)), key=lambda r: r[0])
    large_s, large = min((_feed_one_frame(160 << 20) for _ in range(3)), key=lambda r: r[0])
    assert len(small) == 40 << 20 and len(large) == 160 << 20
    assert large[:4] == struct.pack(">i", (160 << 20) - 4)
    assert large_s / max(small_s, 1e-4) < 8, (small_s, large_s)


def test_partial_shows_the_head_only_and_take_partial_all_bytes() -> None:
    frame = with_size(bytes(range(256)) * 400)  # 102400 payload bytes
    reader = FrameReader(1 << 20)
    got = b""
    for i in range(0, 50_000, 1000):
        assert reader.feed(frame[i:i + 1000]) == []
        got += frame[i:i + 1000]
        head = reader.partial()
        assert head is not None
        assert head[0] == len(frame) and head[1] == got[:HEAD_BYTES]
    assert reader.partial(min_total=len(frame) + 1) is None
    assert reader.take_partial() == frame[:50_000]
    assert reader.pending == 0 and reader.partial() is None
