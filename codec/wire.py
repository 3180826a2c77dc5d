"""Kafka's wire forms as plain functions on a bounded reader (and a BytesIO writer).

Three families, all used by the construct classes in ``codec.primitives``:

* checked readers (``read_*``): the interpreted parse path; each failure is a ``WireError``
  with a reason, to which the caller adds the field path and offset;
* lean readers (``fast_*``): what construct's compiled parsers call. Any exception they raise
  (IndexError at EOF, struct.error, ValueError) only sends the engine to the interpreted
  parser for a precise diagnosis. What they must never do is return a value the checked
  readers would reject, or loop/allocate from an unchecked length;
* writers (``w_*``): what compiled encoders call; as strict as the interpreted builders.

Every length prefix is checked against the bytes remaining in ``Reader`` before a read or a
loop, so nothing allocates from an untrusted length (BytesIO.read(n) itself never returns
more than what is left).
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
# lean readers for compiled parsers (see the module docstring for their contract)
# --------------------------------------------------------------------------------------------

_I16_UNPACK = _I16.unpack
_I32_UNPACK = _I32.unpack


def _uvarint_tail(r: Reader, first: int) -> int:
    result = first & 0x7F
    shift = 7
    while shift <= 28:
        x = r.read(1)[0]
        result |= (x & 0x7F) << shift
        if x < 0x80:
            if result > 0xFFFFFFFF:
                raise ValueError("varint exceeds 32 bits")
            return result
        shift += 7
    raise ValueError("varint longer than 5 bytes")


def fast_uvarint(r: Reader) -> int:
    b: int = r.read(1)[0]
    return b if b < 0x80 else _uvarint_tail(r, b)


def _exact(r: Reader, n: int) -> bytes:
    data = r.read(n)
    if len(data) != n:
        raise ValueError("short read")
    return data


def fast_str16(r: Reader) -> str:
    n = _I16_UNPACK(r.read(2))[0]
    if n < 0:
        raise ValueError("null or negative string length")
    return _exact(r, n).decode()


def fast_str16_null(r: Reader) -> str | None:
    n = _I16_UNPACK(r.read(2))[0]
    if n < 0:
        if n == -1:
            return None
        raise ValueError("negative string length")
    return _exact(r, n).decode()


def fast_cstr(r: Reader) -> str:
    n = r.read(1)[0]
    if n >= 0x80:
        n = _uvarint_tail(r, n)
    if n == 0:
        raise ValueError("null string in a non-nullable field")
    return _exact(r, n - 1).decode()


def fast_cstr_null(r: Reader) -> str | None:
    n = r.read(1)[0]
    if n >= 0x80:
        n = _uvarint_tail(r, n)
    if n == 0:
        return None
    return _exact(r, n - 1).decode()


def fast_bytes32(r: Reader) -> bytes:
    n = _I32_UNPACK(r.read(4))[0]
    if n < 0:
        raise ValueError("null or negative bytes length")
    return _exact(r, n)


def fast_bytes32_null(r: Reader) -> bytes | None:
    n = _I32_UNPACK(r.read(4))[0]
    if n < 0:
        if n == -1:
            return None
        raise ValueError("negative bytes length")
    return _exact(r, n)


def fast_cbytes(r: Reader) -> bytes:
    n = fast_uvarint(r)
    if n == 0:
        raise ValueError("null bytes in a non-nullable field")
    return _exact(r, n - 1)


def fast_cbytes_null(r: Reader) -> bytes | None:
    n = fast_uvarint(r)
    if n == 0:
        return None
    return _exact(r, n - 1)


def fast_alen32(r: Reader) -> int:
    n: int = _I32_UNPACK(r.read(4))[0]
    if n < 0 or n > r.end - r.tell():
        raise ValueError("bad array length")
    return n


def fast_alen32_null(r: Reader) -> int | None:
    n: int = _I32_UNPACK(r.read(4))[0]
    if n == -1:
        return None
    if n < 0 or n > r.end - r.tell():
        raise ValueError("bad array length")
    return n


def fast_calen(r: Reader) -> int:
    n = fast_uvarint(r) - 1
    if n < 0 or n > r.end - r.tell():
        raise ValueError("bad array length")
    return n


def fast_calen_null(r: Reader) -> int | None:
    n = fast_uvarint(r) - 1
    if n == -1:
        return None
    if n > r.end - r.tell():
        raise ValueError("bad array length")
    return n


def fast_tags_after(r: Reader, obj: dict[str, Any], tagmap: dict[int, tuple[str, TagParser]],
                    first: bytes) -> None:
    """Tagged section whose first byte (non-zero, or empty at EOF) was already read."""
    if not first:
        raise ValueError("missing tagged-field section")
    r.seek(-1, 1)
    read_tags(r, obj, tagmap)


FAST_STR = {(False, False): "fast_str16", (False, True): "fast_str16_null",
             (True, False): "fast_cstr", (True, True): "fast_cstr_null"}
FAST_BYTES = {(False, False): "fast_bytes32", (False, True): "fast_bytes32_null",
               (True, False): "fast_cbytes", (True, True): "fast_cbytes_null"}
FAST_ALEN = {(False, False): "fast_alen32", (False, True): "fast_alen32_null",
              (True, False): "fast_calen", (True, True): "fast_calen_null"}


# --------------------------------------------------------------------------------------------
# compiled-path writers
#
# As strict as the interpreted ``_build`` methods (same accepted types, same limits): a value
# either encodes to the same bytes on both paths or fails on both. A failure here only sends
# the engine to the interpreted builder, which reports the path of the bad value.
# --------------------------------------------------------------------------------------------

_VARINT1 = [bytes((i,)) for i in range(0x80)]
_I16_PACK = _I16.pack
_I32_PACK = _I32.pack


def w_uvarint(w: io.BytesIO, value: int) -> None:
    if 0 <= value < 0x80:
        w.write(_VARINT1[value])
    else:
        write_uvarint(w, value)


def w_bool(w: io.BytesIO, v: Any) -> None:
    if v is True:
        w.write(b"\x01")
    elif v is False:
        w.write(b"\x00")
    else:
        raise TypeError("bool expected")


def w_uuid(w: io.BytesIO, v: Any) -> None:
    if not isinstance(v, uuid.UUID):
        raise TypeError("uuid.UUID expected")
    w.write(v.bytes)


def _utf8(v: Any) -> bytes:
    if not isinstance(v, str):
        raise TypeError("str expected")
    return v.encode()


def w_str16(w: io.BytesIO, v: Any) -> None:
    data = _utf8(v)
    if len(data) > 0x7FFF:
        raise ValueError("string too long for an int16 length")
    w.write(_I16_PACK(len(data)))
    w.write(data)


def w_str16_null(w: io.BytesIO, v: Any) -> None:
    if v is None:
        w.write(b"\xff\xff")
    else:
        w_str16(w, v)


def w_cstr(w: io.BytesIO, v: Any) -> None:
    data = _utf8(v)
    w_uvarint(w, len(data) + 1)
    w.write(data)


def w_cstr_null(w: io.BytesIO, v: Any) -> None:
    if v is None:
        w.write(b"\x00")
    else:
        w_cstr(w, v)


def _raw(v: Any) -> bytes:
    if not isinstance(v, bytes | bytearray | memoryview):
        raise TypeError("bytes expected")
    return bytes(v)


def w_bytes32(w: io.BytesIO, v: Any) -> None:
    data = _raw(v)
    w.write(_I32_PACK(len(data)))
    w.write(data)


def w_bytes32_null(w: io.BytesIO, v: Any) -> None:
    if v is None:
        w.write(b"\xff\xff\xff\xff")
    else:
        w_bytes32(w, v)


def w_cbytes(w: io.BytesIO, v: Any) -> None:
    data = _raw(v)
    w_uvarint(w, len(data) + 1)
    w.write(data)


def w_cbytes_null(w: io.BytesIO, v: Any) -> None:
    if v is None:
        w.write(b"\x00")
    else:
        w_cbytes(w, v)


W_STR = {(False, False): "w_str16", (False, True): "w_str16_null",
          (True, False): "w_cstr", (True, True): "w_cstr_null"}
W_BYTES = {(False, False): "w_bytes32", (False, True): "w_bytes32_null",
            (True, False): "w_cbytes", (True, True): "w_cbytes_null"}


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


# "Key absent from the value dict": distinct from None, which is a legitimate (null) value.
MISSING: Any = _Missing()
