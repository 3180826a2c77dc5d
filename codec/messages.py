"""The message engine: schema facts -> construct trees, cached per (spec, version).

A body is decoded with the *compiled* construct first (fast, no bookkeeping); when that
fails for any reason the bytes are re-parsed with the interpreted construct, which knows
field paths and offsets, and the failure is reported as a ``CodecError``. Valid traffic
therefore pays only for the compiled parser, and invalid traffic still gets a precise
diagnosis. Encoding works the same way: compiled writer first, the interpreted builder
only to name the path of a bad value. Both paths accept exactly the same values; the
round-trip and fuzz tests check that they agree byte for byte.

decode -> encode reproduces the input exactly for anything a Kafka implementation writes.
Only non-canonical encodings, which Kafka never produces but its readers accept, come out
normalised: a bool byte other than 0/1, a nullable-struct marker other than -1/1, a
non-minimal varint, tagged fields out of tag order, or a known tagged field sent with its
default value (absent and default are the same thing to Kafka, so it is not re-sent).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from functools import cache, lru_cache
from typing import Any

from construct import Construct, ConstructError

from kafka_chaos_proxy.codec import schema
from kafka_chaos_proxy.codec.api import Direction, api_name, check_supported
from kafka_chaos_proxy.codec.errors import CodecError, UnknownApiError
from kafka_chaos_proxy.codec.primitives import (
    ZERO_UUID,
    Array,
    Bool,
    Bytes,
    NullableStruct,
    String,
    Struct,
    StructField,
    TaggedField,
    Uuid,
    int_con,
)
from kafka_chaos_proxy.codec.wire import Reader, WireError

_INTS = frozenset({"int8", "int16", "int32", "int64", "uint16", "uint32"})
_PRIMITIVES = _INTS | {"float64", "bool", "uuid", "string", "bytes", "records"}

# Compiled parsers are a pure speed-up over the interpreted ones; a switch keeps both paths
# testable (the fuzz test runs each) and lets the bench compare them.
USE_COMPILED = True


def _in(version: int, rng: tuple[int, int]) -> bool:
    return rng[0] <= version <= rng[1]


def _parse_int(text: str) -> int:
    t = text.strip()
    neg = t.startswith("-")
    body = t[1:] if neg else t
    value = int(body, 16) if body.lower().startswith("0x") else int(body)
    return -value if neg else value


class _Builder:
    """Builds the construct tree of one spec at one version."""

    def __init__(self, spec: schema.Message, version: int) -> None:
        self.spec = spec
        self.version = version
        self.flexible = _in(version, spec.flexible)

    def struct(self, fields: tuple[schema.F, ...], upto: str | None = None) -> Struct:
        regular: list[StructField] = []
        tagged: list[TaggedField] = []
        v = self.version
        for f in fields:
            if not _in(v, f.versions):
                continue
            con = self.field_con(f)
            if _in(v, f.tagged) and f.tag is not None:
                if upto == f.name:
                    raise CodecError(f"{upto!r} is a tagged field: it sits in the tagged section "
                                     "at the end of the struct, so it has no prefix")
                tagged.append(TaggedField(f.tag, f.name, con, self.kafka_default(f)))
            else:
                regular.append(StructField(f.name, con, self.encode_default(f)))
            if upto is not None and f.name == upto:
                return Struct(regular, None)
        if upto is not None:
            raise CodecError(f"no top-level field {upto!r} in {self.spec.name} v{v}")
        return Struct(regular, tagged if self.flexible else None)

    def struct_fields(self, f: schema.F, type_name: str) -> tuple[schema.F, ...]:
        if f.fields is not None:
            return f.fields
        common = self.spec.structs.get(type_name)
        if common is None:
            raise CodecError(f"{self.spec.name}: unknown struct type {type_name}")
        return common.fields

    def compact(self, f: schema.F) -> bool:
        if f.flexible is not None:
            return _in(self.version, f.flexible)
        return self.flexible

    def field_con(self, f: schema.F) -> Construct:
        nullable = _in(self.version, f.nullable)
        compact = self.compact(f)
        t = f.type
        if t.startswith("[]"):
            elem = t[2:]
            elem_con = (self.primitive(elem, compact, False) if elem in _PRIMITIVES
                        else self.struct(self.struct_fields(f, elem)))
            return Array(elem_con, compact, nullable)
        if t in _PRIMITIVES:
            return self.primitive(t, compact, nullable)
        sub = self.struct(self.struct_fields(f, t))
        return NullableStruct(sub) if nullable else sub

    @staticmethod
    def primitive(t: str, compact: bool, nullable: bool) -> Construct:
        if t in _INTS or t == "float64":
            return int_con(t)
        if t == "bool":
            return Bool()
        if t == "uuid":
            return Uuid()
        if t == "string":
            return String(compact, nullable)
        return Bytes(compact, nullable)

    def kafka_default(self, f: schema.F) -> Any:
        """The value Kafka assumes when a field is absent (tagged fields equal to it are
        not written)."""
        t = f.type
        d = f.default
        if d == "null":
            return None
        if t in _INTS:
            return _parse_int(d) if d not in (None, "") else 0
        if t == "float64":
            return float(d) if d else 0.0
        if t == "bool":
            return d is not None and d.lower() == "true"
        if t == "string":
            return d if d is not None else ""
        if t == "bytes":
            return b""
        if t == "records":
            return None
        if t == "uuid":
            return ZERO_UUID
        if t.startswith("[]"):
            return []
        return self.default_struct(self.struct_fields(f, t))

    def default_struct(self, fields: tuple[schema.F, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields:
            if _in(self.version, f.versions) and not (_in(self.version, f.tagged)
                                                      and f.tag is not None):
                out[f.name] = self.kafka_default(f)
        return out

    def encode_default(self, f: schema.F) -> Any:
        """Value written for a missing key: the spec default, else null when nullable, else
        the type's zero value."""
        if f.default is None and _in(self.version, f.nullable):
            return None
        if f.type == "records" and f.default is None:
            return b""
        value = self.kafka_default(f)
        if isinstance(value, dict):
            return {}
        return value


class _Codec:
    """The interpreted and (lazily) compiled construct of one spec at one version."""

    __slots__ = ("_compiled", "_fast_build", "_fast_parse", "api_key", "direction", "slow",
                 "version")

    def __init__(self, slow: Struct, api_key: int | None, version: int, direction: str) -> None:
        self.slow = slow
        self.api_key = api_key
        self.version = version
        self.direction = direction
        self._compiled: Any = None
        self._fast_parse: Callable[[bytes, int], tuple[Any, int]] | None = None
        self._fast_build: Callable[[dict[str, Any]], bytearray] | None = None

    def compiled(self) -> Any:
        """construct's compiled form, built on first use (about a millisecond per message)."""
        if self._compiled is None:
            self._compiled = self.slow.compile()
        return self._compiled

    def fast_parse(self) -> Callable[[bytes, int], tuple[Any, int]]:
        """The compiled parser on ``bytes`` and an offset (no stream): ``(value, end)``."""
        if self._fast_parse is None:
            self._fast_parse = self.compiled().module.kafka_entry
        return self._fast_parse

    def fast_build(self) -> Callable[[dict[str, Any]], bytearray]:
        """The compiled writer, returning the encoded bytes (no stream)."""
        if self._fast_build is None:
            self._fast_build = self.compiled().module.kafka_write_entry
        return self._fast_build

    def error(self, reason: str, field_path: str | None = None,
              offset: int | None = None) -> CodecError:
        return CodecError(reason, api_key=self.api_key, api_version=self.version,
                          direction=self.direction, field_path=field_path, offset=offset)

    def parse(self, data: bytes, exact: bool = True) -> tuple[dict[str, Any], int]:
        if USE_COMPILED:
            try:
                obj, end = (self._fast_parse or self.fast_parse())(data, 0)
            except Exception:
                pass
            else:
                if not exact or end == len(data):
                    return obj, end
        return self.parse_slow(data, exact)

    def parse_slow(self, data: bytes, exact: bool = True) -> tuple[dict[str, Any], int]:
        r = Reader(data)
        try:
            obj = self.slow._parse(r, None, "")
        except WireError as exc:
            raise self.error(exc.reason, exc.path or "", exc.offset) from None
        except ConstructError as exc:
            raise self.error(str(exc), getattr(exc, "path", None), r.tell()) from None
        except Exception as exc:  # the contract: nothing but CodecError escapes a decode
            raise self.error(f"decode failed: {type(exc).__name__}: {exc}", None,
                             r.tell()) from None
        if exact and r.tell() != len(data):
            raise self.error(f"{len(data) - r.tell()} trailing bytes after the body", "",
                             r.tell())
        return obj, r.tell()

    def build(self, value: dict[str, Any]) -> bytes:
        if not isinstance(value, dict):
            raise self.error(f"expected a dict body, got {type(value).__name__}", "")
        if USE_COMPILED:
            try:
                out = (self._fast_build or self.fast_build())(value)
            except Exception:  # any failure is re-diagnosed by the interpreted builder
                pass
            else:
                return bytes(out)
        return self.build_slow(value)

    def build_slow(self, value: dict[str, Any]) -> bytes:
        out = io.BytesIO()
        try:
            self.slow._build(value, out, None, "")
        except WireError as exc:
            raise self.error(f"cannot encode: {exc.reason}", exc.path or "") from None
        except ConstructError as exc:
            raise self.error(f"cannot encode: {exc}", getattr(exc, "path", None)) from None
        except Exception as exc:
            raise self.error(f"cannot encode: {type(exc).__name__}: {exc}", "") from None
        return out.getvalue()


def _spec_for(api_key: int, api_version: int, direction: str) -> schema.Message:
    name = api_name(api_key)
    check_supported(api_key, api_version)
    if direction not in ("request", "response"):
        raise CodecError(f"direction must be 'request' or 'response', not {direction!r}",
                         api_key=api_key, api_version=api_version)
    return schema.MESSAGES[name + ("Request" if direction == "request" else "Response")]


@cache
def _codec(api_key: int, api_version: int, direction: str) -> _Codec:
    spec = _spec_for(api_key, api_version, direction)
    con = _Builder(spec, api_version).struct(spec.fields)
    return _Codec(con, api_key, api_version, direction)


@lru_cache(maxsize=1024)
def _prefix_codec(api_key: int, api_version: int, direction: str, upto: str) -> _Codec:
    spec = _spec_for(api_key, api_version, direction)
    try:
        con = _Builder(spec, api_version).struct(spec.fields, upto=upto)
    except CodecError as exc:
        raise CodecError(exc.reason, api_key=api_key, api_version=api_version,
                         direction=direction, field_path=upto) from None
    return _Codec(con, api_key, api_version, direction)


def _as_bytes(data: bytes | bytearray | memoryview) -> bytes:
    return data if type(data) is bytes else bytes(data)


def decode_body(api_key: int, api_version: int, direction: str,
                data: bytes | bytearray | memoryview) -> dict[str, Any]:
    """Decode a whole request or response body (the bytes after the header)."""
    return _codec(api_key, api_version, str(direction)).parse(_as_bytes(data))[0]


def encode_body(api_key: int, api_version: int, direction: str, value: dict[str, Any]) -> bytes:
    """Encode a body dict; missing keys take the spec default (see module docs)."""
    return _codec(api_key, api_version, str(direction)).build(value)


def decode_body_prefix(
    api_key: int, api_version: int, direction: str, data: bytes | bytearray | memoryview,
    upto: str,
) -> tuple[dict[str, Any], int]:
    """Decode the top-level fields up to and including ``upto``; return them and the offset
    just after, so a caller can rewrite a leading field and splice the rest through."""
    codec = _prefix_codec(api_key, api_version, str(direction), upto)
    return codec.parse(_as_bytes(data), exact=False)


def encode_body_prefix(api_key: int, api_version: int, direction: str, value: dict[str, Any],
                       upto: str) -> bytes:
    """Encode the top-level fields up to and including ``upto`` (the inverse of
    ``decode_body_prefix``): prefix bytes to join with the untouched rest of a body."""
    return _prefix_codec(api_key, api_version, str(direction), upto).build(value)


# --- standalone specs and common structs -----------------------------------------------------


def _find_struct(spec: schema.Message, struct_name: str) -> tuple[schema.F, ...] | None:
    """Fields of a struct type declared anywhere in a spec (common or inline)."""
    if struct_name in spec.structs:
        return spec.structs[struct_name].fields
    todo = list(spec.fields) + [f for c in spec.structs.values() for f in c.fields]
    while todo:
        f = todo.pop(0)
        if f.fields is not None:
            if f.type.removeprefix("[]") == struct_name:
                return f.fields
            todo.extend(f.fields)
    return None


def _named_spec(name: str) -> tuple[schema.Message, tuple[schema.F, ...]]:
    if name in schema.MESSAGES:
        spec = schema.MESSAGES[name]
        return spec, spec.fields
    if "." in name:
        spec_name, struct_name = name.split(".", 1)
        spec_or_none = schema.MESSAGES.get(spec_name)
        if spec_or_none is not None:
            fields = _find_struct(spec_or_none, struct_name)
            if fields is not None:
                return spec_or_none, fields
    matches = [(s, s.structs[name].fields) for s in schema.MESSAGES.values()
               if name in s.structs]
    if len(matches) == 1:
        return matches[0]
    known = sorted(n for n, s in schema.MESSAGES.items() if s.kind in ("data", "header"))
    hint = "ambiguous common struct; use 'Spec.Struct'" if matches else "unknown name"
    raise UnknownApiError(f"{hint}: {name!r} (standalone specs: {', '.join(known)}; "
                          "or 'Spec.Struct' for a struct inside a spec)")


@cache
def _named_codec(name: str, version: int) -> _Codec:
    spec, fields = _named_spec(name)
    if not _in(version, spec.valid):
        raise UnknownApiError(f"{name} has no version {version} (valid {spec.valid[0]}-"
                              f"{spec.valid[1]})", api_version=version)
    return _Codec(_Builder(spec, version).struct(fields), spec.api_key, version, name)


def decode_named(name: str, version: int, data: bytes | bytearray | memoryview,
                 *, exact: bool = True) -> dict[str, Any]:
    """Decode a spec by its name (e.g. "ConsumerProtocolSubscription", "RequestHeader") or a
    struct inside a spec ("FetchResponse.EpochEndOffset"; a common struct's bare name works
    when it is unique across specs).

    ``exact=False`` ignores trailing bytes, as Kafka does for consumer-protocol payloads
    written by a newer client.
    """
    return _named_codec(name, version).parse(_as_bytes(data), exact=exact)[0]


def decode_named_prefix(name: str, version: int,
                        data: bytes | bytearray | memoryview) -> tuple[dict[str, Any], int]:
    """Like ``decode_named(exact=False)`` but also returns the number of bytes consumed."""
    return _named_codec(name, version).parse(_as_bytes(data), exact=False)


def encode_named(name: str, version: int, value: dict[str, Any]) -> bytes:
    """Encode a spec or common struct by name (see ``decode_named``)."""
    return _named_codec(name, version).build(value)


def clear_caches() -> None:
    """Drop built constructs (tests use it to compare compiled and interpreted runs)."""
    _codec.cache_clear()
    _prefix_codec.cache_clear()
    _named_codec.cache_clear()


__all__ = [
    "Direction",
    "clear_caches",
    "decode_body",
    "decode_body_prefix",
    "decode_named",
    "decode_named_prefix",
    "encode_body",
    "encode_body_prefix",
    "encode_named",
]
