"""Hostile bytes: only CodecError may escape, and the compiled parser never disagrees.

construct's compiled parsers do not check short reads, so the engine relies on its own
length checks (against a bounded reader) to keep them inside the frame. These tests are the
proof: for every mutated input the fast (compiled-first) decode and the interpreted decode
must give the same value or both fail with CodecError, and every strict prefix of a valid
body must fail (a parser that silently read past the end would accept some of them).
Inputs and counts are fixed by seeded RNGs, so a run is bounded and reproducible.
"""

from __future__ import annotations

import contextlib
import io
import random
import struct
import tracemalloc
import uuid
from typing import Any

import pytest

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.codec import schema
from kafka_chaos_proxy.codec.messages import _codec

_INT_RANGES = {
    "int8": (-(2**7), 2**7 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint16": (0, 2**16 - 1),
    "uint32": (0, 2**32 - 1),
}


def _in(v: int, rng: tuple[int, int]) -> bool:
    return rng[0] <= v <= rng[1]


def rich_value(spec: schema.Message, version: int, fields: tuple[schema.F, ...],
               rng: random.Random) -> dict[str, Any]:
    """A valid body with every field present and one or two elements per array, so that
    mutations hit lengths, counts and nested structs rather than an empty body."""
    out: dict[str, Any] = {}
    for f in fields:
        if not _in(version, f.versions):
            continue
        if f.tag is not None and _in(version, f.tagged) and rng.random() < 0.4:
            continue
        out[f.name] = _value(spec, version, f, f.type, rng)
    if _in(version, spec.flexible) and rng.random() < 0.3:
        out["_unknown_tags"] = {99: b"\x01\x02"}
    return out


def _value(spec: schema.Message, version: int, f: schema.F, t: str, rng: random.Random) -> Any:
    if t.startswith("[]"):
        return [_value(spec, version, f, t[2:], rng) for _ in range(rng.randint(1, 2))]
    if t in _INT_RANGES:
        lo, hi = _INT_RANGES[t]
        return rng.randint(lo, hi) if rng.random() < 0.5 else rng.randint(1, 20)
    if t == "float64":
        return rng.random()
    if t == "bool":
        return True
    if t == "uuid":
        return uuid.UUID(int=rng.getrandbits(128))
    if t == "string":
        return rng.choice(["a", "topic-1", "grüße", "x" * 20])
    if t in ("bytes", "records"):
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 12)))
    sub = f.fields if f.fields is not None else spec.structs[t].fields
    return rich_value(spec, version, sub, rng)


def _pairs() -> list[tuple[int, int, str]]:
    return [(k, v, d) for k in codec.API_NAMES
            for v in range(codec.supported_versions(k)[0], codec.supported_versions(k)[1] + 1)
            for d in ("request", "response")]


PAIRS = _pairs()


def _spec(key: int, direction: str) -> schema.Message:
    return schema.MESSAGES[codec.API_NAMES[key] + ("Request" if direction == "request"
                                                   else "Response")]


_HUGE = [b"\x7f\xff\xff\xff", b"\xff\xff\xff\xff\x0f", b"\x80\x00\x00\x00", b"\xff\xfe",
         b"\xff\xff\xff\xff\xff\xff", b"\x00\x00\x10\x00"]


def mutations(seed: bytes, rng: random.Random, count: int) -> list[bytes]:
    out: list[bytes] = []
    for _ in range(count):
        kind = rng.randrange(6)
        pos = rng.randint(0, len(seed))
        if kind == 0 and seed:  # flip bits
            b = bytearray(seed)
            for _ in range(rng.randint(1, 3)):
                i = rng.randrange(len(b))
                b[i] ^= 1 << rng.randrange(8)
            out.append(bytes(b))
        elif kind == 1:  # insert a huge/negative length
            out.append(seed[:pos] + rng.choice(_HUGE) + seed[pos:])
        elif kind == 2:  # overwrite with a huge length
            h = rng.choice(_HUGE)
            out.append(seed[:pos] + h + seed[pos + len(h):])
        elif kind == 3:  # random bytes
            out.append(bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 48))))
        elif kind == 4:  # delete a range
            out.append(seed[:pos] + seed[pos + rng.randint(1, 8):])
        else:  # duplicate a range
            out.append(seed[:pos] + seed[pos:pos + 6] + seed[pos:])
    return out


def _outcome(fn: Any, *args: Any) -> Any:
    try:
        return ("ok", fn(*args))
    except codec.CodecError as exc:
        return ("error", exc.field_path)


@pytest.mark.parametrize("chunk", range(8))
def test_mutated_bodies_only_raise_codec_error(chunk: int) -> None:
    rng = random.Random(1000 + chunk)
    for key, version, direction in PAIRS[chunk::8]:
        spec = _spec(key, direction)
        seed = codec.encode_body(key, version, direction,
                                 rich_value(spec, version, spec.fields, rng))
        slow = _codec(key, version, direction).parse_slow
        for data in mutations(seed, rng, 60):
            fast = _outcome(codec.decode_body, key, version, direction, data)
            interp = _outcome(lambda d, parse=slow: parse(d)[0], data)
            # repr: a mutated float64 may be NaN, which is never == itself
            assert repr(fast) == repr(interp), (key, version, direction, data.hex())


@pytest.mark.parametrize("chunk", range(4))
def test_every_strict_prefix_fails(chunk: int) -> None:
    rng = random.Random(2000 + chunk)
    for key, version, direction in PAIRS[chunk::4]:
        spec = _spec(key, direction)
        seed = codec.encode_body(key, version, direction,
                                 rich_value(spec, version, spec.fields, rng))
        cuts = range(len(seed)) if len(seed) <= 64 else sorted(rng.sample(range(len(seed)), 64))
        for cut in cuts:
            with pytest.raises(codec.CodecError) as err:
                codec.decode_body(key, version, direction, seed[:cut])
            assert err.value.api_key == key and err.value.api_version == version
            assert err.value.offset is not None and 0 <= err.value.offset <= cut


def test_random_garbage_against_group_apis() -> None:
    rng = random.Random(7)
    group_apis = [codec.api_key_of(n) for n in ("JoinGroup", "SyncGroup", "Heartbeat",
                                                 "LeaveGroup", "OffsetCommit", "OffsetFetch",
                                                 "FindCoordinator", "Metadata", "ApiVersions",
                                                 "ConsumerGroupHeartbeat", "DescribeGroups")]
    for key in group_apis:
        lo, hi = codec.supported_versions(key)
        for version in range(lo, hi + 1):
            for direction in ("request", "response"):
                for _ in range(30):
                    data = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 80)))
                    with contextlib.suppress(codec.CodecError):
                        codec.decode_body(key, version, direction, data)


_BAD_VALUES: list[Any] = [None, "s", b"b", 1.5, 2**70, -1, True, [], {}, [None], {"x": 1},
                          uuid.UUID(int=5), "\ud800", "x" * 40000]


def _corrupt(value: Any, rng: random.Random) -> Any:
    """Replace one randomly chosen leaf (or container) of a body with a wrong-ish value."""
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = rng.choice(sorted(value, key=str))
        return {**value, key: _corrupt(value[key], rng)}
    if isinstance(value, list) and value and rng.random() < 0.8:
        i = rng.randrange(len(value))
        return [*value[:i], _corrupt(value[i], rng), *value[i + 1:]]
    return rng.choice(_BAD_VALUES)


@pytest.mark.parametrize("chunk", range(4))
def test_compiled_and_interpreted_encoders_agree_on_bad_values(chunk: int) -> None:
    """Same bytes or both refuse: the compiled writer is never more lenient."""
    rng = random.Random(3000 + chunk)
    for key, version, direction in PAIRS[chunk::4]:
        spec = _spec(key, direction)
        c = _codec(key, version, direction)
        for _ in range(12):
            value = _corrupt(rich_value(spec, version, spec.fields, rng), rng)
            out = io.BytesIO()
            try:
                c.compiled().buildfunc(value, out, None)
                fast: Any = out.getvalue()
            except Exception:  # any failure counts as a refusal
                fast = "refused"
            try:
                slow: Any = c.build_slow(value)
            except codec.CodecError as exc:
                slow = "refused"
                assert exc.field_path is not None
            assert fast == slow, (key, version, direction, value)


def test_huge_lengths_do_not_allocate() -> None:
    """A 2 GiB length prefix must fail on the length check, not after allocating."""
    cases = [
        (11, 5, "request", struct.pack(">h", 0x7FFF)),  # group_id string length
        (14, 3, "request", b"\x00\x01g" + struct.pack(">i", 1) + b"\x00\x01m" + b"\xff\xff"
         + struct.pack(">i", 0x7FFFFFFF)),  # assignments count
        (3, 12, "response", b"\x00\x00\x00\x00" + b"\xff\xff\xff\xff\x0f"),  # compact array
        (0, 9, "request", b"\x00" + b"\x00\x00" + b"\x00\x00\x00\x00" + b"\x02" + b"\x02t"
         + b"\x02" + b"\x00\x00\x00\x00" + b"\xff\xff\xff\xff\x07"),  # compact records
    ]
    tracemalloc.start()
    try:
        for key, version, direction, data in cases:
            tracemalloc.reset_peak()
            with pytest.raises(codec.CodecError):
                codec.decode_body(key, version, direction, data)
            _, peak = tracemalloc.get_traced_memory()
            assert peak < 1 << 20, (key, peak)
    finally:
        tracemalloc.stop()


def test_error_names_field_path_and_offset() -> None:
    body = (b"\x00\x02g1" + struct.pack(">ii", 1, 2) + b"\x00\x00" + b"\xff\xff" + b"\x00\x01c"
            + struct.pack(">i", 2) + b"\x00\x01a" + struct.pack(">i", 0) + b"\x00\x01b"
            + struct.pack(">i", 50) + b"xx")
    with pytest.raises(codec.CodecError) as err:
        codec.decode_body(11, 5, "request", body)
    e = err.value
    assert e.field_path == "protocols[1].metadata"
    assert e.offset == len(body) - 6
    assert (e.api_key, e.api_version, e.direction) == (11, 5, "request")
    assert "protocols[1].metadata" in str(e) and "offset=" in str(e)


def test_invalid_utf8_is_a_codec_error() -> None:
    with pytest.raises(codec.CodecError) as err:
        codec.decode_body(11, 5, "request", b"\x00\x02\xff\xfe" + b"\x00" * 30)
    assert err.value.field_path == "group_id" and err.value.offset == 0


def test_negative_and_null_counts() -> None:
    # JoinGroup v5 protocols count -2: negative, and -1: null in a non-nullable array.
    head = b"\x00\x01g" + struct.pack(">ii", 1, 2) + b"\x00\x00" + b"\xff\xff" + b"\x00\x01c"
    for count in (-2, -1, -(2**31)):
        with pytest.raises(codec.CodecError) as err:
            codec.decode_body(11, 5, "request", head + struct.pack(">i", count))
        assert err.value.field_path == "protocols"


def test_unknown_api_and_version() -> None:
    with pytest.raises(codec.UnknownApiError) as err:
        codec.decode_body(999, 0, "request", b"")
    assert err.value.api_key == 999
    with pytest.raises(codec.CodecError):
        codec.decode_body(11, 99, "request", b"")
    with pytest.raises(codec.CodecError):
        codec.decode_request(struct.pack(">hhih", 11, 99, 1, -1) + b"\x00")


def test_tagged_field_with_trailing_bytes_is_rejected() -> None:
    # ApiVersions v3 response, tag 1 (finalized_features_epoch, int64) given 9 bytes.
    body = (b"\x00\x00" + b"\x01" + b"\x00\x00\x00\x00" + b"\x01" + b"\x01\x09" + b"\x00" * 9)
    with pytest.raises(codec.CodecError):
        codec.decode_body(18, 3, "response", body)


def test_varint_too_long() -> None:
    with pytest.raises(codec.CodecError):
        codec.decode_body(18, 3, "request", b"\xff\xff\xff\xff\xff\x01")


def test_errors_inside_tagged_fields_have_full_path_and_frame_offset() -> None:
    value = {"responses": [{"topic_id": uuid.UUID(int=1), "partitions": [
        {"partition_index": 0, "error_code": 0, "high_watermark": 0, "last_stable_offset": 0,
         "log_start_offset": 0, "aborted_transactions": None, "preferred_read_replica": -1,
         "records": None, "diverging_epoch": {"epoch": 1, "end_offset": 2}}]}]}
    good = codec.encode_body(1, 13, "response", value)
    assert codec.decode_body(1, 13, "response", good) == {
        "throttle_time_ms": 0, "error_code": 0, "session_id": 0, **value}
    # The diverging_epoch tag (0) holds epoch int32 + end_offset int64 + empty tags = 13 bytes.
    tag_at = good.index(b"\x00\x0d" + struct.pack(">i", 1))
    # Shrink its declared size to 8: end_offset is cut short inside the tag.
    bad = good[:tag_at] + b"\x00\x08" + good[tag_at + 2: tag_at + 2 + 8] + good[tag_at + 15:]
    with pytest.raises(codec.CodecError) as err:
        codec.decode_body(1, 13, "response", bad)
    assert err.value.field_path == "responses[0].partitions[0].diverging_epoch.end_offset"
    assert err.value.offset == tag_at + 2 + 4
