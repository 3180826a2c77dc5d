"""Round trips over every (api, version, direction), plus hand-built byte vectors.

The property: a random valid body (drawn from the schema itself, respecting version
presence, nullability and tagged-field defaults) encodes, decodes back equal, re-encodes to
the same bytes, and the compiled and interpreted parsers agree on it. The hand vectors pin
the engine to the spec independently of the engine's own encoder.
"""

from __future__ import annotations

import struct
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.codec import Direction, schema
from kafka_chaos_proxy.codec.messages import _codec, _named_codec

MAX = 0x7FFF


def _in(v: int, rng: tuple[int, int]) -> bool:
    return rng[0] <= v <= rng[1]


_INT_RANGES = {
    "int8": (-(2**7), 2**7 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint16": (0, 2**16 - 1),
    "uint32": (0, 2**32 - 1),
}
_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=6)


def _primitive(t: str, nullable: bool) -> st.SearchStrategy[Any]:
    if t in _INT_RANGES:
        lo, hi = _INT_RANGES[t]
        return st.integers(lo, hi)
    base: st.SearchStrategy[Any]
    if t == "float64":
        return st.floats(allow_nan=False)
    if t == "bool":
        return st.booleans()
    if t == "uuid":
        return st.uuids(version=4) | st.just(uuid.UUID(int=0))
    base = _TEXT if t == "string" else st.binary(max_size=6)  # bytes, records
    return st.none() | base if nullable else base


class Strategies:
    """Schema-driven hypothesis strategies for one spec at one version."""

    def __init__(self, spec: schema.Message, version: int) -> None:
        self.spec = spec
        self.version = version
        self.flexible = _in(version, spec.flexible)

    def fields_of(self, f: schema.F, type_name: str) -> tuple[schema.F, ...]:
        if f.fields is not None:
            return f.fields
        return self.spec.structs[type_name].fields

    def field(self, f: schema.F) -> st.SearchStrategy[Any]:
        nullable = _in(self.version, f.nullable)
        t = f.type
        if t.startswith("[]"):
            elem = t[2:]
            elem_st = (self.struct(self.fields_of(f, elem)) if elem not in _PRIMS
                       else _primitive(elem, False))
            lists = st.lists(elem_st, max_size=2)
            return st.none() | lists if nullable else lists
        if t in _PRIMS:
            return _primitive(t, nullable)
        sub = self.struct(self.fields_of(f, t))
        return st.none() | sub if nullable else sub

    def struct(self, fields: tuple[schema.F, ...]) -> st.SearchStrategy[dict[str, Any]]:
        required: dict[str, st.SearchStrategy[Any]] = {}
        optional: dict[str, st.SearchStrategy[Any]] = {}
        known_tags: set[int] = set()
        for f in fields:
            if not _in(self.version, f.versions):
                continue
            if f.tag is not None and _in(self.version, f.tagged):
                known_tags.add(f.tag)
                default = _kafka_default(self, f)
                optional[f.name] = self.field(f).filter(lambda v, d=default: v != d)
            else:
                required[f.name] = self.field(f)
        if self.flexible:
            unknown = st.dictionaries(
                st.integers(0, 40).filter(lambda t: t not in known_tags),
                st.binary(max_size=4), min_size=1, max_size=2)
            optional["_unknown_tags"] = unknown
        return st.fixed_dictionaries(required, optional=optional)


_PRIMS = frozenset(_INT_RANGES) | {"float64", "bool", "uuid", "string", "bytes", "records"}


def _kafka_default(s: Strategies, f: schema.F) -> Any:
    """Kafka's notion of a field's default (a tagged field equal to it is not written)."""
    t, d = f.type, f.default
    if d == "null":
        return None
    if t in _INT_RANGES:
        return int(d, 0) if d and d.lower().startswith(("0x", "-0x")) else int(d or 0)
    if t == "float64":
        return float(d or 0)
    if t == "bool":
        return (d or "").lower() == "true"
    if t == "string":
        return d or ""
    if t == "bytes":
        return b""
    if t == "records":
        return None
    if t == "uuid":
        return uuid.UUID(int=0)
    if t.startswith("[]"):
        return []
    return {g.name: _kafka_default(s, g) for g in s.fields_of(f, t)
            if _in(s.version, g.versions) and not (g.tag is not None
                                                   and _in(s.version, g.tagged))}


def _all_pairs() -> list[tuple[int, int, str]]:
    pairs = []
    for key in codec.API_NAMES:
        lo, hi = codec.supported_versions(key)
        for v in range(lo, hi + 1):
            for d in ("request", "response"):
                pairs.append((key, v, d))
    return pairs


PAIRS = _all_pairs()


def _spec(key: int, direction: str) -> schema.Message:
    suffix = "Request" if direction == "request" else "Response"
    return schema.MESSAGES[codec.API_NAMES[key] + suffix]


@pytest.mark.parametrize(("api_key", "version", "direction"), PAIRS,
                         ids=[f"{codec.API_NAMES[k]}-v{v}-{d}" for k, v, d in PAIRS])
@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.data_too_large])
@given(data=st.data())
def test_roundtrip_every_api_version(api_key: int, version: int, direction: str,
                                     data: st.DataObject) -> None:
    strategy = Strategies(_spec(api_key, direction), version)
    value = data.draw(strategy.struct(_spec(api_key, direction).fields))
    encoded = codec.encode_body(api_key, version, direction, value)
    decoded = codec.decode_body(api_key, version, direction, encoded)
    assert decoded == value
    assert codec.encode_body(api_key, version, direction, decoded) == encoded
    # The compiled and interpreted paths agree in both directions.
    slow, end = _codec(api_key, version, direction).parse_slow(encoded)
    assert slow == decoded and end == len(encoded)
    assert _codec(api_key, version, direction).build_slow(value) == encoded


def test_every_pair_covered() -> None:
    """All request/response specs with an api key are exercised, at every valid version."""
    keys = {s.api_key for s in schema.MESSAGES.values() if s.kind == "request"}
    assert keys == set(codec.API_NAMES)
    assert len(PAIRS) == 2 * sum(s.valid[1] - s.valid[0] + 1 for s in schema.MESSAGES.values()
                                 if s.kind == "request")


DATA_SPECS = sorted((n, v) for n, s in schema.MESSAGES.items() if s.kind in ("data", "header")
                    for v in range(s.valid[0], s.valid[1] + 1))


@pytest.mark.parametrize(("name", "version"), DATA_SPECS)
@settings(max_examples=10, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data())
def test_roundtrip_named_specs(name: str, version: int, data: st.DataObject) -> None:
    spec = schema.MESSAGES[name]
    value = data.draw(Strategies(spec, version).struct(spec.fields))
    encoded = codec.encode_named(name, version, value)
    assert codec.decode_named(name, version, encoded) == value
    assert codec.encode_named(name, version, codec.decode_named(name, version, encoded)) == encoded
    assert _named_codec(name, version).parse_slow(encoded)[0] == value


# --- hand-built vectors ------------------------------------------------------------------------


def s16(text: str | None) -> bytes:
    if text is None:
        return struct.pack(">h", -1)
    raw = text.encode()
    return struct.pack(">h", len(raw)) + raw


def cstr(text: str | None) -> bytes:
    """COMPACT_(NULLABLE_)STRING: unsigned varint length+1 (single byte for short strings)."""
    if text is None:
        return b"\x00"
    raw = text.encode()
    return bytes([len(raw) + 1]) + raw


def b32(data: bytes) -> bytes:
    return struct.pack(">i", len(data)) + data


def i16(x: int) -> bytes:
    return struct.pack(">h", x)


def i32(x: int) -> bytes:
    return struct.pack(">i", x)


def test_join_group_v5_request_by_hand() -> None:
    body = (s16("g1") + i32(10_000) + i32(300_000) + s16("") + s16("inst-1") + s16("consumer")
            + i32(2) + s16("range") + b32(b"\x00\x01") + s16("cooperative-sticky") + b32(b""))
    frame = struct.pack(">hhi", 11, 5, 7) + s16("cli") + body
    header, value = codec.decode_request(frame)
    assert header == codec.RequestHeader(11, 5, 7, "cli", 13)
    assert value == {
        "group_id": "g1", "session_timeout_ms": 10_000, "rebalance_timeout_ms": 300_000,
        "member_id": "", "group_instance_id": "inst-1", "protocol_type": "consumer",
        "protocols": [{"name": "range", "metadata": b"\x00\x01"},
                      {"name": "cooperative-sticky", "metadata": b""}],
    }
    assert codec.encode_body(11, 5, Direction.REQUEST, value) == body


def test_join_group_v9_response_flexible_by_hand() -> None:
    body = (i32(0) + i16(0) + i32(3) + cstr("consumer") + cstr("range") + cstr("leader")
            + b"\x00"  # skip_assignment
            + cstr("m1") + bytes([2])  # members: compact array of 1
            + cstr("m1") + cstr(None) + bytes([3]) + b"\xaa\xbb" + b"\x00"  # member + its tags
            + b"\x00")  # top-level tags
    frame = i32(99) + b"\x00" + body
    corr, value = codec.decode_response(frame, 11, 9)
    assert corr == 99
    assert value == {
        "throttle_time_ms": 0, "error_code": 0, "generation_id": 3, "protocol_type": "consumer",
        "protocol_name": "range", "skip_assignment": False, "leader": "leader",
        "member_id": "m1",
        "members": [{"member_id": "m1", "group_instance_id": None, "metadata": b"\xaa\xbb"}],
    }
    assert codec.encode_body(11, 9, "response", value) == body


def test_sync_group_v3_request_and_v5_response_by_hand() -> None:
    req = (s16("g") + i32(4) + s16("m") + s16(None) + i32(1) + s16("m") + b32(b"\x01\x02\x03"))
    assert codec.decode_body(14, 3, "request", req) == {
        "group_id": "g", "generation_id": 4, "member_id": "m", "group_instance_id": None,
        "assignments": [{"member_id": "m", "assignment": b"\x01\x02\x03"}],
    }
    resp = i32(0) + i16(27) + cstr("consumer") + cstr(None) + bytes([1]) + b"\x00"
    value = codec.decode_body(14, 5, "response", resp)
    assert value == {"throttle_time_ms": 0, "error_code": 27, "protocol_type": "consumer",
                     "protocol_name": None, "assignment": b""}
    assert codec.error_name(value["error_code"]) == "REBALANCE_IN_PROGRESS"
    assert codec.encode_body(14, 5, "response", value) == resp


def test_metadata_v1_response_by_hand_and_prefix() -> None:
    brokers = i32(1) + i32(1) + s16("b1") + i32(9092) + s16(None)
    rest = i32(1) + i32(1) + i16(0) + s16("t") + b"\x00" + i32(1) + (
        i16(0) + i32(0) + i32(1) + i32(1) + i32(1) + i32(1) + i32(1))
    body = brokers + rest
    value = codec.decode_body(3, 1, "response", body)
    assert value["brokers"] == [{"node_id": 1, "host": "b1", "port": 9092, "rack": None}]
    assert value["controller_id"] == 1
    assert value["topics"][0]["partitions"][0]["isr_nodes"] == [1]
    head, end = codec.decode_body_prefix(3, 1, "response", body, "brokers")
    assert head == {"brokers": value["brokers"]} and end == len(brokers)
    # Rewrite the brokers and splice the untouched tail, as the proxy does.
    assert codec.encode_body_prefix(3, 1, "response", head, "brokers") == body[:end]
    head["brokers"][0]["host"] = "proxy"
    spliced = codec.encode_body_prefix(3, 1, "response", head, "brokers") + body[end:]
    again = codec.decode_body(3, 1, "response", spliced)
    assert again["brokers"][0]["host"] == "proxy"
    assert again["topics"] == value["topics"]


def test_prefix_of_unknown_or_tagged_field_is_an_error() -> None:
    with pytest.raises(codec.CodecError):
        codec.decode_body_prefix(3, 12, "response", b"", "no_such_field")
    with pytest.raises(codec.CodecError):
        codec.decode_body_prefix(18, 3, "response", b"", "finalized_features_epoch")


def test_metadata_v12_prefix_offset_is_flexible() -> None:
    value = {"throttle_time_ms": 5, "brokers": [{"node_id": 2, "host": "h", "port": 1,
                                                 "rack": "r"}], "cluster_id": None,
             "controller_id": 2, "topics": []}
    body = codec.encode_body(3, 12, "response", value)
    head, end = codec.decode_body_prefix(3, 12, "response", body, "brokers")
    assert head == {"throttle_time_ms": 5, "brokers": value["brokers"]}
    assert codec.encode_body_prefix(3, 12, "response", head, "brokers") == body[:end]
    assert body[:end] == i32(5) + bytes([2]) + i32(2) + cstr("h") + i32(1) + cstr("r") + b"\x00"


def test_api_versions_v3_response_by_hand_with_tags() -> None:
    # error 0, api_keys [ {18, 0, 3, tags: none} ], throttle 0, tagged: 1=FinalizedFeaturesEpoch
    body = (i16(0) + bytes([2]) + i16(18) + i16(0) + i16(3) + b"\x00" + i32(0)
            + b"\x02" + b"\x01\x08" + struct.pack(">q", 7) + b"\x07\x01\xee")
    value = codec.decode_body(18, 3, "response", body)
    assert value == {"error_code": 0,
                     "api_keys": [{"api_key": 18, "min_version": 0, "max_version": 3}],
                     "throttle_time_ms": 0, "finalized_features_epoch": 7,
                     "_unknown_tags": {7: b"\xee"}}
    assert codec.encode_body(18, 3, "response", value) == body
    # ApiVersions responses always use header v0, even when the body is flexible.
    assert codec.response_header_version(18, 3) == 0
    assert codec.encode_response_header(18, 3, 5) == i32(5)


def test_api_versions_v0_request_is_empty() -> None:
    assert codec.decode_body(18, 0, "request", b"") == {}
    assert codec.encode_body(18, 0, "request", {}) == b""


def test_nullable_struct_marker() -> None:
    # ConsumerGroupHeartbeat v0 response: Assignment is a nullable struct (-1 / 1 marker).
    base = {"throttle_time_ms": 0, "error_code": 0, "error_message": None, "member_id": "m",
            "member_epoch": 1, "heartbeat_interval_ms": 5}
    without = codec.encode_body(68, 0, "response", {**base, "assignment": None})
    assert without.endswith(b"\xff\x00")
    value = {**base, "assignment": {"topic_partitions": [
        {"topic_id": uuid.UUID(int=1), "partitions": [0, 1]}]}}
    data = codec.encode_body(68, 0, "response", value)
    assert codec.decode_body(68, 0, "response", data) == value


def test_missing_keys_take_defaults() -> None:
    data = codec.encode_body(11, 5, "request", {"group_id": "g"})
    value = codec.decode_body(11, 5, "request", data)
    assert value["rebalance_timeout_ms"] == -1  # spec default
    assert value["group_instance_id"] is None  # nullable, default null
    assert value["protocols"] == [] and value["session_timeout_ms"] == 0


def test_tagged_field_at_default_is_not_written() -> None:
    plain = codec.encode_body(18, 3, "response", {})
    assert codec.encode_body(18, 3, "response", {"finalized_features_epoch": -1}) == plain
    assert "finalized_features_epoch" not in codec.decode_body(18, 3, "response", plain)


def test_named_consumer_protocol_subscription() -> None:
    payload = (i32(1) + s16("t") + b32(b"ud") + i32(1) + s16("t") + i32(1) + i32(0) + i32(5)
               + s16("rack"))
    value = codec.decode_named("ConsumerProtocolSubscription", 3, payload)
    assert value == {"topics": ["t"], "user_data": b"ud",
                     "owned_partitions": [{"topic": "t", "partitions": [0]}],
                     "generation_id": 5, "rack_id": "rack"}
    assert codec.encode_named("ConsumerProtocolSubscription", 3, value) == payload
    # a newer writer's extra bytes are tolerated when asked
    assert codec.decode_named("ConsumerProtocolSubscription", 3, payload + b"\x00",
                              exact=False) == value
    with pytest.raises(codec.CodecError):
        codec.decode_named("ConsumerProtocolSubscription", 3, payload + b"\x00")


def test_named_common_struct() -> None:
    data = i32(3) + struct.pack(">q", 10)
    assert codec.decode_named("FetchResponse.EpochEndOffset", 12, data + b"\x00") == {
        "epoch": 3, "end_offset": 10}


def test_encode_errors_name_the_field() -> None:
    with pytest.raises(codec.CodecError) as err:
        codec.encode_body(11, 5, "request", {"protocols": [{"name": 5}]})
    assert err.value.field_path == "protocols[0].name"
    with pytest.raises(codec.CodecError):
        codec.encode_body(11, 5, "request", {"session_timeout_ms": 2**40})
