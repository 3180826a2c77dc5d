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
    "from codec.primitives import read_bool, read_uuid, read_string, read_bytes, "
    "read_array_len, read_tags, Reader"
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
        return f"read_string(io, {self.compact}, {self.nullable})"


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
        return f"read_bytes(io, {self.compact}, {self.nullable})"


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
            _build_child(element, item, stream, context, f"{path}[{i}]")
        return obj

    def _emitparse(self, code: Any) -> str:
        _helpers(code)
        fname = f"kafka_array_{code.allocateId()}"
        element = self.element._compileparse(code)
        code.append(f"""
            def {fname}(io, this):
                n = read_array_len(io, {self.compact}, {self.nullable})
                if n is None:
                    return None
                return [{element} for _ in range(n)]
        """)
        return f"{fname}(io, this)"


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
            _build_child(f.con, value, stream, context, f"{path}.{f.name}" if path else f.name)
        if self.tagged is not None:
            self._build_tags(obj, stream, context, path)
        return obj

    def _build_tags(self, obj: dict[str, Any], stream: io.BytesIO, context: Any,
                    path: str) -> None:
        entries: dict[int, bytes] = {}
        unknown = obj.get(UNKNOWN_TAGS)
        if unknown:
            if not isinstance(unknown, dict):
                raise _fail_type("dict[int, bytes]", unknown, f"{path}.{UNKNOWN_TAGS}")
            for tag, raw in unknown.items():
                if not isinstance(tag, int) or not isinstance(raw, bytes | bytearray):
                    raise WireError("unknown tags must map int to bytes",
                                    path=f"{path}.{UNKNOWN_TAGS}")
                entries[tag] = bytes(raw)
        for t in self.tagged or ():
            value = obj.get(t.name, _MISSING)
            if value is _MISSING or value == t.default:
                continue
            if t.tag in entries:
                raise WireError(f"tag {t.tag} given both as {t.name} and in {UNKNOWN_TAGS}",
                                path=path)
            buf = io.BytesIO()
            _build_child(t.con, value, buf, context, f"{path}.{t.name}" if path else t.name)
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
        lines = [f"def {fname}(io, this):", "    obj = {}"]
        for f in self.fields:
            lines.append(f"    obj[{f.name!r}] = {f.con._compileparse(code)}")
        if self.tagged is not None:
            tagmap = f"kafka_tags_{n}"
            entries = ", ".join(
                f"{t.tag}: ({t.name!r}, lambda io, this=None: {t.con._compileparse(code)})"
                for t in self.tagged
            )
            code.append(f"{tagmap} = {{{entries}}}")
            lines.append(f"    read_tags(io, obj, {tagmap})")
        lines.append("    return obj")
        code.append("\n".join(lines))
        return f"{fname}(io, this)"


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


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()


def _reason(exc: ConstructError) -> str:
    if isinstance(exc, WireError):
        return exc.reason
    text = str(exc)
    # construct prefixes "Error in path ...\n"; the path is reported separately.
    return text.split("\n", 1)[-1] if text.startswith("Error in path") else text


def _build_child(con: Construct, value: Any, stream: io.BytesIO, context: Any, path: str) -> None:
    try:
        con._build(value, stream, context, path)
    except WireError as exc:
        if exc.path is None:
            raise WireError(exc.reason, path=path) from None
        raise
    except ConstructError as exc:
        raise WireError(_reason(exc), path=path) from None
    except (TypeError, ValueError, OverflowError, struct.error) as exc:
        raise WireError(f"cannot encode {value!r:.60}: {exc}", path=path) from None


def _slow_tag_parser(t: TaggedField) -> TagParser:
    def parse(sub: Reader) -> Any:
        return t.con._parse(sub, None, t.name)

    return parse


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
