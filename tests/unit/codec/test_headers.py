"""Request/response headers: the struct fast path against the spec-driven construct decode."""

from __future__ import annotations

import random
import struct

import pytest

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.codec.headers import RequestHeader


def _pairs() -> list[tuple[int, int]]:
    return [(k, v) for k in codec.API_NAMES
            for v in range(codec.supported_versions(k)[0], codec.supported_versions(k)[1] + 1)]


PAIRS = _pairs()


def test_header_versions() -> None:
    assert codec.request_header_version(7, 0) == 0  # ControlledShutdown v0
    assert codec.request_header_version(7, 1) == 1
    assert codec.request_header_version(11, 5) == 1
    assert codec.request_header_version(11, 6) == 2
    assert codec.request_header_version(18, 3) == 2
    assert codec.response_header_version(18, 3) == 0  # ApiVersions: always v0
    assert codec.response_header_version(11, 6) == 1
    assert codec.response_header_version(11, 5) == 0
    for key, version in PAIRS:
        flex_req = codec.is_flexible(key, version, codec.Direction.REQUEST)
        assert codec.request_header_version(key, version) in ((2,) if flex_req else (0, 1))
    with pytest.raises(codec.UnknownApiError):
        codec.request_header_version(11, 99)


@pytest.mark.parametrize("client_id", [None, "", "client-1", "ünïcödé", "x" * 300])
def test_fast_path_matches_construct_decode_on_every_pair(client_id: str | None) -> None:
    rng = random.Random(3)
    for key, version in PAIRS:
        corr = rng.randint(-(2**31), 2**31 - 1)
        frame = codec.encode_request_header(key, version, corr, client_id) + b"BODY"
        fast = codec.parse_request_header(frame)
        hv = codec.request_header_version(key, version)
        slow = codec.decode_named("RequestHeader", hv, frame[: len(frame) - 4])
        assert fast.api_key == slow["request_api_key"] == key
        assert fast.api_version == slow["request_api_version"] == version
        assert fast.correlation_id == slow["correlation_id"] == corr
        assert fast.client_id == slow.get("client_id")
        assert fast.header_size == len(frame) - 4
        if hv == 0:
            assert fast.client_id is None


def test_fast_path_skips_header_tagged_fields() -> None:
    value = {"request_api_key": 11, "request_api_version": 7, "correlation_id": 5,
             "client_id": "c", "_unknown_tags": {0: b"abc", 3: b""}}
    raw = codec.encode_named("RequestHeader", 2, value)
    assert codec.decode_named("RequestHeader", 2, raw) == value
    h = codec.parse_request_header(raw + b"\x00")
    assert h == RequestHeader(11, 7, 5, "c", len(raw))


def test_request_header_v2_client_id_is_not_compact() -> None:
    frame = codec.encode_request_header(11, 6, 1, "abc")
    assert frame == struct.pack(">hhih", 11, 6, 1, 3) + b"abc" + b"\x00"


def test_unknown_api_or_version_still_reports_v1_fields() -> None:
    frame = struct.pack(">hhih", 999, 3, 77, 2) + b"id" + b"rest"
    assert codec.parse_request_header(frame) == RequestHeader(999, 3, 77, "id", None)
    frame = struct.pack(">hhih", 11, 42, 78, -1) + b"rest"
    assert codec.parse_request_header(frame) == RequestHeader(11, 42, 78, None, None)


def test_memoryview_input() -> None:
    frame = codec.encode_request_header(3, 12, 9, "m")
    assert codec.parse_request_header(memoryview(frame)) == codec.parse_request_header(frame)


def test_truncated_headers_raise_codec_error() -> None:
    frame = codec.encode_request_header(11, 6, 1, "client") + b"\x00"
    for cut in range(len(frame) - 1):
        with pytest.raises(codec.CodecError):
            codec.parse_request_header(frame[:cut])
    with pytest.raises(codec.CodecError) as err:
        codec.parse_request_header(struct.pack(">hhih", 11, 5, 1, 50) + b"short")
    assert err.value.field_path == "client_id"
    with pytest.raises(codec.CodecError):
        codec.parse_request_header(struct.pack(">hhih", 11, 5, 1, 2) + b"\xff\xfe")


def test_header_fuzz_only_codec_error() -> None:
    rng = random.Random(11)
    seeds = [codec.encode_request_header(k, v, 1, "cid") + b"\x00\x01" for k, v in PAIRS[::7]]
    for _ in range(3000):
        b = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 3)):
            b[rng.randrange(len(b))] = rng.getrandbits(8)
        data = bytes(b[: rng.randint(0, len(b))])
        try:
            h = codec.parse_request_header(data)
        except codec.CodecError:
            continue
        assert h.header_size is None or h.header_size <= len(data)


def test_response_header() -> None:
    assert codec.parse_response_header(struct.pack(">i", 3) + b"body", 11, 5) == (3, 4)
    assert codec.parse_response_header(struct.pack(">i", 3) + b"\x00body", 11, 6) == (3, 5)
    tagged = struct.pack(">i", 3) + b"\x01\x02\x02ab" + b"body"
    assert codec.parse_response_header(tagged, 11, 6) == (3, 9)
    assert codec.decode_named("ResponseHeader", 1, tagged[:9]) == {
        "correlation_id": 3, "_unknown_tags": {2: b"ab"}}
    assert codec.parse_response_header(struct.pack(">i", 3) + b"\x00", 18, 3) == (3, 4)
    assert codec.encode_response_header(11, 6, 3) == struct.pack(">i", 3) + b"\x00"
    assert codec.encode_response_header(11, 5, 3) == struct.pack(">i", 3)
    for bad in (b"\x00\x00\x00", struct.pack(">i", 3), struct.pack(">i", 3) + b"\x01\x02\x09a"):
        with pytest.raises(codec.CodecError):
            codec.parse_response_header(bad, 11, 6)


def test_decode_request_and_response_frames() -> None:
    frame = codec.encode_request((12, 4, 8, "c"), {"group_id": "g", "generation_id": 1,
                                                     "member_id": "m",
                                                     "group_instance_id": None})
    header, body = codec.decode_request(frame)
    assert header == RequestHeader(12, 4, 8, "c", 11 + 1)
    assert body["group_id"] == "g"
    resp = codec.encode_response(12, 4, 8, {"error_code": 27})
    assert codec.decode_response(resp, 12, 4) == (8, {"throttle_time_ms": 0, "error_code": 27})
