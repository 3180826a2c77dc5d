"""Construct building blocks for Kafka's wire types.

Each Kafka type is a small ``construct.Construct`` subclass with two parse paths:

* ``_parse`` (interpreted): tracks the field path (``topics[2].partitions[0].x``) and the byte
  offset of the failing field, so a ``CodecError`` can say exactly where bytes went wrong.
* ``_emitparse`` (construct's ``.compile()``): straight-line generated code calling the plain
  ``read_*`` helpers below. Compiled code does not track paths, so the engine parses with the
  compiled form first and, only when that fails, re-parses with the interpreted form to
  produce the diagnosis.

Why custom classes rather than construct's PascalString/PrefixedArray/Flag: Kafka's nullable
and compact (varint length + 1) encodings have no construct equivalent, and construct's
compiled code does not check short reads (a compiled ``Flag`` reads EOF as ``True``, a
compiled ``Bytes`` returns fewer bytes than asked). Every helper here checks a length prefix
against the bytes remaining in the bounded ``Reader`` *before* reading or looping, so
nothing ever allocates from an untrusted length and a compiled parser cannot run past the
frame. Fixed-width integers use construct's own ``FormatField`` (its compiled form raises
``struct.error`` on a short read, which the engine turns into the interpreted diagnosis).
"""

from __future__ import annotations

import io
import struct
import uuid
from collections.abc import Callable
from typing import Any

from construct import (
    Construct,
    ConstructError,
    Float64b,
    Int8sb,
    Int16sb,
    Int16ub,
    Int32sb,
    Int32ub,
    Int64sb,
)

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_ZERO_UUID = uuid.UUID(int=0)
UNKNOWN_TAGS = "_unknown_tags"
_HELPERS = (
    "from codec.primitives import read_bool, read_uuid, read_tags, fast_uvarint, "
    "fast_str16, fast_str16_null, fast_cstr, fast_cstr_null, fast_bytes32, "
    "fast_bytes32_null, fast_cbytes, fast_cbytes_null, fast_alen32, fast_alen32_null, "
    "fast_calen, fast_calen_null, fast_tags_after, w_bool, w_uuid, w_str16, w_str16_null, "
    "w_cstr, w_cstr_null, w_bytes32, w_bytes32_null, w_cbytes, w_cbytes_null, w_uvarint, "
    "MISSING\nfrom uuid import UUID"
)


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
# plain readers/writers shared by both parse paths
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
        obj[name] = parse(sub)
        if sub.tell() != size:
            raise WireError(f"tagged field {tag} ({name}) has {size - sub.tell()} extra bytes")
    if unknown:
        obj[UNKNOWN_TAGS] = unknown


def _write_len(w: io.BytesIO, n: int, compact: bool, wide: bool) -> None:
    if compact:
        write_uvarint(w, n + 1)
    elif wide:
        w.write(_I32.pack(n))
    else:
        if n > 0x7FFF:
            raise WireError(f"string of {n} bytes is too long for an int16 length")
        w.write(_I16.pack(n))


def _fail_type(expected: str, obj: object, path: str) -> WireError:
    return WireError(f"expected {expected}, got {type(obj).__name__}", path=path)


def _null_error(path: str) -> WireError:
    return WireError("None in a non-nullable field", path=path)


# --------------------------------------------------------------------------------------------
# compiled-path readers
#
# Lean on purpose: any exception they raise (IndexError at EOF, struct.error, ValueError) only
# sends the engine to the interpreted parser for a precise diagnosis. What they must never do
# is return a value the interpreted parser would reject, or loop/allocate from an unchecked
# length: every payload read is length-checked and every count is bounded by the bytes left.
# BytesIO.read(n) itself allocates at most the bytes that remain.
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


_FAST_STR = {(False, False): "fast_str16", (False, True): "fast_str16_null",
             (True, False): "fast_cstr", (True, True): "fast_cstr_null"}
_FAST_BYTES = {(False, False): "fast_bytes32", (False, True): "fast_bytes32_null",
               (True, False): "fast_cbytes", (True, True): "fast_cbytes_null"}
_FAST_ALEN = {(False, False): "fast_alen32", (False, True): "fast_alen32_null",
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


_W_STR = {(False, False): "w_str16", (False, True): "w_str16_null",
          (True, False): "w_cstr", (True, True): "w_cstr_null"}
_W_BYTES = {(False, False): "w_bytes32", (False, True): "w_bytes32_null",
            (True, False): "w_cbytes", (True, True): "w_cbytes_null"}


def _literal(value: Any) -> str:
    """Source text for an encode default (only the types defaults can have)."""
    if isinstance(value, uuid.UUID):
        return f"UUID(int={value.int})"
    if isinstance(value, list | dict):
        if value:
            raise ValueError("only empty containers are encode defaults")
        return "[]" if isinstance(value, list) else "{}"
    if value is None or isinstance(value, bool | int | float | str | bytes):
        return repr(value)
    raise ValueError(f"no literal for {value!r}")


def writer_stmt(con: Construct, code: Any, var: str) -> str:
    """One statement writing ``var``; fixed-width numbers are packed inline."""
    ch = _fixed_char(con)
    if ch is not None:
        n = code.allocateId()
        code.append(f"kafka_pack_{n} = struct.Struct('>{ch}').pack")
        return f"io.write(kafka_pack_{n}({var}))"
    return f"{writer_for(con, code)}(io, {var})"


def writer_for(con: Construct, code: Any) -> str:
    """Name of a generated ``f(io, value)`` that writes ``value`` with ``con``."""
    _helpers(code)
    ch = _fixed_char(con)
    if ch is not None:
        n = code.allocateId()
        code.append(f"kafka_pack_{n} = struct.Struct('>{ch}').pack")
        code.append(f"def kafka_wfixed_{n}(io, v):\n    io.write(kafka_pack_{n}(v))")
        return f"kafka_wfixed_{n}"
    emit = getattr(con, "emit_writer", None)
    if emit is None:
        raise NotImplementedError(f"no compiled writer for {con!r}")
    return emit(code)


# --------------------------------------------------------------------------------------------
# construct classes
# --------------------------------------------------------------------------------------------


def _helpers(code: Any) -> None:
    code.append(_HELPERS)


def _reraise(exc: WireError, path: str, offset: int) -> WireError:
    """Attach path/offset to an error from a plain reader (which knows neither)."""
    return WireError(exc.reason, path=path, offset=offset)


class Bool(Construct):
    def _parse(self, stream: Reader, context: Any, path: str) -> bool:
        start = stream.tell()
        try:
            return read_bool(stream)
        except WireError as exc:
            raise _reraise(exc, path, start) from None

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> Any:
        if not isinstance(obj, bool):
            raise _fail_type("bool", obj, path)
        stream.write(b"\x01" if obj else b"\x00")
        return obj

    def _emitparse(self, code: Any) -> str:
        _helpers(code)
        return "read_bool(io)"

    def emit_writer(self, code: Any) -> str:
        return "w_bool"


class Uuid(Construct):
    def _parse(self, stream: Reader, context: Any, path: str) -> uuid.UUID:
        start = stream.tell()
        try:
            return read_uuid(stream)
        except WireError as exc:
            raise _reraise(exc, path, start) from None

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> Any:
        if not isinstance(obj, uuid.UUID):
            raise _fail_type("uuid.UUID", obj, path)
        stream.write(obj.bytes)
        return obj

    def _emitparse(self, code: Any) -> str:
        _helpers(code)
        return "read_uuid(io)"

    def emit_writer(self, code: Any) -> str:
        return "w_uuid"


class String(Construct):
    """STRING / NULLABLE_STRING / COMPACT_STRING / COMPACT_NULLABLE_STRING."""

    def __init__(self, compact: bool, nullable: bool) -> None:
        super().__init__()
        self.compact = compact
        self.nullable = nullable

    def _parse(self, stream: Reader, context: Any, path: str) -> str | None:
        start = stream.tell()
        try:
            return read_string(stream, self.compact, self.nullable)
        except WireError as exc:
            raise _reraise(exc, path, start) from None

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> Any:
        if obj is None:
            if not self.nullable:
                raise _null_error(path)
            _write_len(stream, -1, self.compact, False)
            return obj
        if not isinstance(obj, str):
            raise _fail_type("str", obj, path)
        data = obj.encode("utf-8")
        try:
            _write_len(stream, len(data), self.compact, False)
        except WireError as exc:
            raise WireError(exc.reason, path=path) from None
        stream.write(data)
        return obj

    def _emitparse(self, code: Any) -> str:
        _helpers(code)
        return f"{_FAST_STR[self.compact, self.nullable]}(io)"

    def emit_writer(self, code: Any) -> str:
        return _W_STR[self.compact, self.nullable]


class Bytes(Construct):
    """BYTES / NULLABLE_BYTES / COMPACT_(NULLABLE_)BYTES, and RECORDS (same wire form)."""

    def __init__(self, compact: bool, nullable: bool) -> None:
        super().__init__()
        self.compact = compact
        self.nullable = nullable

    def _parse(self, stream: Reader, context: Any, path: str) -> bytes | None:
        start = stream.tell()
        try:
            return read_bytes(stream, self.compact, self.nullable)
        except WireError as exc:
            raise _reraise(exc, path, start) from None

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> Any:
        if obj is None:
            if not self.nullable:
                raise _null_error(path)
            _write_len(stream, -1, self.compact, True)
            return obj
        if not isinstance(obj, bytes | bytearray | memoryview):
            raise _fail_type("bytes", obj, path)
        data = bytes(obj)
        _write_len(stream, len(data), self.compact, True)
        stream.write(data)
        return obj

    def _emitparse(self, code: Any) -> str:
        _helpers(code)
        return f"{_FAST_BYTES[self.compact, self.nullable]}(io)"

    def emit_writer(self, code: Any) -> str:
        return _W_BYTES[self.compact, self.nullable]


class Array(Construct):
    """ARRAY / COMPACT_ARRAY of any element construct, optionally nullable."""

    def __init__(self, element: Construct, compact: bool, nullable: bool) -> None:
        super().__init__()
        self.element = element
        self.compact = compact
        self.nullable = nullable

    def _parse(self, stream: Reader, context: Any, path: str) -> list[Any] | None:
        start = stream.tell()
        try:
            n = read_array_len(stream, self.compact, self.nullable)
        except WireError as exc:
            raise _reraise(exc, path, start) from None
        if n is None:
            return None
        element = self.element
        out: list[Any] = []
        for i in range(n):
            at = stream.tell()
            try:
                out.append(element._parse(stream, context, f"{path}[{i}]"))
            except WireError as exc:
                if exc.offset is None:
                    exc.offset = at
                raise
            except ConstructError as exc:
                raise WireError(_reason(exc), path=f"{path}[{i}]", offset=at) from None
        return out

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> Any:
        if obj is None:
            if not self.nullable:
                raise _null_error(path)
            _write_len(stream, -1, self.compact, True)
            return obj
        if not isinstance(obj, list | tuple):
            raise _fail_type("list", obj, path)
        _write_len(stream, len(obj), self.compact, True)
        element = self.element
        for i, item in enumerate(obj):
            try:
                element._build(item, stream, context, "")
            except Exception as exc:  # re-raised as WireError with its path
                raise _prefixed(exc, f"[{i}]", item) from None
        return obj

    def _emitparse(self, code: Any) -> str:
        _helpers(code)
        fname = f"kafka_array_{code.allocateId()}"
        element = self.element._compileparse(code)
        alen = _FAST_ALEN[self.compact, self.nullable]
        ch = _fixed_char(self.element)
        if ch is not None:
            # n is already bounded by the bytes left; unpack raises unless exactly n items.
            size = struct.calcsize(">" + ch)
            code.append(f"""
                def {fname}(io, this):
                    n = {alen}(io)
                    if n is None:
                        return None
                    return list(struct.unpack(">%d{ch}" % n, io.read({size} * n)))
            """)
        elif self.nullable:
            code.append(f"""
                def {fname}(io, this):
                    n = {alen}(io)
                    if n is None:
                        return None
                    return [{element} for _ in range(n)]
            """)
        else:
            code.append(f"""
                def {fname}(io, this):
                    return [{element} for _ in range({alen}(io))]
            """)
        return f"{fname}(io, this)"

    def emit_writer(self, code: Any) -> str:
        fname = f"kafka_warray_{code.allocateId()}"
        if self.nullable:
            null = "w_uvarint(io, 0)" if self.compact else "io.write(b'\\xff\\xff\\xff\\xff')"
        else:
            null = "raise TypeError('None in a non-nullable array')"
        size = ("w_uvarint(io, len(v) + 1)" if self.compact
                else "io.write(struct.pack('>i', len(v)))")
        ch = _fixed_char(self.element)
        if ch is not None:
            body = f"io.write(struct.pack('>%d{ch}' % len(v), *v))"
        else:
            body = f"for item in v:\n        {writer_for(self.element, code)}(io, item)"
        code.append(f"def {fname}(io, v):\n"
                    f"    if v is None:\n"
                    f"        {null}\n"
                    f"        return\n"
                    f"    if not isinstance(v, (list, tuple)):\n"
                    f"        raise TypeError('list expected')\n"
                    f"    {size}\n"
                    f"    {body}")
        return fname

    def _emitbuild(self, code: Any) -> str:
        return f"{self.emit_writer(code)}(io, obj)"


class StructField:
    """One regular (untagged) field of a Struct: its key, construct and encode default."""

    __slots__ = ("con", "default", "name")

    def __init__(self, name: str, con: Construct, default: Any) -> None:
        self.name = name
        self.con = con
        self.default = default


class TaggedField:
    """One known tagged field: written only when its value differs from ``default``."""

    __slots__ = ("con", "default", "name", "tag")

    def __init__(self, tag: int, name: str, con: Construct, default: Any) -> None:
        self.tag = tag
        self.name = name
        self.con = con
        self.default = default


class Struct(Construct):
    """A Kafka struct (message body or nested struct) parsed into a plain dict.

    ``tagged`` is None in non-flexible versions (no tagged-field section on the wire).
    """

    def __init__(self, fields: list[StructField], tagged: list[TaggedField] | None) -> None:
        super().__init__()
        self.fields = fields
        self.tagged = tagged
        self._tagmap: dict[int, tuple[str, TagParser]] = {}
        for t in tagged or ():
            self._tagmap[t.tag] = (t.name, _slow_tag_parser(t))

    def _parse(self, stream: Reader, context: Any, path: str) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        for f in self.fields:
            fpath = f"{path}.{f.name}" if path else f.name
            start = stream.tell()
            try:
                obj[f.name] = f.con._parse(stream, context, fpath)
            except WireError as exc:
                if exc.offset is None:
                    exc.offset = start
                raise
            except ConstructError as exc:
                raise WireError(_reason(exc), path=fpath, offset=start) from None
        if self.tagged is not None:
            start = stream.tell()
            try:
                read_tags(stream, obj, self._tagmap)
            except WireError as exc:
                if exc.path is None:
                    raise WireError(exc.reason, path=path + "._tagged_fields" if path else
                                    "_tagged_fields", offset=start) from None
                if exc.offset is None:
                    exc.offset = start
                raise
        return obj

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> Any:
        if not isinstance(obj, dict):
            raise _fail_type("dict", obj, path)
        for f in self.fields:
            value = obj.get(f.name, _MISSING)
            if value is _MISSING:
                value = f.default
            try:
                f.con._build(value, stream, context, "")
            except Exception as exc:  # re-raised as WireError with its path
                raise _prefixed(exc, f.name, value) from None
        if self.tagged is not None:
            self._build_tags(obj, stream, context, path)
        return obj

    def _build_tags(self, obj: dict[str, Any], stream: io.BytesIO, context: Any,
                    path: str) -> None:
        entries: dict[int, bytes] = {}
        unknown = obj.get(UNKNOWN_TAGS)
        if unknown:
            if not isinstance(unknown, dict):
                raise _fail_type("dict[int, bytes]", unknown, UNKNOWN_TAGS)
            for tag, raw in unknown.items():
                if not isinstance(tag, int) or not isinstance(raw, bytes | bytearray):
                    raise WireError("unknown tags must map int to bytes",
                                    path=UNKNOWN_TAGS)
                entries[tag] = bytes(raw)
        for t in self.tagged or ():
            value = obj.get(t.name, _MISSING)
            if value is _MISSING or value == t.default:
                continue
            if t.tag in entries:
                raise WireError(f"tag {t.tag} given both as {t.name} and in {UNKNOWN_TAGS}",
                                path=path)
            buf = io.BytesIO()
            try:
                t.con._build(value, buf, context, "")
            except Exception as exc:  # re-raised as WireError with its path
                raise _prefixed(exc, t.name, value) from None
            entries[t.tag] = buf.getvalue()
        write_uvarint(stream, len(entries))
        for tag in sorted(entries):
            data = entries[tag]
            write_uvarint(stream, tag)
            write_uvarint(stream, len(data))
            stream.write(data)

    def _emitparse(self, code: Any) -> str:
        _helpers(code)
        n = code.allocateId()
        fname = f"kafka_struct_{n}"
        # Runs of fixed-width fields are read with one struct.unpack (which raises on a short
        # read); everything else reads in wire order into locals, then one dict display.
        lines = [f"def {fname}(io, this):"]
        names: list[str] = []
        run: list[tuple[str, str]] = []  # (local, format char)

        def flush() -> None:
            if not run:
                return
            fmt = ">" + "".join(ch for _, ch in run)
            sname = f"kafka_fixed_{code.allocateId()}"
            code.append(f"{sname} = struct.Struct({fmt!r})")
            targets = ", ".join(local for local, _ in run)
            lines.append(f"    {targets}, = {sname}.unpack(io.read({struct.calcsize(fmt)}))")
            run.clear()

        for i, f in enumerate(self.fields):
            local = f"v{i}"
            names.append(f"{f.name!r}: {local}")
            ch = _fixed_char(f.con)
            if ch is not None:
                run.append((local, ch))
                continue
            flush()
            lines.append(f"    {local} = {f.con._compileparse(code)}")
        flush()
        lines.append(f"    obj = {{{', '.join(names)}}}")
        if self.tagged is not None:
            tagmap = f"kafka_tags_{n}"
            entries = ", ".join(
                f"{t.tag}: ({t.name!r}, lambda io, this=None: {t.con._compileparse(code)})"
                for t in self.tagged
            )
            code.append(f"{tagmap} = {{{entries}}}")
            # Nearly every section is empty: one byte, 0x00.
            lines.append("    first = io.read(1)")
            lines.append("    if first != b'\\x00':")
            lines.append(f"        fast_tags_after(io, obj, {tagmap}, first)")
        lines.append("    return obj")
        code.append("\n".join(lines))
        return f"{fname}(io, this)"

    def emit_writer(self, code: Any) -> str:
        n = code.allocateId()
        fname = f"kafka_wstruct_{n}"
        out = [f"def {fname}(io, v):",
               "    if not isinstance(v, dict):",
               "        raise TypeError('dict expected')",
               "    get = v.get"]
        for i, f in enumerate(self.fields):
            out.append(f"    x{i} = get({f.name!r}, MISSING)")
            out.append(f"    if x{i} is MISSING:")
            out.append(f"        x{i} = {_literal(f.default)}")
            out.append(f"    {writer_stmt(f.con, code, f'x{i}')}")
        if self.tagged is not None:
            code.linkedinstances[id(self)] = self
            absent = " and ".join(
                ["not get('_unknown_tags')"]
                + [f"get({t.name!r}, MISSING) is MISSING" for t in self.tagged])
            out.append(f"    if {absent}:")
            out.append("        io.write(b'\\x00')")
            out.append("    else:")
            out.append(f"        linkedinstances[{id(self)}]._build_tags(v, io, None, '')")
        code.append("\n".join(out))
        return fname

    def _emitbuild(self, code: Any) -> str:
        return f"{self.emit_writer(code)}(io, obj)"


class NullableStruct(Construct):
    """A nullable struct field: int8 marker (-1 null, 1 present), then the struct."""

    def __init__(self, struct_con: Struct) -> None:
        super().__init__()
        self.struct_con = struct_con

    def _parse(self, stream: Reader, context: Any, path: str) -> dict[str, Any] | None:
        b = stream.read(1)
        if not b:
            raise WireError("truncated nullable-struct marker", path=path,
                            offset=stream.tell())
        if b[0] >= 0x80:
            return None
        return self.struct_con._parse(stream, context, path)

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> Any:
        if obj is None:
            stream.write(b"\xff")
            return obj
        stream.write(b"\x01")
        return self.struct_con._build(obj, stream, context, path)

    def _emitparse(self, code: Any) -> str:
        _helpers(code)
        fname = f"kafka_nullable_struct_{code.allocateId()}"
        inner = self.struct_con._compileparse(code)
        code.append(f"""
            def {fname}(io, this):
                b = io.read(1)
                if not b:
                    raise ValueError("truncated nullable-struct marker")
                if b[0] >= 0x80:
                    return None
                return {inner}
        """)
        return f"{fname}(io, this)"

    def emit_writer(self, code: Any) -> str:
        fname = f"kafka_wnullable_{code.allocateId()}"
        inner = self.struct_con.emit_writer(code)
        code.append(f"def {fname}(io, v):\n"
                    f"    if v is None:\n"
                    f"        io.write(b'\\xff')\n"
                    f"    else:\n"
                    f"        io.write(b'\\x01')\n"
                    f"        {inner}(io, v)")
        return fname

    def _emitbuild(self, code: Any) -> str:
        return f"{self.emit_writer(code)}(io, obj)"


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()
MISSING = _MISSING


def _reason(exc: ConstructError) -> str:
    if isinstance(exc, WireError):
        return exc.reason
    text = str(exc)
    # construct prefixes "Error in path ...\n"; the path is reported separately.
    return text.split("\n", 1)[-1] if text.startswith("Error in path") else text


def _join(segment: str, sub: str | None) -> str:
    if not sub:
        return segment
    return segment + sub if sub.startswith("[") else f"{segment}.{sub}"


def _prefixed(exc: Exception, segment: str, value: Any) -> WireError:
    """Rebuild an encode failure with the field path grown by one segment.

    Paths are assembled only on the way out of a failure, so a successful encode never
    formats a path string.
    """
    if isinstance(exc, WireError):
        return WireError(exc.reason, path=_join(segment, exc.path))
    if isinstance(exc, ConstructError):
        return WireError(_reason(exc), path=segment)
    return WireError(f"cannot encode {value!r:.60}: {type(exc).__name__}: {exc}", path=segment)


def _slow_tag_parser(t: TaggedField) -> TagParser:
    def parse(sub: Reader) -> Any:
        return t.con._parse(sub, None, t.name)

    return parse


def _fixed_char(con: Construct) -> str | None:
    """struct format char of a fixed-width numeric construct, else None."""
    fmt = getattr(con, "fmtstr", None)
    if con in _FIXED.values() and isinstance(fmt, str):
        return fmt.lstrip("<>=!")
    return None


def int_con(kind: str) -> Construct:
    """Fixed-width numeric types map straight onto construct's compilable FormatFields."""
    return _FIXED[kind]


_FIXED: dict[str, Construct] = {
    "int8": Int8sb,
    "int16": Int16sb,
    "int32": Int32sb,
    "int64": Int64sb,
    "uint16": Int16ub,
    "uint32": Int32ub,
    "float64": Float64b,
}

ZERO_UUID = _ZERO_UUID
