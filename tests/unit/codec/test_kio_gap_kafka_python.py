"""Differential test for the versions kio no longer carries, against kafka-python.

kio follows current Kafka, which dropped the oldest versions of several APIs (Produce v0-2,
Fetch v0-3, OffsetCommit v0-1, ...); our specs still have them and old clients still send
them. kafka-python keeps hand-written schemas for those versions (`kafka.protocol.old`), an
implementation independent of the JSON specs, so it fills the gap. It is run over every pair
it has, not only the gap, because an extra independent opinion is cheap.

Its values are positional tuples, and it sometimes groups fields differently (a one-field
struct array as an array of bare values, a sub-tuple for a few fields), so values are compared
as the depth-first sequence of leaves with array lengths marked: grouping is ignored, order,
values and array shapes are not. Per sample: kafka-python encodes, our codec
decodes (values must match) and re-encodes (bytes must match), kafka-python decodes our bytes
back (values must match).
"""

from __future__ import annotations

import importlib
import inspect
import io
import pkgutil
import random
import uuid
from typing import Any

import pytest

old = pytest.importorskip("kafka.protocol.old")
from kafka.protocol.old import types as kt  # noqa: E402
from kafka.protocol.old.api import Request, Response  # noqa: E402

from kafka_chaos_proxy import codec  # noqa: E402

SAMPLES_PER_PAIR = 3

# Pairs kafka-python gets wrong or models differently from the spec, with the reason.
KAFKA_PYTHON_EXCLUSIONS: dict[tuple[int, int, str], str] = {
    (35, 0, "request"): (
        "kafka-python declares DescribeLogDirsRequest v0 topics[].partitions as int32; the "
        "spec (DescribeLogDirsRequest.json) and brokers have []int32"
    ),
    (29, 2, "request"): (
        "kafka-python's DescribeAcls v2 reuses the v1 (non-flexible) schema; the spec makes v2 "
        "flexible (compact strings/arrays, tagged fields)"
    ),
    (29, 2, "response"): "as for the request: kafka-python's v2 is v1's non-flexible layout",
}


def _pairs() -> list[tuple[int, int, str, Any]]:
    found: dict[tuple[int, int, str], Any] = {}
    for info in pkgutil.iter_modules(old.__path__):
        module = importlib.import_module(f"kafka.protocol.old.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__ or not issubclass(cls, Request | Response):
                continue
            api_key = getattr(cls, "API_KEY", None)
            version = getattr(cls, "API_VERSION", None)
            if not isinstance(version, int) or not isinstance(api_key, int):
                continue
            direction = "request" if issubclass(cls, Request) else "response"
            if codec.is_supported(api_key, version):
                found[(api_key, version, direction)] = cls
    return [(*key, cls) for key, cls in sorted(found.items())]


_INTS = {kt.Int8: 7, kt.Int16: 15, kt.Int32: 31, kt.Int64: 63}


def _value(t: Any, rng: random.Random, empty: bool) -> Any:
    """A value kafka-python's type `t` can encode; never null (nullability is not modelled)."""
    if isinstance(t, type) and t in _INTS:
        bits = _INTS[t]
        return 0 if empty else rng.choice([-(2**bits), 2**bits - 1, -1, rng.randint(0, 100)])
    if t is kt.Boolean:
        return not empty and rng.random() < 0.7
    if t is kt.Float64:
        return 0.0 if empty else rng.uniform(-1e6, 1e6)
    if t is kt.UUID:
        return uuid.UUID(int=rng.getrandbits(128) | 1)
    if t is kt.UnsignedVarInt32:
        return 0 if empty else rng.randint(0, 2**20)
    if isinstance(t, kt.String):  # also CompactString
        return "" if empty else rng.choice(["t", "topic-ä", "x" * rng.randint(1, 30)])
    if t is kt.Bytes or t is kt.CompactBytes:
        return b"" if empty else bytes(rng.randrange(256) for _ in range(rng.randint(1, 20)))
    if t is kt.TaggedFields:
        return {}
    if t is kt.BitField:  # a set of bit numbers on an int32 (authorized operations)
        return set() if empty else {rng.randrange(31) for _ in range(3)}
    if isinstance(t, kt.Schema):
        return tuple(_value(f, rng, empty) for f in t.fields)
    if isinstance(t, kt.Array):  # also CompactArray
        count = 0 if empty else rng.randint(1, 2)
        return [_value(t.array_of, rng, empty) for _ in range(count)]
    raise _Unsupported(repr(t))


class _Unsupported(Exception):
    """A kafka-python type this test does not generate."""


def _positional(value: Any) -> Any:
    """Our decoded value in kafka-python's shape: structs as tuples, no tagged fields."""
    if isinstance(value, dict):
        return tuple(_positional(v) for k, v in value.items() if k != "_unknown_tags")
    if isinstance(value, list):
        return [_positional(v) for v in value]
    if isinstance(value, uuid.UUID) and value.int == 0:
        return None
    return value


def _leaves(value: Any) -> list[Any]:
    """Depth-first leaves, each array preceded by its length (None for a null array)."""
    if isinstance(value, tuple):
        return [leaf for item in value for leaf in _leaves(item)]
    if isinstance(value, list):
        return [("len", len(value)), *(leaf for item in value for leaf in _leaves(item))]
    return [value]


def _strip_tags(schema: Any, value: Any) -> Any:
    """kafka-python's decoded value without its (always empty here) tagged-field dicts."""
    if isinstance(schema, kt.Schema):
        return tuple(
            _strip_tags(f, v)
            for f, v in zip(schema.fields, value, strict=False)
            if f is not kt.TaggedFields
        )
    if isinstance(schema, kt.Array) and value is not None:
        return [_strip_tags(schema.array_of, v) for v in value]
    if schema is kt.UUID and isinstance(value, uuid.UUID) and value.int == 0:
        return None
    if schema is kt.BitField:  # back to the int32 on the wire
        bits = {31} if value is None else value
        return int.from_bytes(sum(1 << b for b in bits).to_bytes(4, "big"), "big", signed=True)
    return value


_PAIRS = _pairs()


@pytest.mark.parametrize(
    ("api_key", "version", "direction", "cls"),
    _PAIRS,
    ids=[f"{codec.API_NAMES[a]}-v{v}-{d}" for a, v, d, _ in _PAIRS],
)
def test_matches_kafka_python(api_key: int, version: int, direction: str, cls: Any) -> None:
    reason = KAFKA_PYTHON_EXCLUSIONS.get((api_key, version, direction))
    schema = cls.SCHEMA
    failures: list[str] = []
    for sample in range(SAMPLES_PER_PAIR):
        rng = random.Random(f"{api_key}/{version}/{direction}/{sample}")
        try:
            value = _value(schema, rng, empty=sample == 0)
        except _Unsupported as exc:
            pytest.skip(f"kafka-python type not generated here: {exc}")
        theirs = schema.encode(value)
        where = f"sample {sample}"
        try:
            ours = codec.decode_body(api_key, version, codec.Direction(direction), theirs)
        except codec.CodecError as exc:
            failures.append(f"{where}: ours cannot decode kafka-python's bytes: {exc}")
            continue
        expected = _leaves(_strip_tags(schema, value))
        if _leaves(_positional(ours)) != expected:
            failures.append(f"{where}: values differ:\n ours {_positional(ours)}\n them {value}")
        our_bytes = codec.encode_body(api_key, version, codec.Direction(direction), ours)
        if our_bytes != theirs:
            failures.append(f"{where}: bytes differ: ours {our_bytes.hex()} them {theirs.hex()}")
            continue
        back = _leaves(_strip_tags(schema, schema.decode(io.BytesIO(our_bytes))))
        if back != expected:
            failures.append(f"{where}: kafka-python reads our bytes differently")
    if reason is not None:
        # A known kafka-python bug: the pair must still disagree, else the exclusion is stale.
        assert failures, f"excluded pair now agrees; drop its exclusion ({reason})"
        return
    assert not failures, "\n".join(failures)


def test_fills_the_versions_kio_lacks() -> None:
    kio_index = pytest.importorskip("kio.schema.index")
    gap = {
        (a, v)
        for a in codec.API_NAMES
        if a in kio_index.api_key_map
        for v in range(codec.supported_versions(a)[0], codec.supported_versions(a)[1] + 1)
        if v not in kio_index.schema_name_map[kio_index.api_key_map[a]]
    }
    covered = {(a, v) for a, v, _, _ in _PAIRS} & gap
    print(
        f"\nkafka-python differential: {len(_PAIRS)} (api, version, direction) pairs; "
        f"covers {len(covered)} of the {len(gap)} (api, version) pairs kio lacks; "
        f"still uncovered: {sorted(gap - covered)}"
    )
    assert len(covered) >= 20
