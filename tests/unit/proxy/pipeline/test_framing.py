"""Frame splitting and the Produce acks read without decoding (pure)."""

from __future__ import annotations

import struct

import pytest

import codec
from proxy.pipeline.framing import FrameError, FrameReader, produce_acks, with_size


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
