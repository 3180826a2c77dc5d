"""Kafka's wire forms as plain functions on a bounded reader (and a BytesIO writer).

Used by the construct classes in ``codec.primitives``:

* checked readers (``read_*``): the interpreted parse path; each failure is a ``WireError``
  with a reason, to which the caller adds the field path and offset. Every length prefix is
  checked against the bytes remaining in ``Reader`` before a read or a loop, so nothing
  allocates from an untrusted length;
* helpers for the generated (compiled) parsers and writers, which work on the body ``bytes``
  by offset and on a ``bytearray``: ``uvarint_at``, ``tags_at`` (a non-empty tagged section,
  through the checked reader), ``FIXED_ARRAYS`` (a cached ``struct.Struct`` per element count)
  and ``uvarint_bytes``. Any exception in a compiled parser only sends the engine to the
  interpreted parser for a precise diagnosis.
"""

from __future__ import annotations

import io
import struct
import uuid
from collections.abc import Callable
from typing import Any

from construct import ConstructError

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
UNKNOWN_TAGS = "_unknown_tags"


class Reader(io.BytesIO):
    """A BytesIO that knows where its data ends, so length prefixes can be checked cheaply."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.end = len(data)


class WireError(ConstructError):
    """A malformed value, carrying the offset where the offending field starts."""

    def __init__(self, reason: str, path: str | None = None, offset: int | None = None) -> None:
        super().__init__(reason, path=path)
        self.reason = reason
        self.offset = offset


# --------------------------------------------------------------------------------------------
# checked readers (interpreted path) and the shared varint writer
# --------------------------------------------------------------------------------------------


def read_uvarint(r: Reader) -> int:
    """Unsigned LEB128 varint, at most 5 bytes, as Kafka's readUnsignedVarint."""
    result = 0
    shift = 0
    while shift <= 28:
        b = r.read(1)
        if not b:
            raise WireError("truncated varint")
        x = b[0]
        result |= (x & 0x7F) << shift
        if x < 0x80:
            if result > 0xFFFFFFFF:
                raise WireError("varint exceeds 32 bits")
            return result
        shift += 7
    raise WireError("varint longer than 5 bytes")


def write_uvarint(w: io.BytesIO, value: int) -> None:
    if value < 0 or value > 0xFFFFFFFF:
        raise WireError(f"unsigned varint out of range: {value}")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    w.write(out)


def _remaining(r: Reader) -> int:
    return r.end - r.tell()


def _read_len(r: Reader, compact: bool, wide: bool) -> int:
    """Length prefix as a signed number; -1 means null."""
    if compact:
        return read_uvarint(r) - 1
    size = 4 if wide else 2
    raw = r.read(size)
    if len(raw) != size:
        raise WireError("truncated length prefix")
    return (_I32 if wide else _I16).unpack(raw)[0]


def _read_payload(r: Reader, n: int, nullable: bool, what: str) -> bytes | None:
    if n < 0:
        if n == -1 and nullable:
            return None
        if n == -1:
            raise WireError(f"null {what} in a non-nullable field")
        raise WireError(f"negative {what} length {n}")
    if n > r.end - r.tell():
        raise WireError(f"{what} length {n} exceeds the {_remaining(r)} bytes remaining")
    return r.read(n)


def read_bool(r: Reader) -> bool:
    b = r.read(1)
    if not b:
        raise WireError("truncated bool")
    return b != b"\x00"


def read_uuid(r: Reader) -> uuid.UUID:
    b = r.read(16)
    if len(b) != 16:
        raise WireError("truncated uuid")
    return uuid.UUID(bytes=b)


def read_string(r: Reader, compact: bool, nullable: bool) -> str | None:
    data = _read_payload(r, _read_len(r, compact, False), nullable, "string")
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WireError(f"invalid UTF-8 in string: {exc.reason}") from None


def read_bytes(r: Reader, compact: bool, nullable: bool) -> bytes | None:
    return _read_payload(r, _read_len(r, compact, True), nullable, "bytes")


def read_array_len(r: Reader, compact: bool, nullable: bool) -> int | None:
    """Element count, refused when larger than the bytes left (as Kafka's readers do)."""
    n = _read_len(r, compact, True)
    if n < 0:
        if n == -1 and nullable:
            return None
        if n == -1:
            raise WireError("null array in a non-nullable field")
        raise WireError(f"negative array length {n}")
    if n > r.end - r.tell():
        raise WireError(f"array length {n} exceeds the {_remaining(r)} bytes remaining")
    return n


TagParser = Callable[[Reader], Any]


def read_tags(r: Reader, obj: dict[str, Any], tagmap: dict[int, tuple[str, TagParser]]) -> None:
    """A tagged-field section: count, then (tag, size, value) each; unknown tags kept raw."""
    count = read_uvarint(r)
    if count > r.end - r.tell():
        raise WireError(f"tagged field count {count} exceeds the {_remaining(r)} bytes remaining")
    unknown: dict[int, bytes] | None = None
    for _ in range(count):
        tag = read_uvarint(r)
        size = read_uvarint(r)
        if size > r.end - r.tell():
            raise WireError(f"tagged field {tag} size {size} exceeds the bytes remaining")
        data = r.read(size)
        entry = tagmap.get(tag)
        if entry is None:
            if unknown is None:
                unknown = {}
            unknown[tag] = data
            continue
        name, parse = entry
        sub = Reader(data)
        base = r.tell() - size
        try:
            obj[name] = parse(sub)
        except ConstructError as exc:  # WireError included: re-anchor to the outer stream
            offset = getattr(exc, "offset", None)
            raise WireError(getattr(exc, "reason", None) or construct_reason(exc),
                            path=exc.path or name,
                            offset=base + (sub.tell() if offset is None else offset)) from None
        if sub.tell() != size:
            raise WireError(f"tagged field {tag} ({name}) has {size - sub.tell()} extra bytes")
    if unknown:
        obj[UNKNOWN_TAGS] = unknown


def construct_reason(exc: ConstructError) -> str:
    text = str(exc)
    # construct prefixes "Error in path ...\n"; the path is reported separately.
    return text.split("\n", 1)[-1] if text.startswith("Error in path") else text


def write_len(w: io.BytesIO, n: int, compact: bool, wide: bool) -> None:
    if compact:
        write_uvarint(w, n + 1)
    elif wide:
        w.write(_I32.pack(n))
    else:
        if n > 0x7FFF:
            raise WireError(f"string of {n} bytes is too long for an int16 length")
        w.write(_I16.pack(n))


def fail_type(expected: str, obj: object, path: str) -> WireError:
    return WireError(f"expected {expected}, got {type(obj).__name__}", path=path)


def null_error(path: str) -> WireError:
    return WireError("None in a non-nullable field", path=path)


# --------------------------------------------------------------------------------------------
# offset readers for compiled parsers
#
# Compiled parsers read straight from the body ``bytes`` with an offset (``unpack_from`` and
# slices) instead of a BytesIO ``read`` per field. Same contract as the lean readers above:
# any exception only sends the engine to the interpreted parser, every length is checked
# against ``len(data)`` before a slice or a loop, and ``unpack_from`` raises on a short read.
# --------------------------------------------------------------------------------------------


def uvarint_at(data: bytes, pos: int) -> tuple[int, int]:
    """Unsigned varint at ``pos``: its value and the offset after it."""
    result = 0
    shift = 0
    while shift <= 28:
        x = data[pos]
        pos += 1
        result |= (x & 0x7F) << shift
        if x < 0x80:
            if result > 0xFFFFFFFF:
                raise ValueError("varint exceeds 32 bits")
            return result, pos
        shift += 7
    raise ValueError("varint longer than 5 bytes")


def tags_at(data: bytes, pos: int, obj: dict[str, Any],
            tagmap: dict[int, tuple[str, TagParser]]) -> int:
    """A non-empty tagged-field section at ``pos`` (the rare case); the offset after it."""
    r = Reader(data)
    r.seek(pos)
    read_tags(r, obj, tagmap)
    return r.tell()


OffsetParser = Callable[[bytes, int], tuple[Any, int]]


def from_stream(r: io.BytesIO, parse: OffsetParser) -> Any:
    """Run an offset parser on a BytesIO at its position (getvalue() does not copy)."""
    value, end = parse(r.getvalue(), r.tell())
    r.seek(end)
    return value


class FixedArrays(dict[int, struct.Struct]):
    """``struct.Struct(">{n}{ch}")`` per element count, built once per count.

    Counts are bounded by the body size before they get here; only small counts are kept,
    so hostile input cannot grow the cache."""

    def __init__(self, ch: str) -> None:
        super().__init__()
        self.ch = ch

    def __missing__(self, n: int) -> struct.Struct:
        s = struct.Struct(f">{n}{self.ch}")
        if n <= 4096 and len(self) < 4096:
            self[n] = s
        return s


FIXED_ARRAYS = {ch: FixedArrays(ch) for ch in "bBhHiIlLqQfd"}


def uvarint_bytes(value: int) -> bytes:
    """An unsigned varint as bytes (compiled writers inline the one-byte case)."""
    out = io.BytesIO()
    write_uvarint(out, value)
    return out.getvalue()


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


# "Key absent from the value dict": distinct from None, which is a legitimate (null) value.
MISSING: Any = _Missing()
