"""Consumer protocol payloads, against bytes laid out by hand the way Kafka clients write them.

The expected bytes are built field by field from the spec (ConsumerProtocolSubscription.json,
ConsumerProtocolAssignment.json), independently of the module under test, so a layout mistake
cannot cancel itself out in a round trip.
"""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kafka_chaos_proxy.codec.consumer_protocol import (
    assignment_partitions,
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
)
from kafka_chaos_proxy.codec.errors import CodecError


def i16(v: int) -> bytes:
    return struct.pack(">h", v)


def i32(v: int) -> bytes:
    return struct.pack(">i", v)


def s(text: str | None) -> bytes:
    if text is None:
        return i16(-1)
    raw = text.encode()
    return i16(len(raw)) + raw


def b(data: bytes | None) -> bytes:
    if data is None:
        return i32(-1)
    return i32(len(data)) + data


def tps(entries: list[tuple[str, list[int]]]) -> bytes:
    out = i32(len(entries))
    for topic, parts in entries:
        out += s(topic) + i32(len(parts)) + b"".join(i32(p) for p in parts)
    return out


# What a Java consumer (kafka-clients 3.x, cooperative-sticky) sends in JoinGroup: v3.
JAVA_SUBSCRIPTION_V3 = (
    i16(3)
    + i32(2) + s("orders") + s("payments")
    + b(None)
    + tps([("orders", [0, 2])])
    + i32(7)
    + s("rack-a")
)
# What librdkafka sends with the range assignor (v0: topics and user data only).
SUBSCRIPTION_V0 = i16(0) + i32(1) + s("orders") + b(b"")
SYNC_ASSIGNMENT_V0 = i16(0) + tps([("orders", [0, 1]), ("payments", [3])]) + b(None)


def test_decode_java_subscription_v3() -> None:
    assert decode_subscription(JAVA_SUBSCRIPTION_V3) == {
        "version": 3,
        "topics": ["orders", "payments"],
        "user_data": None,
        "owned_partitions": [{"topic": "orders", "partitions": [0, 2]}],
        "generation_id": 7,
        "rack_id": "rack-a",
    }


def test_decode_subscription_v0_has_only_v0_fields() -> None:
    assert decode_subscription(SUBSCRIPTION_V0) == {
        "version": 0,
        "topics": ["orders"],
        "user_data": b"",
    }


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        (0, i16(0) + i32(1) + s("t") + b(b"u")),
        (1, i16(1) + i32(1) + s("t") + b(b"u") + tps([])),
        (2, i16(2) + i32(1) + s("t") + b(b"u") + tps([]) + i32(-1)),
        (3, i16(3) + i32(1) + s("t") + b(b"u") + tps([]) + i32(-1) + s(None)),
    ],
)
def test_encode_subscription_fills_spec_defaults(version: int, expected: bytes) -> None:
    assert encode_subscription({"topics": ["t"], "user_data": b"u"}, version) == expected


@pytest.mark.parametrize("payload", [JAVA_SUBSCRIPTION_V3, SUBSCRIPTION_V0])
def test_subscription_round_trip(payload: bytes) -> None:
    value = decode_subscription(payload)
    assert encode_subscription(value, value["version"]) == payload


def test_newer_subscription_version_is_read_with_newest_layout_and_keeps_the_tail() -> None:
    # A future v4 appends a field; readers that know v3 read v3 and skip the rest.
    payload = i16(4) + JAVA_SUBSCRIPTION_V3[2:] + i32(42) + s("new")
    value = decode_subscription(payload)
    assert value["version"] == 4
    assert value["rack_id"] == "rack-a"
    assert value["_trailing"] == i32(42) + s("new")
    assert encode_subscription(value, 4) == payload


def test_trailing_bytes_after_a_known_version_are_kept() -> None:
    payload = SUBSCRIPTION_V0 + b"\x00\x01"
    value = decode_subscription(payload)
    assert value["_trailing"] == b"\x00\x01"
    assert encode_subscription(value, 0) == payload


def test_decode_assignment() -> None:
    assert decode_assignment(SYNC_ASSIGNMENT_V0) == {
        "version": 0,
        "assigned_partitions": [
            {"topic": "orders", "partitions": [0, 1]},
            {"topic": "payments", "partitions": [3]},
        ],
        "user_data": None,
    }
    assert encode_assignment(decode_assignment(SYNC_ASSIGNMENT_V0), 0) == SYNC_ASSIGNMENT_V0


@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_assignment_layout_is_the_same_in_every_known_version(version: int) -> None:
    value = {"assigned_partitions": [{"topic": "a", "partitions": [5]}], "user_data": b"x"}
    expected = i16(version) + tps([("a", [5])]) + b(b"x")
    assert encode_assignment(value, version) == expected
    assert decode_assignment(expected) == {"version": version, **value}


def test_assignment_partitions_merges_repeated_topics() -> None:
    payload = i16(1) + tps([("a", [0]), ("b", [1, 2]), ("a", [3])]) + b(None)
    assert assignment_partitions(payload) == {"a": [0, 3], "b": [1, 2]}


def test_empty_assignment_means_nothing_assigned() -> None:
    assert assignment_partitions(b"") == {}
    assert decode_assignment(b"")["assigned_partitions"] == []


def test_newer_assignment_version_keeps_the_tail() -> None:
    payload = i16(9) + tps([("a", [1])]) + b(None) + b"\x7f"
    value = decode_assignment(payload)
    assert value["_trailing"] == b"\x7f"
    assert assignment_partitions(payload) == {"a": [1]}
    assert encode_assignment(value, 9) == payload


@pytest.mark.parametrize(
    ("payload", "field", "offset"),
    [
        (b"\x00", "version", 0),
        (i16(-1), "version", 0),
        (i16(0) + i32(1), "topics", 2),
        (i16(0) + i32(1000) + s("a"), "topics", 2),
        (i16(0) + i32(-5), "topics", 2),
        (i16(0) + i32(1) + i16(50) + b"ab", "topics[0]", 8),
        (i16(0) + i32(1) + s("a") + i32(10), "user_data", 13),
        (i16(1) + i32(0) + b(None) + i32(1) + s("t") + i32(3) + i32(0), "owned_partitions[0]", 17),
        (i16(0) + i32(1) + i16(2) + b"\xff\xfe" + b(None), "topics[0]", 8),
    ],
)
def test_bad_subscription_names_field_and_offset(payload: bytes, field: str, offset: int) -> None:
    with pytest.raises(CodecError) as info:
        decode_subscription(payload)
    assert info.value.field_path is not None
    assert info.value.field_path.startswith(f"ConsumerProtocolSubscription.{field}")
    assert info.value.offset == offset


def test_bad_assignment_raises_codec_error() -> None:
    with pytest.raises(CodecError) as info:
        decode_assignment(i16(0) + i32(2) + s("a") + i32(0))
    assert info.value.field_path == "ConsumerProtocolAssignment.assigned_partitions"


def test_huge_count_fails_before_allocating() -> None:
    with pytest.raises(CodecError, match="cannot fit"):
        decode_assignment(i16(0) + i32(2**31 - 1))


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"topics": [1]}, "topics[0]"),
        ({"topics": "abc"}, "topics"),
        ({"topics": [], "user_data": "text"}, "user_data"),
        ({"topics": [], "generation_id": 2**40}, "generation_id"),
        ({"topics": [], "owned_partitions": [{"topic": "t", "partitions": ["x"]}]},
         "owned_partitions[0].partitions"),
    ],
)
def test_encode_rejects_values_that_do_not_fit(value: dict[str, object], field: str) -> None:
    with pytest.raises(CodecError) as info:
        encode_subscription(value, 3)
    assert info.value.field_path == f"ConsumerProtocolSubscription.{field}"


def test_encode_rejects_unencodable_string() -> None:
    with pytest.raises(CodecError) as info:
        encode_subscription({"topics": ["\ud800"]}, 0)
    assert info.value.field_path == "ConsumerProtocolSubscription.topics[0]"


def test_encode_rejects_negative_version() -> None:
    with pytest.raises(CodecError):
        encode_assignment({}, -1)


def test_hand_written_layouts_cover_the_newest_spec_versions() -> None:
    from kafka_chaos_proxy.codec import consumer_protocol
    from kafka_chaos_proxy.codec.schema import MESSAGES

    assert MESSAGES["ConsumerProtocolSubscription"].valid[1] == (
        consumer_protocol.SUBSCRIPTION_MAX_VERSION
    )
    assert MESSAGES["ConsumerProtocolAssignment"].valid[1] == (
        consumer_protocol.ASSIGNMENT_MAX_VERSION
    )


def test_reads_what_kafka_python_writes() -> None:
    """kafka-python (v0 payloads) as a client implementation of the same format."""
    cp = pytest.importorskip("kafka.protocol.old.consumer_protocol")
    metadata = cp.ConsumerProtocolMemberMetadata_v0(0, ["a", "b"], b"ud").encode()
    assert decode_subscription(metadata) == {
        "version": 0, "topics": ["a", "b"], "user_data": b"ud",
    }
    assignment = cp.ConsumerProtocolMemberAssignment_v0(0, [("a", [0, 2])], None).encode()
    assert assignment_partitions(assignment) == {"a": [0, 2]}
    assert encode_assignment(decode_assignment(assignment), 0) == assignment


_names = st.text(max_size=12)
_topic_partitions = st.lists(
    st.fixed_dictionaries(
        {"topic": _names, "partitions": st.lists(st.integers(-(2**31), 2**31 - 1), max_size=4)}
    ),
    max_size=3,
)


@settings(max_examples=200, deadline=None)
@given(
    version=st.integers(0, 5),
    topics=st.lists(_names, max_size=4),
    user_data=st.none() | st.binary(max_size=16),
    owned=_topic_partitions,
    generation_id=st.integers(-(2**31), 2**31 - 1),
    rack_id=st.none() | _names,
)
def test_subscription_round_trips(
    version: int,
    topics: list[str],
    user_data: bytes | None,
    owned: list[dict[str, object]],
    generation_id: int,
    rack_id: str | None,
) -> None:
    value: dict[str, object] = {"version": version, "topics": topics, "user_data": user_data}
    if version >= 1:
        value["owned_partitions"] = owned
    if version >= 2:
        value["generation_id"] = generation_id
    if version >= 3:
        value["rack_id"] = rack_id
    payload = encode_subscription(value, version)
    assert decode_subscription(payload) == value
    # Any prefix of a valid payload is either a shorter valid payload or a CodecError.
    for cut in range(len(payload)):
        with contextlib.suppress(CodecError):
            decode_subscription(payload[:cut])


@settings(max_examples=200, deadline=None)
@given(
    version=st.integers(0, 5),
    assigned=_topic_partitions,
    user_data=st.none() | st.binary(max_size=16),
)
def test_assignment_round_trips(
    version: int, assigned: list[dict[str, object]], user_data: bytes | None
) -> None:
    value = {"version": version, "assigned_partitions": assigned, "user_data": user_data}
    payload = encode_assignment(value, version)
    assert decode_assignment(payload) == value
