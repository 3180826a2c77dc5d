"""The consumer protocol payloads carried opaquely inside the group APIs.

JoinGroup's protocol metadata is a ConsumerProtocolSubscription and SyncGroup's assignments are
ConsumerProtocolAssignment payloads: an int16 version followed by the struct of that version.
The broker never looks inside them, so only the proxy's event log and group-state model do.

Clients agree on a forward-compatibility rule (Kafka's ConsumerProtocol, librdkafka, franz-go):
a payload with a version newer than the reader knows is read with the newest known layout and
whatever follows is ignored. New versions may only append fields, which is what makes this safe.
We follow the same rule and keep the unread tail under `_trailing` so that nothing is lost when
a payload is re-encoded at its own version.

Hand-written on purpose: the structs are tiny and fixed, they are decoded once per group
message, and the lenient reading (newer versions, a tail) does not fit a strict schema decoder.
"""

from __future__ import annotations

import struct
from typing import Any

from kafka_chaos_proxy.codec.errors import CodecError

SUBSCRIPTION = "ConsumerProtocolSubscription"
ASSIGNMENT = "ConsumerProtocolAssignment"
# The newest version of each payload whose layout this module writes out by hand; newer ones
# are read with it. A test checks these against the specs, so a spec update cannot slip by.
SUBSCRIPTION_MAX_VERSION = 3
ASSIGNMENT_MAX_VERSION = 3

_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")


def _error(spec: str, version: int, field_path: str, offset: int, message: str) -> CodecError:
    """One place that builds the codec's error, so every failure names the payload and field.

    The payload travels in several APIs and both directions, so the error names the payload
    (first element of the field path) and its own version instead of an api key."""
    return CodecError(
        message,
        api_version=version if version >= 0 else None,
        field_path=f"{spec}.{field_path}" if field_path else spec,
        offset=offset,
    )


class _Reader:
    """A cursor over an untrusted payload: every length is checked before anything is sliced."""

    __slots__ = ("data", "pos", "spec", "version")

    def __init__(self, data: bytes, spec: str) -> None:
        self.data = data
        self.pos = 0
        self.spec = spec
        self.version = -1

    def fail(self, field_path: str, message: str) -> CodecError:
        return _error(self.spec, self.version, field_path, self.pos, message)

    def _need(self, n: int, field_path: str) -> None:
        if n > len(self.data) - self.pos:
            raise self.fail(
                field_path, f"needs {n} bytes, only {len(self.data) - self.pos} remain"
            )

    def int16(self, field_path: str) -> int:
        self._need(2, field_path)
        (value,) = _INT16.unpack_from(self.data, self.pos)
        self.pos += 2
        return int(value)

    def int32(self, field_path: str) -> int:
        self._need(4, field_path)
        (value,) = _INT32.unpack_from(self.data, self.pos)
        self.pos += 4
        return int(value)

    def _sized(self, length: int, field_path: str) -> bytes:
        self._need(length, field_path)
        chunk = self.data[self.pos : self.pos + length]
        self.pos += length
        return bytes(chunk)

    def string(self, field_path: str, nullable: bool = False) -> str | None:
        length = self.int16(field_path)
        if length < 0:
            if nullable and length == -1:
                return None
            self.pos -= 2
            raise self.fail(field_path, f"invalid string length {length}")
        raw = self._sized(length, field_path)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.pos -= length
            raise self.fail(field_path, f"string is not UTF-8: {exc.reason}") from None

    def nullable_bytes(self, field_path: str) -> bytes | None:
        length = self.int32(field_path)
        if length == -1:
            return None
        if length < 0:
            self.pos -= 4
            raise self.fail(field_path, f"invalid bytes length {length}")
        return self._sized(length, field_path)

    def array_length(self, field_path: str, min_item_size: int) -> int:
        """Read an array count and reject counts the remaining bytes cannot possibly hold."""
        count = self.int32(field_path)
        if count < 0:
            self.pos -= 4
            raise self.fail(field_path, f"invalid array length {count}")
        if count * min_item_size > len(self.data) - self.pos:
            self.pos -= 4
            raise self.fail(
                field_path,
                f"array of {count} items cannot fit in {len(self.data) - self.pos - 4} bytes",
            )
        return count

    def topic_partitions(self, field_path: str) -> list[dict[str, Any]]:
        """[]TopicPartition: the one nested struct both payloads share."""
        result: list[dict[str, Any]] = []
        # A topic entry is at least an int16 name length and an int32 partition count.
        for i in range(self.array_length(field_path, 6)):
            topic = self.string(f"{field_path}[{i}].topic")
            partitions_path = f"{field_path}[{i}].partitions"
            count = self.array_length(partitions_path, 4)
            partitions = [self.int32(partitions_path) for _ in range(count)]
            result.append({"topic": topic, "partitions": partitions})
        return result


def _read_version(reader: _Reader) -> int:
    version = reader.int16("version")
    if version < 0:
        reader.pos = 0
        raise reader.fail("version", f"invalid payload version {version}")
    reader.version = version
    return version


def _with_trailing(reader: _Reader, value: dict[str, Any]) -> dict[str, Any]:
    if reader.pos < len(reader.data):
        value["_trailing"] = bytes(reader.data[reader.pos :])
    return value


def decode_subscription(data: bytes | bytearray | memoryview) -> dict[str, Any]:
    """Decode JoinGroup protocol metadata of the "consumer" protocol type.

    Keys follow the spec's field names in snake_case, plus `version`; fields the payload's
    version does not have are absent. Bytes after the newest known layout land in `_trailing`.
    """
    reader = _Reader(bytes(data), SUBSCRIPTION)
    version = _read_version(reader)
    count = reader.array_length("topics", 2)
    topics = [reader.string(f"topics[{i}]") for i in range(count)]
    value: dict[str, Any] = {
        "version": version,
        "topics": topics,
        "user_data": reader.nullable_bytes("user_data"),
    }
    if version >= 1:
        value["owned_partitions"] = reader.topic_partitions("owned_partitions")
    if version >= 2:
        value["generation_id"] = reader.int32("generation_id")
    if version >= 3:
        value["rack_id"] = reader.string("rack_id", nullable=True)
    return _with_trailing(reader, value)


def decode_assignment(data: bytes | bytearray | memoryview) -> dict[str, Any]:
    """Decode one member's SyncGroup assignment of the "consumer" protocol type.

    An empty payload is what a leader sends for a member it assigned nothing to (and what the
    coordinator returns with an error); it decodes as version 0 with no partitions rather than
    as an error, which is how librdkafka reads it too.
    """
    if len(data) == 0:
        return {"version": 0, "assigned_partitions": [], "user_data": None}
    reader = _Reader(bytes(data), ASSIGNMENT)
    version = _read_version(reader)
    value: dict[str, Any] = {
        "version": version,
        "assigned_partitions": reader.topic_partitions("assigned_partitions"),
        "user_data": reader.nullable_bytes("user_data"),
    }
    return _with_trailing(reader, value)


def assignment_partitions(data: bytes | bytearray | memoryview) -> dict[str, list[int]]:
    """Topic -> partitions of an assignment payload, the shape the event log reports.

    A topic listed twice (legal on the wire, if odd) has its partitions merged.
    """
    result: dict[str, list[int]] = {}
    for entry in decode_assignment(data)["assigned_partitions"]:
        result.setdefault(entry["topic"], []).extend(entry["partitions"])
    return result


class _Writer:
    """Append-only encoder that names the field whose value does not fit its wire type."""

    __slots__ = ("out", "spec", "version")

    def __init__(self, spec: str, version: int) -> None:
        self.out = bytearray()
        self.spec = spec
        self.version = version

    def fail(self, field_path: str, message: str) -> CodecError:
        return _error(self.spec, self.version, field_path, len(self.out), message)

    def int16(self, value: Any, field_path: str) -> None:
        try:
            self.out += _INT16.pack(value)
        except (struct.error, TypeError) as exc:
            raise self.fail(field_path, f"not an int16: {value!r} ({exc})") from None

    def int32(self, value: Any, field_path: str) -> None:
        try:
            self.out += _INT32.pack(value)
        except (struct.error, TypeError) as exc:
            raise self.fail(field_path, f"not an int32: {value!r} ({exc})") from None

    def string(self, value: Any, field_path: str, nullable: bool = False) -> None:
        if value is None and nullable:
            self.int16(-1, field_path)
            return
        if not isinstance(value, str):
            raise self.fail(field_path, f"not a string: {value!r}")
        try:
            raw = value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise self.fail(field_path, f"string cannot be UTF-8: {exc.reason}") from None
        if len(raw) > 0x7FFF:
            raise self.fail(field_path, f"string of {len(raw)} bytes is too long")
        self.int16(len(raw), field_path)
        self.out += raw

    def nullable_bytes(self, value: Any, field_path: str) -> None:
        if value is None:
            self.int32(-1, field_path)
            return
        if not isinstance(value, bytes | bytearray | memoryview):
            raise self.fail(field_path, f"not bytes: {type(value).__name__}")
        self.int32(len(value), field_path)
        self.out += value

    def array(self, value: Any, field_path: str) -> list[Any]:
        if not isinstance(value, list | tuple):
            raise self.fail(field_path, f"not a list: {type(value).__name__}")
        self.int32(len(value), field_path)
        return list(value)

    def topic_partitions(self, value: Any, field_path: str) -> None:
        for i, entry in enumerate(self.array(value, field_path)):
            if not isinstance(entry, dict):
                raise self.fail(f"{field_path}[{i}]", "not a dict")
            self.string(entry.get("topic"), f"{field_path}[{i}].topic")
            partitions_path = f"{field_path}[{i}].partitions"
            for partition in self.array(entry.get("partitions", []), partitions_path):
                self.int32(partition, partitions_path)


def _layout_version(spec: str, version: int, max_version: int) -> int:
    """The layout a version is written with: its own, or the newest known one for newer
    versions, mirroring how readers treat them."""
    if not 0 <= version <= 0x7FFF:
        raise _error(spec, version, "version", 0, f"invalid payload version {version}")
    return min(version, max_version)


def encode_subscription(value: dict[str, Any], version: int) -> bytes:
    """Encode a subscription at `version`; missing keys take the spec's defaults.

    A version newer than the specs know is written with the newest known layout followed by
    `_trailing` (kept from decoding), so a decoded payload re-encodes to the same bytes.
    """
    encode_version = _layout_version(SUBSCRIPTION, version, SUBSCRIPTION_MAX_VERSION)
    writer = _Writer(SUBSCRIPTION, version)
    writer.int16(version, "version")
    for i, topic in enumerate(writer.array(value.get("topics", []), "topics")):
        writer.string(topic, f"topics[{i}]")
    writer.nullable_bytes(value.get("user_data"), "user_data")
    if encode_version >= 1:
        writer.topic_partitions(value.get("owned_partitions", []), "owned_partitions")
    if encode_version >= 2:
        writer.int32(value.get("generation_id", -1), "generation_id")
    if encode_version >= 3:
        writer.string(value.get("rack_id"), "rack_id", nullable=True)
    writer.out += value.get("_trailing", b"")
    return bytes(writer.out)


def encode_assignment(value: dict[str, Any], version: int) -> bytes:
    """Encode an assignment at `version`; missing keys take the spec's defaults.

    As for subscriptions, a version newer than the specs know is written with the newest known
    layout followed by `_trailing`.
    """
    _layout_version(ASSIGNMENT, version, ASSIGNMENT_MAX_VERSION)  # one layout for all so far
    writer = _Writer(ASSIGNMENT, version)
    writer.int16(version, "version")
    writer.topic_partitions(value.get("assigned_partitions", []), "assigned_partitions")
    writer.nullable_bytes(value.get("user_data"), "user_data")
    writer.out += value.get("_trailing", b"")
    return bytes(writer.out)
