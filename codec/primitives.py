"""Construct building blocks for Kafka's wire types.

Each Kafka type is a small ``construct.Construct`` subclass with two parse paths:

* ``_parse`` (interpreted): tracks the field path (``topics[2].partitions[0].x``) and the byte
  offset of the failing field, so a ``CodecError`` can say exactly where bytes went wrong.
* ``_emitparse`` / ``_emitbuild`` (construct's ``.compile()``): generated code calling the
  lean ``fast_*`` readers and ``w_*`` writers of ``codec.wire``. Compiled code does not track
  paths, so the engine runs the compiled form first and, only when that fails, re-runs the
  interpreted form to produce the diagnosis.

Why custom classes rather than construct's PascalString/PrefixedArray/Flag: Kafka's nullable
and compact (varint length + 1) encodings have no construct equivalent, and construct's
compiled code does not check short reads (a compiled ``Flag`` reads EOF as ``True``, a
compiled ``Bytes`` returns fewer bytes than asked). Every reader in ``codec.wire`` checks a
length prefix against the bytes remaining in the bounded ``Reader`` *before* reading or
looping, so nothing ever allocates from an untrusted length and a compiled parser cannot run
past the frame. Fixed-width integers use construct's own ``FormatField`` (its compiled form raises
``struct.error`` on a short read, which the engine turns into the interpreted diagnosis).
"""

from __future__ import annotations

import io
import struct
import uuid
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

from codec.wire import (
    FAST_ALEN,
    FAST_BYTES,
    FAST_STR,
    MISSING,
    UNKNOWN_TAGS,
    W_BYTES,
    W_STR,
    Reader,
    TagParser,
    WireError,
    construct_reason,
    fail_type,
    null_error,
    read_array_len,
    read_bool,
    read_bytes,
    read_string,
    read_tags,
    read_uuid,
    write_len,
    write_uvarint,
)

_ZERO_UUID = uuid.UUID(int=0)
_HELPERS = (
    "from codec.wire import read_bool, read_uuid, read_tags, fast_uvarint, "
    "fast_str16, fast_str16_null, fast_cstr, fast_cstr_null, fast_bytes32, "
    "fast_bytes32_null, fast_cbytes, fast_cbytes_null, fast_alen32, fast_alen32_null, "
    "fast_calen, fast_calen_null, fast_tags_after, w_bool, w_uuid, w_str16, w_str16_null, "
    "w_cstr, w_cstr_null, w_bytes32, w_bytes32_null, w_cbytes, w_cbytes_null, w_uvarint, "
    "MISSING\nfrom uuid import UUID"
)


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
            raise fail_type("bool", obj, path)
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
            raise fail_type("uuid.UUID", obj, path)
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
                raise null_error(path)
            write_len(stream, -1, self.compact, False)
            return obj
        if not isinstance(obj, str):
            raise fail_type("str", obj, path)
        data = obj.encode("utf-8")
        try:
            write_len(stream, len(data), self.compact, False)
        except WireError as exc:
            raise WireError(exc.reason, path=path) from None
        stream.write(data)
        return obj

    def _emitparse(self, code: Any) -> str:
        _helpers(code)
        return f"{FAST_STR[self.compact, self.nullable]}(io)"

    def emit_writer(self, code: Any) -> str:
        return W_STR[self.compact, self.nullable]


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
                raise null_error(path)
            write_len(stream, -1, self.compact, True)
            return obj
        if not isinstance(obj, bytes | bytearray | memoryview):
            raise fail_type("bytes", obj, path)
        data = bytes(obj)
        write_len(stream, len(data), self.compact, True)
        stream.write(data)
        return obj

    def _emitparse(self, code: Any) -> str:
        _helpers(code)
        return f"{FAST_BYTES[self.compact, self.nullable]}(io)"

    def emit_writer(self, code: Any) -> str:
        return W_BYTES[self.compact, self.nullable]


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
                raise null_error(path)
            write_len(stream, -1, self.compact, True)
            return obj
        if not isinstance(obj, list | tuple):
            raise fail_type("list", obj, path)
        write_len(stream, len(obj), self.compact, True)
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
        alen = FAST_ALEN[self.compact, self.nullable]
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
                # A path here is relative to this struct (a known tagged field's own parse);
                # no path means the section itself (count, tag, size) is broken.
                where = exc.path or "_tagged_fields"
                raise WireError(exc.reason, path=f"{path}.{where}" if path else where,
                                offset=start if exc.offset is None else exc.offset) from None
        return obj

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> Any:
        if not isinstance(obj, dict):
            raise fail_type("dict", obj, path)
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
                raise fail_type("dict[int, bytes]", unknown, UNKNOWN_TAGS)
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


_MISSING = MISSING


def _reason(exc: ConstructError) -> str:
    return exc.reason if isinstance(exc, WireError) else construct_reason(exc)


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
