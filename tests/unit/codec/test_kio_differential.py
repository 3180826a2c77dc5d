"""Differential test: our codec against kio, an independent implementation of the same specs.

For every (api, version, direction) both implementations know, values are generated on kio's
side (its classes are typed, so generating from them needs no knowledge of our schema), then:

1. kio encodes the value; our codec must decode those bytes to the same value (compared after
   mapping kio's Python types and names to ours, see `_norm_kio` / `_norm_ours`);
2. our codec re-encodes its decoded value; the bytes must equal kio's bytes;
3. kio decodes our bytes back to the original value.

So bytes agree in both directions and values agree in both directions. Samples are
deterministic (seeded), including one with every nullable field null and every array empty,
and one with everything filled. The number of compared pairs is printed at the end of the
session (`-s` shows it) and asserted to cover every API both sides know.

Known kio limitations and spec-snapshot differences are excluded below with a reason each.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import io
import random
import struct
import types
import typing
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

kio_index = pytest.importorskip("kio.schema.index")
from kio.schema.errors import ErrorCode  # noqa: E402
from kio.serial import entity_reader, entity_writer  # noqa: E402
from kio.serial._implicit_defaults import get_tagged_field_default  # noqa: E402
from kio.static.constants import EntityType  # noqa: E402
from kio.static.primitive import (  # noqa: E402
    i32Timedelta,
    i64Timedelta,
)

from kafka_chaos_proxy import codec  # noqa: E402
from kafka_chaos_proxy.codec.schema import MESSAGES, F, Message  # noqa: E402

SAMPLES_PER_PAIR = 4  # 0: all null/empty, 1: all filled, 2..: random

# (api_key, version, direction) -> why the pair is not compared. Each entry is a difference
# between kio's spec snapshot and ours, not a codec disagreement.
KIO_EXCLUSIONS: dict[tuple[int, int, str], str] = {
    (87, 0, "response"): (
        "ReadShareGroupStateSummary v0 was unstable when our specs were taken; kio's later "
        "spec added PartitionResult.LeaderEpoch to v0, so the wire layouts differ"
    ),
}
# Fields Kafka renamed after our spec snapshot without changing the wire format (kio has the
# new names): api_key -> {kio key: our key}, keys as `_key` spells them.
SPEC_RENAMES: dict[int, dict[str, str]] = {
    # KIP-996 (pre-vote) renamed Vote's candidate fields to replica fields.
    52: {
        "replicaid": "candidateid",
        "replicaepoch": "candidateepoch",
        "replicadirectoryid": "candidatedirectoryid",
    },
    # KIP-1142 turned ListClientMetricsResources into ListConfigResources.
    74: {"configresources": "clientmetricsresources", "resourcename": "name"},
}

# kio field names drop a `_ms` suffix when it turns a field into a timedelta/datetime, and
# append `_` to names that shadow Python builtins; our keys are the plain snake_case names.
_TIME_TYPES = frozenset({"timedelta_i32", "timedelta_i64", "datetime_i64"})


def _kio_pairs() -> Iterator[tuple[int, int, str, type]]:
    """Every (api, version, direction) kio has, with kio's class for it."""
    for api_key, name in sorted(kio_index.api_key_map.items()):
        for version, entities in sorted(kio_index.schema_name_map[name].items()):
            for entity_type, direction in (
                (EntityType.request, "request"),
                (EntityType.response, "response"),
            ):
                path = entities.get(entity_type)
                if path is None:
                    continue
                module_name, class_name = path.split(":")
                module = __import__(module_name, fromlist=[class_name])
                yield api_key, version, direction, getattr(module, class_name)


def _ours_knows(api_key: int, version: int) -> bool:
    try:
        return bool(codec.is_supported(api_key, version))
    except Exception:
        return False


# --- generating kio values ------------------------------------------------------------------


def _unwrap(tp: Any) -> tuple[Any, bool, bool]:
    """(inner type, is_array, nullable) of a kio dataclass field type."""
    nullable = False
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        nullable = True
        tp = args[0]
        origin = typing.get_origin(tp)
    if origin is tuple:
        inner = typing.get_args(tp)[0]
        inner_args = [a for a in typing.get_args(inner) if a is not type(None)]
        if typing.get_origin(inner) in (types.UnionType, typing.Union):
            inner = inner_args[0]
        return inner, True, nullable
    return tp, False, nullable


_INT_RANGES = {
    "int8": (-(2**7), 2**7 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint16": (0, 2**16 - 1),
    "uint32": (0, 2**32 - 1),
}
_ERROR_CODES = list(ErrorCode)


class _Mode(enum.Enum):
    EMPTY = 0
    FULL = 1
    RANDOM = 2


def _primitive(kafka_type: str, rng: random.Random, mode: _Mode) -> Any:
    if kafka_type in _INT_RANGES:
        low, high = _INT_RANGES[kafka_type]
        if mode is _Mode.EMPTY:
            return 0
        return rng.choice([low, high, -1 if low < 0 else 1, rng.randint(low, high)])
    if kafka_type == "bool":
        return mode is not _Mode.EMPTY and rng.random() < 0.7
    if kafka_type == "float64":
        return rng.choice([0.0, -1.5, 3.25e10, rng.uniform(-1e6, 1e6)])
    if kafka_type == "error_code":
        return rng.choice(_ERROR_CODES)
    if kafka_type == "string":
        if mode is _Mode.EMPTY:
            return ""
        return rng.choice(["topic-a", "grp", "ünïcødé-✓", "x" * rng.randint(1, 40)])
    if kafka_type in ("bytes", "records"):
        if mode is _Mode.EMPTY:
            return b""
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 24)))
    if kafka_type == "uuid":
        return uuid.UUID(int=rng.getrandbits(128)) if mode is not _Mode.EMPTY else None
    if kafka_type == "timedelta_i32":
        ms = 0 if mode is _Mode.EMPTY else rng.choice([-1, 30_000, rng.randint(0, 2**31 - 1)])
        return i32Timedelta.parse(datetime.timedelta(milliseconds=ms))
    if kafka_type == "timedelta_i64":
        ms = 0 if mode is _Mode.EMPTY else rng.choice([-1, 604_800_000, rng.randint(0, 2**40)])
        return i64Timedelta.parse(datetime.timedelta(milliseconds=ms))
    if kafka_type == "datetime_i64":
        ms = rng.randint(0, 2**41)
        return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)
    raise AssertionError(f"unhandled kio type {kafka_type}")


def _make(cls: type, rng: random.Random, mode: _Mode, depth: int = 0) -> Any:
    """A kio entity of `cls` filled per `mode`: every field chosen independently."""
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        inner, is_array, nullable = _unwrap(hints[f.name])
        null = nullable and (
            mode is _Mode.EMPTY or (mode is _Mode.RANDOM and rng.random() < 0.25)
        )
        if null:
            kwargs[f.name] = None
            continue
        kafka_type = f.metadata.get("kafka_type")

        def one(inner: Any = inner, kafka_type: Any = kafka_type) -> Any:
            if dataclasses.is_dataclass(inner):
                return _make(inner, rng, mode, depth + 1)  # type: ignore[arg-type]
            return _primitive(kafka_type, rng, mode)

        if is_array:
            if mode is _Mode.EMPTY or depth > 3:
                count = 0
            elif mode is _Mode.FULL:
                count = 2
            else:
                count = rng.randint(0, 2)
            kwargs[f.name] = tuple(one() for _ in range(count))
        else:
            value = one()
            if value is None and not nullable and kafka_type == "uuid":
                value = uuid.UUID(int=0)
            kwargs[f.name] = value
    return cls(**kwargs)


def _kio_encode(cls: type, entity: Any) -> bytes:
    buffer = io.BytesIO()
    entity_writer(cls)(buffer, entity)
    return buffer.getvalue()


def _kio_decode(cls: type, data: bytes) -> Any:
    value: Any
    value, size = entity_reader(cls)(data, 0)
    assert size == len(data), f"kio read {size} of {len(data)} bytes"
    return value


# --- comparing values -----------------------------------------------------------------------


def _key(name: str) -> str:
    """Spelling-insensitive field key shared by kio names and ours (see module docstring)."""
    return name.rstrip("_").replace("_", "").lower()


def _norm_scalar(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, enum.IntEnum):
        return int(value)
    if isinstance(value, datetime.timedelta):
        return round(value.total_seconds() * 1000)
    if isinstance(value, datetime.datetime):
        return round(value.timestamp() * 1000)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, uuid.UUID):
        return value
    return value


def _tag_is_default(f: dataclasses.Field[Any], value: Any) -> bool:
    """A tagged field at its default is not on the wire; our codec then leaves the key out
    (absent means default), which keeps decode -> encode byte-exact even for a sender that
    writes a default explicitly."""
    if f.default is not dataclasses.MISSING:
        return bool(value == f.default)
    return bool(value == get_tagged_field_default(f))


def _norm_kio(value: Any, kafka_type: str | None = None) -> Any:
    """kio value -> plain comparable structure keyed by `_key`."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if "tag" in f.metadata and _tag_is_default(f, item):
                continue
            out[_key(f.name)] = _norm_kio(item, f.metadata.get("kafka_type"))
        return out
    if isinstance(value, tuple):
        return [_norm_kio(v, kafka_type) for v in value]
    if value is None:
        if kafka_type == "uuid":
            return uuid.UUID(int=0)
        if kafka_type == "datetime_i64":
            return -1
        return None
    return _norm_scalar(value)


def _rename(value: Any, renames: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {renames.get(k, k): _rename(v, renames) for k, v in value.items()}
    if isinstance(value, list):
        return [_rename(v, renames) for v in value]
    return value


def _norm_ours(value: Any, kio_keys: set[str] | None = None) -> Any:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for name, item in value.items():
            key = _key(name)
            if kio_keys is not None and key not in kio_keys and key.endswith("ms"):
                key = key[:-2]
            out[key] = item
        return out
    return value


def _compare(kio_value: Any, ours: Any, path: str = "") -> list[str]:
    """Differences between a normalized kio value and our decoded value, as readable lines."""
    if isinstance(kio_value, dict):
        if not isinstance(ours, dict):
            return [f"{path}: kio struct, ours {type(ours).__name__}"]
        mapped = _norm_ours(ours, set(kio_value))
        problems: list[str] = []
        extra = {k: v for k, v in mapped.items() if k not in kio_value and k != "unknowntags"}
        if extra:
            problems.append(f"{path}: fields only in ours: {sorted(extra)}")
        for key, item in kio_value.items():
            if key not in mapped:
                problems.append(f"{path}.{key}: missing in ours")
                continue
            problems += _compare(item, mapped[key], f"{path}.{key}")
        return problems
    if isinstance(kio_value, list):
        if not isinstance(ours, list) or len(ours) != len(kio_value):
            return [f"{path}: kio {kio_value!r} ours {ours!r}"]
        return [p for i, (a, b) in enumerate(zip(kio_value, ours, strict=True))
                for p in _compare(a, b, f"{path}[{i}]")]
    ours_n = _norm_scalar(ours)
    if isinstance(kio_value, uuid.UUID) and ours_n is None:
        ours_n = uuid.UUID(int=0)
    if kio_value != ours_n or isinstance(kio_value, bool) != isinstance(ours_n, bool):
        return [f"{path}: kio {kio_value!r} ours {ours!r}"]
    return []


def _to_ours(message: Message, fields: tuple[F, ...], version: int, kio_value: Any) -> Any:
    """A normalized kio value rebuilt as our codec's body dict, driven by our schema, so that
    our encoder also runs on a value our decoder never produced."""
    out: dict[str, Any] = {}
    for field in fields:
        if not field.versions[0] <= version <= field.versions[1]:
            continue
        key = _key(field.name)
        if key not in kio_value and key.endswith("ms"):
            key = key[:-2]
        if key not in kio_value:
            continue  # a tagged field at its default: absent in ours too
        value = kio_value[key]
        children = field.fields
        if children is None and field.type.removeprefix("[]") in message.structs:
            children = message.structs[field.type.removeprefix("[]")].fields
        if children is not None and value is not None:
            if field.type.startswith("[]"):
                value = [_to_ours(message, children, version, v) for v in value]
            else:
                value = _to_ours(message, children, version, value)
        out[field.name] = value
    return out


# --- the test -------------------------------------------------------------------------------

_PAIRS = [p for p in _kio_pairs() if _ours_knows(p[0], p[1])]
_COMPARED: set[tuple[int, int, str]] = set()


def _check_pair(api_key: int, version: int, direction: str, cls: type) -> list[str]:
    failures: list[str] = []
    for sample in range(SAMPLES_PER_PAIR):
        mode = (_Mode.EMPTY, _Mode.FULL)[sample] if sample < 2 else _Mode.RANDOM
        rng = random.Random(f"{api_key}/{version}/{direction}/{sample}")
        entity = _make(cls, rng, mode)
        kio_bytes = _kio_encode(cls, entity)
        where = f"sample {sample} ({mode.name.lower()})"
        try:
            ours = codec.decode_body(api_key, version, codec.Direction(direction), kio_bytes)
        except codec.CodecError as exc:
            failures.append(f"{where}: ours cannot decode kio bytes: {exc}")
            continue
        expected = _rename(_norm_kio(entity), SPEC_RENAMES.get(api_key, {}))
        failures += [f"{where}: value {d}" for d in _compare(expected, ours)]
        our_bytes = codec.encode_body(api_key, version, codec.Direction(direction), ours)
        if our_bytes != kio_bytes:
            failures.append(
                f"{where}: bytes differ (kio {len(kio_bytes)} B, ours {len(our_bytes)} B): "
                f"kio {kio_bytes[:64].hex()} ours {our_bytes[:64].hex()}"
            )
            continue
        message = MESSAGES[codec.API_NAMES[api_key] + direction.capitalize()]
        rebuilt = _to_ours(message, message.fields, version, expected)
        if codec.encode_body(api_key, version, codec.Direction(direction), rebuilt) != kio_bytes:
            failures.append(f"{where}: our encoding of kio's value differs from kio's bytes")
        back = _kio_decode(cls, our_bytes)
        if back != entity:
            failures.append(f"{where}: kio decodes our bytes to a different value")
    return failures


@pytest.mark.parametrize(
    ("api_key", "version", "direction", "cls"),
    _PAIRS,
    ids=[f"{codec.API_NAMES.get(a, a)}-v{v}-{d}" for a, v, d, _ in _PAIRS],
)
def test_matches_kio(api_key: int, version: int, direction: str, cls: type) -> None:
    reason = KIO_EXCLUSIONS.get((api_key, version, direction))
    failures = _check_pair(api_key, version, direction, cls)
    if reason is not None:
        # A known kio difference: the pair must still disagree, else the exclusion is stale.
        assert failures, f"excluded pair now agrees with kio; drop its exclusion ({reason})"
        return
    _COMPARED.add((api_key, version, direction))
    assert not failures, "\n".join(failures)


def _load(name: str, version: int, entity_type: EntityType) -> type:
    path = kio_index.schema_name_map[name][version][entity_type]
    module_name, class_name = path.split(":")
    loaded: type = getattr(__import__(module_name, fromlist=[class_name]), class_name)
    return loaded


_DATA_SPECS = [
    (spec, version)
    for spec in ("ConsumerProtocolSubscription", "ConsumerProtocolAssignment")
    for version in range(4)
]


@pytest.mark.parametrize(("spec", "version"), _DATA_SPECS)
def test_consumer_protocol_matches_kio(spec: str, version: int) -> None:
    """The hand-written consumer_protocol module and the generic `decode_named` both agree
    with kio on the payloads (kio's data classes carry no version prefix; ours do)."""
    from kafka_chaos_proxy.codec import consumer_protocol

    snake = "consumer_protocol_" + spec.removeprefix("ConsumerProtocol").lower()
    cls = _load(snake, version, EntityType.data)
    decode, encode = (
        (consumer_protocol.decode_subscription, consumer_protocol.encode_subscription)
        if spec.endswith("Subscription")
        else (consumer_protocol.decode_assignment, consumer_protocol.encode_assignment)
    )
    for sample in range(SAMPLES_PER_PAIR):
        mode = (_Mode.EMPTY, _Mode.FULL)[sample] if sample < 2 else _Mode.RANDOM
        entity = _make(cls, random.Random(f"{spec}/{version}/{sample}"), mode)
        body = _kio_encode(cls, entity)
        payload = struct.pack(">h", version) + body
        ours = decode(payload)
        assert ours.pop("version") == version
        assert not _compare(_norm_kio(entity), ours)
        assert encode(ours, version) == payload
        generic = codec.decode_named(spec, version, body)
        assert not _compare(_norm_kio(entity), generic)
        assert codec.encode_named(spec, version, generic) == body
        assert _kio_decode(cls, body) == entity
    _COMPARED.add((-1, version, spec))


@pytest.mark.parametrize("version", [1, 2])
def test_request_header_matches_kio(version: int) -> None:
    cls = _load("request_header", version, EntityType.header)
    for api_key, client_id in ((3, "client-1"), (11, None), (18, "ünï")):
        api_version = next(
            v for v in range(codec.supported_versions(api_key)[1], -1, -1)
            if codec.request_header_version(api_key, v) == version
        )
        ours = codec.encode_request_header(api_key, api_version, 12345, client_id)
        entity = cls(
            request_api_key=api_key,
            request_api_version=api_version,
            correlation_id=12345,
            client_id=client_id,
        )
        assert ours == _kio_encode(cls, entity)
        header = codec.parse_request_header(ours + b"body")
        assert (header.api_key, header.api_version, header.correlation_id, header.client_id) == (
            api_key, api_version, 12345, client_id
        )
        assert header.header_size == len(ours)


@pytest.mark.parametrize("version", [0, 1])
def test_response_header_matches_kio(version: int) -> None:
    cls = _load("response_header", version, EntityType.header)
    api_key, api_version = next(
        (k, v) for k in (11, 3, 0) for v in range(codec.supported_versions(k)[1], -1, -1)
        if codec.response_header_version(k, v) == version
    )
    ours = codec.encode_response_header(api_key, api_version, -7)
    assert ours == _kio_encode(cls, cls(correlation_id=-7))
    assert codec.parse_response_header(ours + b"x", api_key, api_version) == (-7, len(ours))


def test_covers_every_shared_api() -> None:
    """Every API both sides know is compared in at least one version and direction, and the
    counts are reported so a shrinking comparison is noticed."""
    shared_apis = {a for a, _, _, _ in _PAIRS}
    ours_only = {a for a in codec.API_NAMES if a not in kio_index.api_key_map}
    kio_only = [
        (a, v, d) for a, v, d, _ in _kio_pairs() if a in codec.API_NAMES and not _ours_knows(a, v)
    ]
    ours_only_versions = [
        (a, v)
        for a in codec.API_NAMES
        if a in kio_index.api_key_map
        for v in range(codec.supported_versions(a)[0], codec.supported_versions(a)[1] + 1)
        if v not in kio_index.schema_name_map[kio_index.api_key_map[a]]
    ]
    print(
        f"\nkio differential: {len(_PAIRS)} (api, version, direction) pairs for "
        f"{len(shared_apis)} APIs ({len(KIO_EXCLUSIONS)} excluded with a reason); "
        f"plus {len(_DATA_SPECS)} consumer-protocol payload versions and 4 headers. "
        f"Not compared: APIs only ours knows {sorted(ours_only)}; "
        f"{len(kio_only)} newer-version pairs only kio knows; "
        f"versions only ours knows: {ours_only_versions}"
    )
    assert len(shared_apis) > 50
