"""Construct building blocks for Kafka's wire types.

Each Kafka type is a small ``construct.Construct`` subclass with two parse paths:

* ``_parse`` (interpreted): tracks the field path (``topics[2].partitions[0].x``) and the byte
  offset of the failing field, so a ``CodecError`` can say exactly where bytes went wrong.
* ``_emitparse`` / ``_emitbuild`` (construct's ``.compile()``): the root construct of a
  message emits one straight-line parser ``f(data, pos) -> (value, end)`` reading the body
  ``bytes`` by offset, and one writer ``f(value) -> bytearray``; every nested construct
  contributes inline statements (``emit_read`` / ``emit_write``), so a message costs one
  function call, not one per field. Compiled code does not track paths, so the engine runs
  the compiled form first and, only when that fails, re-runs the interpreted form to produce
  the diagnosis.

Why custom classes rather than construct's PascalString/PrefixedArray/Flag: Kafka's nullable
and compact (varint length + 1) encodings have no construct equivalent, and construct's
compiled code does not check short reads (a compiled ``Flag`` reads EOF as ``True``, a
compiled ``Bytes`` returns fewer bytes than asked). Both paths here check every length prefix
and element count against the bytes remaining *before* slicing or looping, so nothing ever
allocates from an untrusted length and a compiled parser cannot run past the frame
(``unpack_from`` and ``data[pos]`` raise at the end of the body, which the engine turns into
the interpreted diagnosis). Fixed-width integers use construct's own ``FormatField``; the
compiled code packs and unpacks runs of them with one ``struct.Struct``.
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

from kafka_chaos_proxy.codec.wire import (
    MISSING,
    UNKNOWN_TAGS,
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
    "from kafka_chaos_proxy.codec.wire import MISSING, FIXED_ARRAYS, uvarint_at, uvarint_bytes, "
    "tags_at, from_stream\nfrom uuid import UUID\n"
    "kafka_i16 = struct.Struct('>h')\nkafka_i32 = struct.Struct('>i')"
)


def _literal(value: Any, code: Any) -> str:
    """Source text for an encode default (only the types defaults can have)."""
    if isinstance(value, uuid.UUID):
        name = f"kafka_uuid_{value.int}"
        code.append(f"{name} = UUID(int={value.int})")
        return name
    if isinstance(value, list | dict):
        if value:
            raise ValueError("only empty containers are encode defaults")
        return "[]" if isinstance(value, list) else "{}"
    if value is None or isinstance(value, bool | int | float | str | bytes):
        return repr(value)
    raise ValueError(f"no literal for {value!r}")


# --------------------------------------------------------------------------------------------
# compiled parsers: straight-line code on (data, pos)
#
# A compiled parser is one generated function per message, ``f(data, pos) -> (value, end)``,
# reading the body ``bytes`` by offset: runs of fixed-width fields in one ``unpack_from``,
# ``[]int32``-style arrays in one ``unpack_from`` with a per-count cached ``struct.Struct``,
# nested structs and array elements inlined into loops (no call per field). Every length or
# count is checked against ``dlen - pos`` before a slice or a loop; ``unpack_from`` and
# ``data[pos]`` raise rather than read past the end. Any exception sends the engine to the
# interpreted parser, which names the field and offset.
# --------------------------------------------------------------------------------------------


def emit_read(con: Construct, code: Any, out: list[str], ind: str, target: str) -> None:
    """Append statements reading one ``con`` value into local ``target``, advancing ``pos``."""
    ch = _fixed_char(con)
    if ch is not None:
        out.append(f"{ind}{target}, = {_fixed_struct(code, '>' + ch)}.unpack_from(data, pos)")
        out.append(f"{ind}pos += {struct.calcsize('>' + ch)}")
        return
    emit = getattr(con, "emit_read", None)
    if emit is None:
        raise NotImplementedError(f"no compiled parser for {con!r}")
    emit(code, out, ind, target)


def emit_offset_parser(con: Construct, code: Any) -> str:
    """Name of a generated ``f(data, pos) -> (value, end)`` parsing one ``con``."""
    _helpers(code)
    fname = f"kafka_off_{code.allocateId()}"
    lines = [f"def {fname}(data, pos):", "    dlen = len(data)"]
    emit_read(con, code, lines, "    ", "value")
    lines.append("    return value, pos")
    code.append("\n".join(lines))
    return fname


def _emit_root(con: Construct, code: Any) -> str:
    """construct's parse expression for ``con`` compiled as the root: the offset parser run
    on the stream's bytes. ``kafka_entry`` lets the engine call it on ``bytes`` directly."""
    fname = emit_offset_parser(con, code)
    code.append(f"kafka_entry = {fname}")
    return f"from_stream(io, {fname})"


def _fixed_struct(code: Any, fmt: str) -> str:
    name = f"kafka_fixed_{code.allocateId()}"
    code.append(f"{name} = struct.Struct({fmt!r})")
    return name


def _emit_len(out: list[str], ind: str, compact: bool, wide: bool) -> None:
    """Statements setting ``n`` to a length prefix (-1: null)."""
    if compact:
        out += [f"{ind}n = data[pos]",
                f"{ind}if n < 0x80:",
                f"{ind}    pos += 1",
                f"{ind}else:",
                f"{ind}    n, pos = uvarint_at(data, pos)",
                f"{ind}n -= 1"]
    elif wide:
        out += [f"{ind}n, = kafka_i32.unpack_from(data, pos)", f"{ind}pos += 4"]
    else:
        out += [f"{ind}n, = kafka_i16.unpack_from(data, pos)", f"{ind}pos += 2"]


def _emit_payload(out: list[str], ind: str, target: str, nullable: bool, decode: bool) -> None:
    """Statements reading ``n`` bytes (``n`` from ``_emit_len``) into ``target``."""
    value = "data[pos:e].decode()" if decode else "data[pos:e]"
    out += [f"{ind}if n >= 0:",
            f"{ind}    e = pos + n",
            f"{ind}    if e > dlen:",
            f"{ind}        raise ValueError('length exceeds the bytes remaining')",
            f"{ind}    {target} = {value}",
            f"{ind}    pos = e"]
    if nullable:
        out += [f"{ind}elif n == -1:", f"{ind}    {target} = None"]
    out += [f"{ind}else:", f"{ind}    raise ValueError('bad length')"]


# --------------------------------------------------------------------------------------------
# construct classes
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# compiled writers: straight-line code appending to one bytearray
#
# A compiled writer is one generated function per message, ``f(value) -> bytearray``, with
# nested structs and array elements inlined, runs of fixed-width fields packed by one
# ``struct.Struct``, and ``[]int32``-style arrays packed in one call. It is exactly as strict
# as the interpreted ``_build`` methods (same accepted types, same limits): a value either
# encodes to the same bytes on both paths or fails on both, and a failure here only sends the
# engine to the interpreted builder, which reports the path of the bad value.
# --------------------------------------------------------------------------------------------


def emit_write(con: Construct, code: Any, out: list[str], ind: str, x: str) -> None:
    """Append statements writing local ``x`` with ``con`` to ``buf``."""
    ch = _fixed_char(con)
    if ch is not None:
        out.append(f"{ind}buf += {_fixed_struct(code, '>' + ch)}.pack({x})")
        return
    emit = getattr(con, "emit_write", None)
    if emit is None:
        raise NotImplementedError(f"no compiled writer for {con!r}")
    emit(code, out, ind, x)


def _emit_build_root(con: Construct, code: Any) -> str:
    """construct's build expression for ``con`` compiled as the root. ``kafka_write_entry``
    lets the engine call the writer directly and take its bytes."""
    _helpers(code)
    fname = f"kafka_write_{code.allocateId()}"
    lines = [f"def {fname}(value):", "    buf = bytearray()"]
    emit_write(con, code, lines, "    ", "value")
    lines.append("    return buf")
    code.append("\n".join(lines))
    code.append(f"kafka_write_entry = {fname}")
    return f"io.write({fname}(obj))"


def _emit_write_len(out: list[str], ind: str, length: str, compact: bool, wide: bool) -> None:
    """Statements writing a (non-null) length prefix."""
    if compact:
        out += [f"{ind}n = {length} + 1",
                f"{ind}if n < 0x80:",
                f"{ind}    buf.append(n)",
                f"{ind}else:",
                f"{ind}    buf += uvarint_bytes(n)"]
    elif wide:
        out.append(f"{ind}buf += kafka_i32.pack({length})")
    else:
        out += [f"{ind}if {length} > 0x7FFF:",
                f"{ind}    raise ValueError('string too long for an int16 length')",
                f"{ind}buf += kafka_i16.pack({length})"]


def _emit_write_null(out: list[str], ind: str, x: str, nullable: bool, null: bytes) -> str:
    """Open the None branch of a nullable value; return the indent for the non-null code."""
    out.append(f"{ind}if {x} is None:")
    if nullable:
        out.append(f"{ind}    buf += {null!r}")
    else:
        out.append(f"{ind}    raise TypeError('None in a non-nullable field')")
    out.append(f"{ind}else:")
    return ind + "    "


def _helpers(code: Any) -> None:
    code.append(_HELPERS)


def _reraise(exc: WireError, path: str, offset: int) -> WireError:
    """Attach path/offset to an error from a plain reader (which knows neither)."""
    return WireError(exc.reason, path=path, offset=offset)


class _Inlined(Construct):
    """A Kafka type whose compiled form is written inline by `emit_read`/`emit_write`.

    Every type here compiles the same way (one generated function per message, nested types
    inlined), so construct's two compile hooks are defined once, for all of them.
    """

    def _emitparse(self, code: Any) -> str:
        return _emit_root(self, code)

    def _emitbuild(self, code: Any) -> str:
        return _emit_build_root(self, code)

    def emit_read(self, code: Any, out: list[str], ind: str, target: str) -> None:
        raise NotImplementedError

    def emit_write(self, code: Any, out: list[str], ind: str, x: str) -> None:
        raise NotImplementedError


class Bool(_Inlined):
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

    def emit_read(self, code: Any, out: list[str], ind: str, target: str) -> None:
        out += [f"{ind}{target} = data[pos] != 0", f"{ind}pos += 1"]

    def emit_write(self, code: Any, out: list[str], ind: str, x: str) -> None:
        out += [f"{ind}if {x} is True:",
                f"{ind}    buf += b'\\x01'",
                f"{ind}elif {x} is False:",
                f"{ind}    buf += b'\\x00'",
                f"{ind}else:",
                f"{ind}    raise TypeError('bool expected')"]

class Uuid(_Inlined):
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

    def emit_read(self, code: Any, out: list[str], ind: str, target: str) -> None:
        out += [f"{ind}if pos + 16 > dlen:",
                f"{ind}    raise ValueError('truncated uuid')",
                f"{ind}{target} = UUID(bytes=data[pos:pos + 16])",
                f"{ind}pos += 16"]

    def emit_write(self, code: Any, out: list[str], ind: str, x: str) -> None:
        out += [f"{ind}if not isinstance({x}, UUID):",
                f"{ind}    raise TypeError('uuid.UUID expected')",
                f"{ind}buf += {x}.bytes"]

class String(_Inlined):
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

    def emit_read(self, code: Any, out: list[str], ind: str, target: str) -> None:
        _emit_len(out, ind, self.compact, False)
        _emit_payload(out, ind, target, self.nullable, decode=True)

    def emit_write(self, code: Any, out: list[str], ind: str, x: str) -> None:
        ind = _emit_write_null(out, ind, x, self.nullable,
                               b"\x00" if self.compact else b"\xff\xff")
        out += [f"{ind}if not isinstance({x}, str):",
                f"{ind}    raise TypeError('str expected')",
                f"{ind}e = {x}.encode()"]
        _emit_write_len(out, ind, "len(e)", self.compact, False)
        out.append(f"{ind}buf += e")

class Bytes(_Inlined):
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

    def emit_read(self, code: Any, out: list[str], ind: str, target: str) -> None:
        _emit_len(out, ind, self.compact, True)
        _emit_payload(out, ind, target, self.nullable, decode=False)

    def emit_write(self, code: Any, out: list[str], ind: str, x: str) -> None:
        ind = _emit_write_null(out, ind, x, self.nullable,
                               b"\x00" if self.compact else b"\xff\xff\xff\xff")
        out += [f"{ind}if not isinstance({x}, (bytes, bytearray, memoryview)):",
                f"{ind}    raise TypeError('bytes expected')",
                f"{ind}e = bytes({x})"]
        _emit_write_len(out, ind, "len(e)", self.compact, True)
        out.append(f"{ind}buf += e")

class Array(_Inlined):
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

    def emit_read(self, code: Any, out: list[str], ind: str, target: str) -> None:
        _emit_len(out, ind, self.compact, True)
        out += [f"{ind}if n < 0:"]
        if self.nullable:
            out += [f"{ind}    if n != -1:",
                    f"{ind}        raise ValueError('negative array length')",
                    f"{ind}    {target} = None"]
        else:
            out += [f"{ind}    raise ValueError('null or negative array length')"]
        out += [f"{ind}elif n > dlen - pos:",
                f"{ind}    raise ValueError('array length exceeds the bytes remaining')",
                f"{ind}else:"]
        inner = ind + "    "
        ch = _fixed_char(self.element)
        if ch is not None:
            # One unpack per array; it raises unless n items are there.
            arrays = f"kafka_arr_{ord(ch)}"
            code.append(f"{arrays} = FIXED_ARRAYS[{ch!r}]")
            out += [f"{inner}{target} = list({arrays}[n].unpack_from(data, pos))",
                    f"{inner}pos += {struct.calcsize('>' + ch)} * n"]
            return
        k = code.allocateId()
        item, append = f"item_{k}", f"append_{k}"
        out += [f"{inner}{target} = []",
                f"{inner}{append} = {target}.append",
                f"{inner}for _ in range(n):"]
        emit_read(self.element, code, out, inner + "    ", item)
        out += [f"{inner}    {append}({item})"]

    def emit_write(self, code: Any, out: list[str], ind: str, x: str) -> None:
        ind = _emit_write_null(out, ind, x, self.nullable,
                               b"\x00" if self.compact else b"\xff\xff\xff\xff")
        out += [f"{ind}if not isinstance({x}, (list, tuple)):",
                f"{ind}    raise TypeError('list expected')"]
        _emit_write_len(out, ind, f"len({x})", self.compact, True)
        ch = _fixed_char(self.element)
        if ch is not None:
            arrays = f"kafka_arr_{ord(ch)}"
            code.append(f"{arrays} = FIXED_ARRAYS[{ch!r}]")
            out.append(f"{ind}buf += {arrays}[len({x})].pack(*{x})")
            return
        item = f"item_{code.allocateId()}"
        out.append(f"{ind}for {item} in {x}:")
        emit_write(self.element, code, out, ind + "    ", item)

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


class Struct(_Inlined):
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

    def emit_read(self, code: Any, out: list[str], ind: str, target: str) -> None:
        # Fields go to locals in wire order (runs of fixed-width fields in one unpack_from),
        # then one dict display.
        k = code.allocateId()
        names: list[str] = []
        run: list[tuple[str, str]] = []  # (local, format char)

        def flush() -> None:
            if not run:
                return
            fmt = ">" + "".join(ch for _, ch in run)
            targets = ", ".join(local for local, _ in run)
            out.append(f"{ind}{targets}, = {_fixed_struct(code, fmt)}.unpack_from(data, pos)")
            out.append(f"{ind}pos += {struct.calcsize(fmt)}")
            run.clear()

        for i, f in enumerate(self.fields):
            local = f"f{k}_{i}"
            names.append(f"{f.name!r}: {local}")
            ch = _fixed_char(f.con)
            if ch is not None:
                run.append((local, ch))
                continue
            flush()
            emit_read(f.con, code, out, ind, local)
        flush()
        out.append(f"{ind}{target} = {{{', '.join(names)}}}")
        if self.tagged is None:
            return
        tagmap = f"kafka_tags_{k}"
        entries = []
        for t in self.tagged:
            parser = emit_offset_parser(t.con, code)
            entries.append(f"{t.tag}: ({t.name!r}, "
                           f"lambda r, parse={parser}: from_stream(r, parse))")
        code.append(f"{tagmap} = {{{', '.join(entries)}}}")
        # Nearly every section is empty: one byte, 0x00 (data[pos] raises at the end).
        out += [f"{ind}if data[pos]:",
                f"{ind}    pos = tags_at(data, pos, {target}, {tagmap})",
                f"{ind}else:",
                f"{ind}    pos += 1"]

    def emit_write(self, code: Any, out: list[str], ind: str, x: str) -> None:
        k = code.allocateId()
        get = f"get_{k}"
        out += [f"{ind}if not isinstance({x}, dict):",
                f"{ind}    raise TypeError('dict expected')",
                f"{ind}{get} = {x}.get"]
        run: list[tuple[str, str]] = []  # (local, format char)

        def flush() -> None:
            if run:
                fmt = ">" + "".join(ch for _, ch in run)
                args = ", ".join(local for local, _ in run)
                out.append(f"{ind}buf += {_fixed_struct(code, fmt)}.pack({args})")
                run.clear()

        for i, f in enumerate(self.fields):
            local = f"w{k}_{i}"
            out.append(f"{ind}{local} = {get}({f.name!r}, {_literal(f.default, code)})")
            ch = _fixed_char(f.con)
            if ch is not None:
                run.append((local, ch))
                continue
            flush()
            emit_write(f.con, code, out, ind, local)
        flush()
        if self.tagged is None:
            return
        code.linkedinstances[id(self)] = self
        absent = " and ".join([f"not {get}({UNKNOWN_TAGS!r})"]
                              + [f"{get}({t.name!r}, MISSING) is MISSING" for t in self.tagged])
        out += [f"{ind}if {absent}:",
                f"{ind}    buf.append(0)",
                f"{ind}else:",
                f"{ind}    buf += linkedinstances[{id(self)}].tags_bytes({x})"]

    def tags_bytes(self, obj: dict[str, Any]) -> bytes:
        """The tagged-field section of ``obj`` (the compiled writer's rare case)."""
        out = io.BytesIO()
        self._build_tags(obj, out, None, "")
        return out.getvalue()

class NullableStruct(_Inlined):
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

    def emit_read(self, code: Any, out: list[str], ind: str, target: str) -> None:
        out += [f"{ind}pos += 1",
                f"{ind}if data[pos - 1] >= 0x80:",
                f"{ind}    {target} = None",
                f"{ind}else:"]
        self.struct_con.emit_read(code, out, ind + "    ", target)

    def emit_write(self, code: Any, out: list[str], ind: str, x: str) -> None:
        out += [f"{ind}if {x} is None:",
                f"{ind}    buf += b'\\xff'",
                f"{ind}else:",
                f"{ind}    buf += b'\\x01'"]
        self.struct_con.emit_write(code, out, ind + "    ", x)

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
