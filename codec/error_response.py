"""Synthesize the response a broker would send when it fails a request with a given error.

Injecting an error means answering in the broker's place, so the answer must be
indistinguishable from a real failure: it must encode at the request's version, and the code
must sit where the client looks for it. Some responses have a top-level error code; others have
only per-topic or per-partition codes (OffsetCommit, Produce, ...) and a client reads an
error only from the entries that mirror what it asked for, so those entries are rebuilt from the
request.

One schema walk builds every response (error code fields get the code, arrays that mirror a
request array are rebuilt entry by entry, everything else takes the spec default); a table of
array aliases covers responses whose arrays are named differently from the request's, and
small per-API adjustments add the values brokers put in failed group-coordination responses
(generation -1, no coordinator, ...), checked by hand against the specs.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Any

from kafka_chaos_proxy.codec.errors import CodecError
from kafka_chaos_proxy.codec.schema import ERROR_CODES, MESSAGES, F, Message

_ERROR_NAMES: dict[int, str] = {code: name for name, code in ERROR_CODES.items()}
_INT_TYPES = frozenset({"int8", "int16", "int32", "int64", "uint16", "uint32"})
_NO_COORDINATOR = {"node_id": -1, "host": "", "port": -1}

# Response array -> request arrays (first present wins) it mirrors, where names differ.
# Matching by name covers the rest (topics/partitions of OffsetCommit, ListOffsets, ...).
_ARRAY_ALIASES: dict[int, dict[str, tuple[str, ...]]] = {
    0: {"responses": ("topic_data",), "partition_responses": ("partition_data",)},
    1: {"responses": ("topics",)},
    9: {"partitions": ("partition_indexes",)},
    10: {"coordinators": ("coordinator_keys",)},
    20: {"responses": ("topics", "topic_names")},
    24: {
        "results_by_transaction": ("transactions",),
        "results_by_topic_v3_and_below": ("v3_and_below_topics",),
        "topic_results": ("topics",),
        "results_by_partition": ("partitions",),
    },
    27: {"partitions": ("partition_indexes",)},
    30: {"results": ("creations",)},
    31: {"filter_results": ("filters",)},
    32: {"results": ("resources",)},
    33: {"responses": ("resources",)},
    37: {"results": ("topics",)},
    42: {"results": ("groups_names",)},
    43: {"replica_election_results": ("topic_partitions",), "partition_result": ("partitions",)},
    44: {"responses": ("resources",)},
    45: {"responses": ("topics",)},
    50: {"results": ("users",)},
    57: {"results": ("feature_updates",)},
    61: {"partitions": ("partition_indexes",)},
    65: {"transaction_states": ("transactional_ids",)},
    69: {"groups": ("group_ids",)},
    77: {"groups": ("group_ids",)},
    78: {"responses": ("topics",)},
    79: {"responses": ("topics",)},
    83: {"results": ("topics",)},
    84: {"results": ("topics",)},
    85: {"results": ("topics",)},
    86: {"results": ("topics",)},
    87: {"results": ("topics",)},
}
# Response arrays that share a request array's name but are not per-entry results (a broker
# that fails the request returns them empty).
_NOT_MIRRORED: dict[int, frozenset[str]] = {
    19: frozenset({"configs"}),  # CreateTopics: the created topic's configs
}
# Response scalar -> request scalars it copies, for key fields spelled differently.
_SCALAR_ALIASES: dict[str, tuple[str, ...]] = {
    "partition_index": ("partition", "index"),
    "user": ("name",),
}
# Numbers are copied from the request only when they identify an entry (a partition, a
# resource type); others (epochs, offsets, partition counts, producer ids of InitProducerId)
# are what the broker would have computed, and a failure leaves them at their defaults.
_NUMERIC_KEYS = frozenset(
    {"partition_index", "partition", "index", "partition_id", "resource_type", "endpoint_type"}
)
# Copied only inside array entries, where they name the entry (WriteTxnMarkers' markers).
_NUMERIC_ENTRY_KEYS = frozenset({"producer_id"})


@cache
def _messages_by_api() -> dict[tuple[int, str], Message]:
    return {(m.api_key, m.kind): m for m in MESSAGES.values() if m.api_key is not None}


def _message(api_key: int, api_version: int) -> Message:
    message = _messages_by_api().get((api_key, "response"))
    if message is None:
        raise CodecError(f"unknown api key {api_key}", api_key=api_key, api_version=api_version)
    low, high = message.valid
    if not low <= api_version <= high:
        raise CodecError(
            f"unknown version {api_version} (known: {low}-{high})",
            api_key=api_key,
            api_version=api_version,
            direction="response",
        )
    return message


def _in(version_range: tuple[int, int], version: int) -> bool:
    return version_range[0] <= version <= version_range[1]


def _children(message: Message, field: F) -> tuple[F, ...] | None:
    """The fields of a struct-typed field (inline or a common struct); None for primitives."""
    if field.fields is not None:
        return field.fields
    struct = message.structs.get(field.type.removeprefix("[]"))
    return struct.fields if struct is not None else None


def _default(field: F, version: int) -> Any:
    """The value the spec gives a field the broker had nothing to put in."""
    nullable = _in(field.nullable, version)
    default = field.default
    kind = field.type
    if kind in _INT_TYPES:
        return int(default, 0) if default else 0
    if kind == "bool":
        return default == "true"
    if kind == "float64":
        return float(default) if default else 0.0
    if kind == "uuid":
        return uuid.UUID(int=0)
    if kind == "string":
        if default == "null" and nullable:
            return None
        return default or ""
    if kind in ("bytes", "records"):
        return None if nullable and (default == "null" or kind == "records") else b""
    if kind.startswith("[]"):
        return None if nullable and default == "null" else []
    return None  # nullable struct


def _fits(field: F, value: Any, version: int) -> bool:
    """Whether a request value can be copied into a response field of this type."""
    if value is None:
        return _in(field.nullable, version)
    kind = field.type
    if kind in _INT_TYPES:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind == "uuid":
        return isinstance(value, uuid.UUID)
    if kind in ("bytes", "records"):
        return isinstance(value, bytes | bytearray)
    return False


def _is_error_code(field: F) -> bool:
    return field.type == "int16" and (
        field.name == "error_code" or field.name.endswith("_error_code")
    )


def _is_error_message(field: F) -> bool:
    return field.type == "string" and (
        field.name == "error_message" or field.name.endswith("_error_message")
    )


class _Builder:
    """Walks one response schema at one version, filling values from one request."""

    def __init__(
        self,
        message: Message,
        api_key: int,
        version: int,
        error_code: int,
        request: Mapping[str, Any],
    ) -> None:
        self.message = message
        self.request = request
        self.version = version
        self.error_code = error_code
        self.aliases = _ARRAY_ALIASES.get(api_key, {})
        self.not_mirrored = _NOT_MIRRORED.get(api_key, frozenset())
        self.error_text = _ERROR_NAMES.get(error_code, f"ERROR_{error_code}")

    def struct(self, fields: Sequence[F], request: Mapping[str, Any] | None) -> dict[str, Any]:
        request = request or {}
        value: dict[str, Any] = {}
        for field in fields:
            # Tagged fields are optional by definition: absent means the spec default.
            if not _in(field.versions, self.version) or field.tag is not None:
                continue
            value[field.name] = self.field(field, request)
        return value

    def field(self, field: F, request: Mapping[str, Any]) -> Any:
        if _is_error_code(field):
            return self.error_code
        if _is_error_message(field):
            if self.error_code != 0:
                return self.error_text
            return None if _in(field.nullable, self.version) else ""
        children = _children(self.message, field)
        if field.type.startswith("[]"):
            if children is None:
                return _default(field, self.version)
            source = self._request_array(field, request)
            if source is None or field.name in self.not_mirrored:
                return _default(field, self.version)
            return [self.struct(children, self._as_node(item, children)) for item in source]
        if children is not None:
            if _in(field.nullable, self.version):
                return None
            nested = request.get(field.name)
            return self.struct(children, nested if isinstance(nested, Mapping) else None)
        if self._copies(field, request):
            for name in (field.name, *_SCALAR_ALIASES.get(field.name, ())):
                if name in request and _fits(field, request[name], self.version):
                    return request[name]
        return _default(field, self.version)

    def _copies(self, field: F, request: Mapping[str, Any]) -> bool:
        """Whether a response scalar may take the request's value (see _NUMERIC_KEYS)."""
        if field.type in ("string", "uuid"):
            return True
        if field.type in _INT_TYPES:
            return field.name in _NUMERIC_KEYS or (
                field.name in _NUMERIC_ENTRY_KEYS and request is not self.request
            )
        return False  # bytes (e.g. SASL tokens), bools, floats: never the request's

    def entry(self, top_level_array: str, request: Mapping[str, Any]) -> dict[str, Any]:
        """One entry of a top-level struct array, mirroring `request` (for adjustments)."""
        field = next(f for f in self.message.fields if f.name == top_level_array)
        children = _children(self.message, field)
        assert children is not None
        return self.struct(children, request)

    def nullable(self, top_level_field: str) -> bool:
        """Whether a top-level field may be null at this version."""
        return any(
            f.name == top_level_field and _in(f.nullable, self.version)
            for f in self.message.fields
        )

    def _request_array(self, field: F, request: Mapping[str, Any]) -> list[Any] | None:
        for name in (field.name, *self.aliases.get(field.name, ())):
            items = request.get(name)
            if isinstance(items, list | tuple):
                return list(items)
        return None

    def _as_node(self, item: Any, children: Sequence[F]) -> Mapping[str, Any] | None:
        """A request array entry as a struct: entries of []string/[]int32 request arrays
        become the response entry's first field of that type (its key)."""
        if isinstance(item, Mapping):
            return item
        for child in children:
            if (
                _in(child.versions, self.version)
                and child.tag is None
                and not _is_error_code(child)
                and _fits(child, item, self.version)
            ):
                return {child.name: item}
        return None


def _set(body: dict[str, Any], **values: Any) -> None:
    """Set fields that exist at this version; others are absent from the body by design."""
    for key, value in values.items():
        if key in body:
            body[key] = value


def _join_group(body: dict[str, Any], builder: _Builder) -> None:
    # The coordinator answers a failed join with no generation, no leader and no members; from
    # v7 protocol type/name are null, before that they cannot be and are empty.
    _set(body, generation_id=-1, leader="", members=[], skip_assignment=False)
    for name in ("protocol_type", "protocol_name"):
        _set(body, **{name: None if builder.nullable(name) else ""})


def _sync_group(body: dict[str, Any], builder: _Builder) -> None:
    _set(body, assignment=b"", protocol_type=None, protocol_name=None)


def _find_coordinator(body: dict[str, Any], builder: _Builder) -> None:
    _set(body, **_NO_COORDINATOR)
    for coordinator in body.get("coordinators", []):
        coordinator.update(_NO_COORDINATOR)


def _offset_fetch(body: dict[str, Any], builder: _Builder) -> None:
    # "No committed offset" in every partition, as the broker writes it next to an error.
    topics = list(body.get("topics", []))
    for group in body.get("groups", []):
        topics += group["topics"]
    for topic in topics:
        for partition in topic["partitions"]:
            _set(partition, committed_offset=-1, committed_leader_epoch=-1, metadata="")


def _group_heartbeat(body: dict[str, Any], builder: _Builder) -> None:
    # KIP-848 style heartbeats (consumer and share groups): the member keeps its id but has no
    # epoch and no assignment until it heartbeats successfully again.
    _set(body, member_epoch=-1, heartbeat_interval_ms=0, assignment=None)


def _describe_groups(body: dict[str, Any], builder: _Builder) -> None:
    for group in body.get("groups", []):
        _set(group, group_state="", protocol_type="", protocol_data="", members=[])


def _metadata(body: dict[str, Any], builder: _Builder) -> None:
    _set(body, brokers=[], controller_id=-1, cluster_id=None)
    for topic in body.get("topics", []):
        _set(topic, partitions=[], is_internal=False)


def _list_offsets(body: dict[str, Any], builder: _Builder) -> None:
    # "Unknown" timestamp and offset, not the request's query timestamp echoed back.
    for topic in body.get("topics", []):
        for partition in topic["partitions"]:
            _set(partition, timestamp=-1, offset=-1, leader_epoch=-1, old_style_offsets=[])


def _produce(body: dict[str, Any], builder: _Builder) -> None:
    for topic in body.get("responses", []):
        for partition in topic["partition_responses"]:
            _set(partition, base_offset=-1, log_append_time_ms=-1, log_start_offset=-1)


def _fetch(body: dict[str, Any], builder: _Builder) -> None:
    for topic in body.get("responses", []):
        for partition in topic["partitions"]:
            _set(partition, high_watermark=-1, last_stable_offset=-1, log_start_offset=-1)


def _no_producer(body: dict[str, Any], builder: _Builder) -> None:
    # InitProducerId / EndTxn: no producer id or epoch was granted.
    _set(body, producer_id=-1, producer_epoch=-1)


def _alter_replica_log_dirs(body: dict[str, Any], builder: _Builder) -> None:
    # Results are per topic/partition, flattened across all requested directories.
    body["results"] = [
        builder.entry("results", {"topic_name": topic.get("name"), **topic})
        for log_dir in builder.request.get("dirs") or []
        for topic in log_dir.get("topics") or []
    ]


def _describe_log_dirs(body: dict[str, Any], builder: _Builder) -> None:
    # Before v3 there is no top-level code; the error goes into one (nameless) log dir result.
    if "error_code" not in body:
        body["results"] = [builder.entry("results", {})]


def _alter_user_scram_credentials(body: dict[str, Any], builder: _Builder) -> None:
    # One result per user named in either list of the request.
    request = builder.request
    users = [*(request.get("deletions") or []), *(request.get("upsertions") or [])]
    body["results"] = [builder.entry("results", {"user": user.get("name")}) for user in users]


_Adjust = Callable[[dict[str, Any], _Builder], None]
_ADJUSTMENTS: dict[int, _Adjust] = {
    0: _produce,
    1: _fetch,
    2: _list_offsets,
    3: _metadata,
    9: _offset_fetch,
    10: _find_coordinator,
    11: _join_group,
    14: _sync_group,
    15: _describe_groups,
    22: _no_producer,
    26: _no_producer,
    34: _alter_replica_log_dirs,
    35: _describe_log_dirs,
    51: _alter_user_scram_credentials,
    68: _group_heartbeat,
    76: _group_heartbeat,
}


def error_response(
    api_key: int, api_version: int, request_body: Mapping[str, Any] | None, error_code: int
) -> dict[str, Any]:
    """A response body for `api_key`/`api_version` failing with `error_code`.

    The result is a plain body dict for `codec.encode_body(..., Direction.RESPONSE, ...)`.
    `request_body` is the decoded request (entries to mirror, member ids, ...); an empty dict
    gives the same response with empty arrays. Error message fields carry the error name.
    """
    message = _message(api_key, api_version)
    builder = _Builder(message, api_key, api_version, error_code, request_body or {})
    body = builder.struct(message.fields, builder.request)
    adjust = _ADJUSTMENTS.get(api_key)
    if adjust is not None:
        adjust(body, builder)
    return body


__all__ = ["error_response"]
