"""Synthesized error responses: valid on the wire, with the code where clients read it.

Two layers of checks:

* hand-written expectations (from the response specs, field by field) for the group APIs,
  Metadata and ApiVersions, the responses whose exact shape clients act on during a rebalance;
* a schema walk over every API and version: the response encodes and decodes, every error
  code field carries the code, every error message field the error's name, and a response with
  no top-level code has one code per entry the request named.

Every expectation is compared after an encode -> decode round trip through the codec, so a
body that would not survive the wire fails here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.codec.error_response import error_response
from kafka_chaos_proxy.codec.schema import MESSAGES, F, Message

REQ = codec.Direction.REQUEST
RESP = codec.Direction.RESPONSE
NOT_COORDINATOR = 16
REBALANCE_IN_PROGRESS = 27
UNKNOWN_MEMBER_ID = 25
TOPIC_AUTHORIZATION_FAILED = 29


def wire(api_key: int, version: int, direction: codec.Direction, body: dict[str, Any]) -> Any:
    """Body as it reads back off the wire (all fields of the version, spec defaults filled)."""
    return codec.decode_body(
        api_key, version, direction, codec.encode_body(api_key, version, direction, body)
    )


def synth(api_key: int, version: int, request: dict[str, Any], code: int) -> Any:
    request = wire(api_key, version, REQ, request)
    return wire(api_key, version, RESP, error_response(api_key, version, request, code))


# --- hand-written expectations -------------------------------------------------------------

JOIN_REQUEST = {
    "group_id": "g",
    "session_timeout_ms": 10000,
    "rebalance_timeout_ms": 30000,
    "member_id": "m-1",
    "group_instance_id": None,
    "protocol_type": "consumer",
    "protocols": [{"name": "range", "metadata": b"\x00\x00"}],
    "reason": "rejoin",
}


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        (0, {"error_code": 27, "generation_id": -1, "protocol_name": "", "leader": "",
             "member_id": "m-1", "members": []}),
        (2, {"throttle_time_ms": 0, "error_code": 27, "generation_id": -1, "protocol_name": "",
             "leader": "", "member_id": "m-1", "members": []}),
        (7, {"throttle_time_ms": 0, "error_code": 27, "generation_id": -1, "protocol_type": None,
             "protocol_name": None, "leader": "", "member_id": "m-1", "members": []}),
        (9, {"throttle_time_ms": 0, "error_code": 27, "generation_id": -1, "protocol_type": None,
             "protocol_name": None, "leader": "", "skip_assignment": False, "member_id": "m-1",
             "members": []}),
    ],
)
def test_join_group(version: int, expected: dict[str, Any]) -> None:
    assert synth(11, version, JOIN_REQUEST, REBALANCE_IN_PROGRESS) == expected


SYNC_REQUEST = {
    "group_id": "g",
    "generation_id": 3,
    "member_id": "m-1",
    "protocol_type": "consumer",
    "protocol_name": "range",
    "assignments": [{"member_id": "m-1", "assignment": b"\x00\x00"}],
}


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        (0, {"error_code": 27, "assignment": b""}),
        (1, {"throttle_time_ms": 0, "error_code": 27, "assignment": b""}),
        (5, {"throttle_time_ms": 0, "error_code": 27, "protocol_type": None,
             "protocol_name": None, "assignment": b""}),
    ],
)
def test_sync_group(version: int, expected: dict[str, Any]) -> None:
    assert synth(14, version, SYNC_REQUEST, REBALANCE_IN_PROGRESS) == expected


@pytest.mark.parametrize(
    ("version", "expected"),
    [(0, {"error_code": 25}), (4, {"throttle_time_ms": 0, "error_code": 25})],
)
def test_heartbeat(version: int, expected: dict[str, Any]) -> None:
    request = {"group_id": "g", "generation_id": 3, "member_id": "m-1"}
    assert synth(12, version, request, UNKNOWN_MEMBER_ID) == expected


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        (0, {"error_code": 25}),
        (2, {"throttle_time_ms": 0, "error_code": 25}),
        (3, {"throttle_time_ms": 0, "error_code": 25, "members": [
            {"member_id": "m-1", "group_instance_id": None, "error_code": 25},
            {"member_id": "m-2", "group_instance_id": "static-2", "error_code": 25},
        ]}),
        (5, {"throttle_time_ms": 0, "error_code": 25, "members": [
            {"member_id": "m-1", "group_instance_id": None, "error_code": 25},
            {"member_id": "m-2", "group_instance_id": "static-2", "error_code": 25},
        ]}),
    ],
)
def test_leave_group(version: int, expected: dict[str, Any]) -> None:
    request = {
        "group_id": "g",
        "member_id": "m-1",
        "members": [
            {"member_id": "m-1", "group_instance_id": None},
            {"member_id": "m-2", "group_instance_id": "static-2", "reason": "bye"},
        ],
    }
    assert synth(13, version, request, UNKNOWN_MEMBER_ID) == expected


OFFSET_COMMIT_REQUEST = {
    "group_id": "g",
    "generation_id_or_member_epoch": 3,
    "member_id": "m-1",
    "topics": [
        {"name": "a", "partitions": [
            {"partition_index": 0, "committed_offset": 10, "committed_metadata": ""},
            {"partition_index": 2, "committed_offset": 11, "committed_metadata": None},
        ]},
        {"name": "b", "partitions": [{"partition_index": 7, "committed_offset": 1}]},
    ],
}
OFFSET_COMMIT_TOPICS = [
    {"name": "a", "partitions": [{"partition_index": 0, "error_code": 27},
                                 {"partition_index": 2, "error_code": 27}]},
    {"name": "b", "partitions": [{"partition_index": 7, "error_code": 27}]},
]


@pytest.mark.parametrize("version", [0, 2, 3, 8, 9])
def test_offset_commit_has_only_per_partition_codes(version: int) -> None:
    expected: dict[str, Any] = {"topics": OFFSET_COMMIT_TOPICS}
    if version >= 3:
        expected = {"throttle_time_ms": 0, **expected}
    assert synth(8, version, OFFSET_COMMIT_REQUEST, REBALANCE_IN_PROGRESS) == expected


def _fetched(index: int, version: int, code: int) -> dict[str, Any]:
    partition: dict[str, Any] = {"partition_index": index, "committed_offset": -1}
    if version >= 5:
        partition["committed_leader_epoch"] = -1
    return {**partition, "metadata": "", "error_code": code}


@pytest.mark.parametrize("version", [1, 2, 5, 7])
def test_offset_fetch_v0_to_v7(version: int) -> None:
    request = {"group_id": "g", "topics": [{"name": "a", "partition_indexes": [0, 3]}]}
    expected: dict[str, Any] = {
        "topics": [
            {"name": "a", "partitions": [_fetched(0, version, 16), _fetched(3, version, 16)]}
        ]
    }
    if version >= 2:
        expected["error_code"] = 16
    if version >= 3:
        expected = {"throttle_time_ms": 0, **expected}
    assert synth(9, version, request, NOT_COORDINATOR) == expected


@pytest.mark.parametrize("version", [8, 9])
def test_offset_fetch_v8_plus_per_group(version: int) -> None:
    request = {
        "groups": [
            {"group_id": "g1", "member_id": "m", "member_epoch": 4,
             "topics": [{"name": "a", "partition_indexes": [1]}]},
            {"group_id": "g2", "topics": None},
        ],
        "require_stable": True,
    }
    assert synth(9, version, request, NOT_COORDINATOR) == {
        "throttle_time_ms": 0,
        "groups": [
            {"group_id": "g1", "topics": [{"name": "a", "partitions": [_fetched(1, 8, 16)]}],
             "error_code": 16},
            {"group_id": "g2", "topics": [], "error_code": 16},
        ],
    }


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        (0, {"error_code": 16, "node_id": -1, "host": "", "port": -1}),
        (1, {"throttle_time_ms": 0, "error_code": 16, "error_message": "NOT_COORDINATOR",
             "node_id": -1, "host": "", "port": -1}),
        (3, {"throttle_time_ms": 0, "error_code": 16, "error_message": "NOT_COORDINATOR",
             "node_id": -1, "host": "", "port": -1}),
    ],
)
def test_find_coordinator_single(version: int, expected: dict[str, Any]) -> None:
    assert synth(10, version, {"key": "g", "key_type": 0}, NOT_COORDINATOR) == expected


@pytest.mark.parametrize("version", [4, 5, 6])
def test_find_coordinator_batched_per_key(version: int) -> None:
    request = {"key_type": 0, "coordinator_keys": ["g1", "g2"]}
    assert synth(10, version, request, NOT_COORDINATOR) == {
        "throttle_time_ms": 0,
        "coordinators": [
            {"key": key, "node_id": -1, "host": "", "port": -1, "error_code": 16,
             "error_message": "NOT_COORDINATOR"}
            for key in ("g1", "g2")
        ],
    }


@pytest.mark.parametrize("version", [0, 3, 5])
def test_describe_groups_per_group(version: int) -> None:
    request = {"groups": ["g1", "g2"], "include_authorized_operations": True}
    group = {"error_code": 16, "group_state": "", "protocol_type": "", "protocol_data": "",
             "members": []}
    groups = [{**group, "group_id": g} for g in ("g1", "g2")]
    for entry in groups:
        entry["error_code"] = 16
        if version >= 3:
            entry["authorized_operations"] = -(2**31)
    expected: dict[str, Any] = {"groups": groups}
    if version >= 1:
        expected = {"throttle_time_ms": 0, **expected}
    assert synth(15, version, request, NOT_COORDINATOR) == expected


@pytest.mark.parametrize("version", [0, 1])
def test_consumer_group_heartbeat(version: int) -> None:
    request = {"group_id": "g", "member_id": "m-1", "member_epoch": 12, "rebalance_timeout_ms": 1}
    assert synth(68, version, request, 110) == {
        "throttle_time_ms": 0,
        "error_code": 110,
        "error_message": "FENCED_MEMBER_EPOCH",
        "member_id": "m-1",
        "member_epoch": -1,
        "heartbeat_interval_ms": 0,
        "assignment": None,
    }


METADATA_TOPIC_ID = uuid.UUID("00000000-0000-0000-0000-00000000002a")


@pytest.mark.parametrize("version", [0, 1, 2, 8, 9, 10, 12])
def test_metadata_topics_mirrored_with_error(version: int) -> None:
    request = {
        "topics": [{"name": "a", "topic_id": METADATA_TOPIC_ID}, {"name": "b"}],
        "allow_auto_topic_creation": False,
        "include_topic_authorized_operations": True,
    }
    topics = []
    for name in ("a", "b"):
        topic: dict[str, Any] = {"error_code": 29, "name": name}
        if version >= 10:
            topic["topic_id"] = METADATA_TOPIC_ID if name == "a" else uuid.UUID(int=0)
        if version >= 1:
            topic["is_internal"] = False
        topic["partitions"] = []
        if version >= 8:
            topic["topic_authorized_operations"] = -(2**31)
        topics.append(topic)
    expected: dict[str, Any] = {"brokers": []}
    if version >= 3:
        expected = {"throttle_time_ms": 0, **expected}
    if version >= 2:
        expected["cluster_id"] = None
    if version >= 1:
        expected["controller_id"] = -1
    expected["topics"] = topics
    if 8 <= version <= 10:
        expected["cluster_authorized_operations"] = -(2**31)
    assert synth(3, version, request, TOPIC_AUTHORIZATION_FAILED) == expected


def test_metadata_all_topics_request_gets_no_topics() -> None:
    assert synth(3, 12, {"topics": None}, TOPIC_AUTHORIZATION_FAILED)["topics"] == []


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        (0, {"error_code": 35, "api_keys": []}),
        (3, {"error_code": 35, "api_keys": [], "throttle_time_ms": 0}),
    ],
)
def test_api_versions(version: int, expected: dict[str, Any]) -> None:
    request = {"client_software_name": "x", "client_software_version": "1"}
    assert synth(18, version, request, 35) == expected


def test_produce_mirrors_topics_and_partitions() -> None:
    request = {
        "acks": -1,
        "timeout_ms": 1000,
        "topic_data": [{"name": "a", "partition_data": [{"index": 4, "records": b"r"}]}],
    }
    body = synth(0, 9, request, 6)
    assert body["responses"] == [{
        "name": "a",
        "partition_responses": [{
            "index": 4, "error_code": 6, "base_offset": -1, "log_append_time_ms": -1,
            "log_start_offset": -1, "record_errors": [], "error_message": "NOT_LEADER_OR_FOLLOWER",
        }],
    }]


def test_computed_values_are_not_echoed_from_the_request() -> None:
    # What a broker would have computed stays at the spec's "unknown" default on failure.
    created = synth(19, 7, {"topics": [{"name": "t", "num_partitions": 3,
                                         "replication_factor": 2,
                                         "configs": [{"name": "retention.ms", "value": "1"}]}],
                            "timeout_ms": 100}, 36)["topics"]
    assert created == [{"name": "t", "topic_id": uuid.UUID(int=0), "error_code": 36,
                        "error_message": "TOPIC_ALREADY_EXISTS", "num_partitions": -1,
                        "replication_factor": -1, "configs": []}]
    init = synth(22, 4, {"transactional_id": "tx", "transaction_timeout_ms": 1,
                         "producer_id": 5, "producer_epoch": 2}, 51)
    assert (init["producer_id"], init["producer_epoch"]) == (-1, -1)
    sasl = synth(36, 2, {"auth_bytes": b"secret"}, 58)
    assert sasl["auth_bytes"] == b""


def test_error_message_of_success_is_null() -> None:
    body = synth(10, 4, {"key_type": 0, "coordinator_keys": ["g"]}, 0)
    assert body["coordinators"][0]["error_message"] is None


def test_unknown_version_is_a_codec_error() -> None:
    with pytest.raises(codec.CodecError):
        error_response(11, 999, {}, 27)


def test_empty_request_gives_empty_entries() -> None:
    assert synth(8, 9, {"group_id": "g", "topics": []}, 27) == {"throttle_time_ms": 0, "topics": []}


# --- every API and version ------------------------------------------------------------------


def _requests() -> Iterator[tuple[int, int, Message, Message]]:
    by_key = {(m.api_key, m.kind): m for m in MESSAGES.values() if m.api_key is not None}
    for (api_key, kind), request in sorted(by_key.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        if kind != "request":
            continue
        for version in range(request.valid[0], request.valid[1] + 1):
            yield api_key, version, request, by_key[(api_key, "response")]


def _in(rng: tuple[int, int], version: int) -> bool:
    return rng[0] <= version <= rng[1]


def _children(message: Message, field: F) -> tuple[F, ...] | None:
    if field.fields is not None:
        return field.fields
    struct = message.structs.get(field.type.removeprefix("[]"))
    return struct.fields if struct is not None else None


def _sample(
    message: Message, fields: tuple[F, ...], version: int, index: int = 0
) -> dict[str, Any]:
    """A request with every field set and two entries in every array."""
    value: dict[str, Any] = {}
    for field in fields:
        if not _in(field.versions, version) or field.tag is not None:
            continue
        children = _children(message, field)
        item_type = field.type.removeprefix("[]")
        if field.type.startswith("[]"):
            if children is not None:
                value[field.name] = [_sample(message, children, version, i) for i in range(2)]
            elif item_type == "string":
                value[field.name] = [f"{field.name}-{i}" for i in range(2)]
            elif item_type == "uuid":
                value[field.name] = [uuid.UUID(int=i + 1) for i in range(2)]
            else:
                value[field.name] = [index + i for i in range(2)]
        elif children is not None:
            value[field.name] = _sample(message, children, version)
        elif item_type == "string":
            value[field.name] = f"{field.name}-{index}"
        elif item_type == "uuid":
            value[field.name] = uuid.UUID(int=7 + index)
        elif item_type == "bool":
            value[field.name] = True
        elif item_type in ("bytes", "records"):
            value[field.name] = b"x"
        elif item_type == "float64":
            value[field.name] = 1.0
        else:
            value[field.name] = index + 3
    return value


def _walk(message: Message, fields: tuple[F, ...], version: int, body: Any,
          path: str = "") -> Iterator[tuple[str, F, Any]]:
    """(path, field, value) of every non-tagged field present in a decoded body."""
    for field in fields:
        if field.name not in body:
            continue
        value = body[field.name]
        yield f"{path}{field.name}", field, value
        children = _children(message, field)
        if children is None or value is None:
            continue
        for i, item in enumerate(value if field.type.startswith("[]") else [value]):
            yield from _walk(message, children, version, item, f"{path}{field.name}[{i}].")


_ALL = list(_requests())
# Responses without a top-level code whose entries are not per requested item, with why.
NOT_PER_ENTRY = {
    35: "DescribeLogDirs before v3 reports per log dir, which the request does not name",
}


@pytest.mark.parametrize(
    ("api_key", "version", "request_spec", "response_spec"),
    _ALL,
    ids=[f"{codec.API_NAMES[a]}-v{v}" for a, v, _, _ in _ALL],
)
def test_every_api_version(
    api_key: int, version: int, request_spec: Message, response_spec: Message
) -> None:
    code = 15  # COORDINATOR_NOT_AVAILABLE: any non-zero code will do
    request = _sample(request_spec, request_spec.fields, version)
    body = synth(api_key, version, request, code)
    places = []
    for path, field, value in _walk(response_spec, response_spec.fields, version, body):
        if field.type == "int16" and (field.name == "error_code"
                                      or field.name.endswith("_error_code")):
            assert value == code, path
            places.append(path)
        if field.type == "string" and (field.name == "error_message"
                                       or field.name.endswith("_error_message")):
            assert value == "COORDINATOR_NOT_AVAILABLE", path
    assert places, "the error is nowhere a client could see it"
    if "error_code" not in body and api_key not in NOT_PER_ENTRY:
        # Only per-entry codes: one per entry the request named (two per sampled array).
        assert len(places) >= 2, places
    # Without a request (nothing to mirror) the response is still valid on the wire.
    wire(api_key, version, RESP, error_response(api_key, version, {}, code))
