"""Codec throughput: our construct-based codec against kio on the same bytes, in one run.

Run:  .venv/bin/python bench/codec_bench.py [--seconds S]

Why these cases: the request header is parsed for every frame the proxy sees (the hot path);
JoinGroup/SyncGroup are the group-coordination bodies decoded for the event log; a Metadata
response is decoded (and re-encoded) for broker address rewriting, and is the largest body the
proxy routinely touches. Decoding is measured with construct's compiled parsers (the default)
and with the interpreted ones (the fallback that produces error paths), to show what
compilation buys; the same switch covers encoding.

Numbers are printed only; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import io
import platform
import sys
import time
import timeit
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.codec import messages
from kafka_chaos_proxy.codec.consumer_protocol import encode_assignment, encode_subscription

try:
    from kio.index import load_payload_module
    from kio.serial import entity_reader, entity_writer
    from kio.static.constants import EntityType
except ImportError:  # pragma: no cover - kio is a dev dependency
    load_payload_module = None  # type: ignore[assignment]

REQ = codec.Direction.REQUEST
RESP = codec.Direction.RESPONSE


@dataclass
class Case:
    name: str
    api_key: int
    version: int
    direction: codec.Direction
    body: dict[str, Any]


def _subscription(topics: list[str]) -> bytes:
    return encode_subscription(
        {"topics": topics, "owned_partitions": [{"topic": topics[0], "partitions": [0, 1]}],
         "generation_id": 4, "rack_id": "rack-a"},
        3,
    )


def _assignment(partitions: list[int]) -> bytes:
    return encode_assignment(
        {"assigned_partitions": [{"topic": "orders", "partitions": partitions}]}, 3
    )


def cases() -> list[Case]:
    members = [f"consumer-{i}-6f1c2b9e-55a0-4a4e-9d4f-{i:012d}" for i in range(3)]
    join_request = {
        "group_id": "orders-consumers",
        "session_timeout_ms": 45000,
        "rebalance_timeout_ms": 300000,
        "member_id": members[0],
        "group_instance_id": None,
        "protocol_type": "consumer",
        "protocols": [
            {"name": "cooperative-sticky", "metadata": _subscription(["orders", "payments"])},
            {"name": "range", "metadata": _subscription(["orders", "payments"])},
        ],
        "reason": "rebalance",
    }
    join_response = {
        "error_code": 0,
        "generation_id": 5,
        "protocol_type": "consumer",
        "protocol_name": "cooperative-sticky",
        "leader": members[0],
        "skip_assignment": False,
        "member_id": members[0],
        "members": [
            {"member_id": m, "group_instance_id": None,
             "metadata": _subscription(["orders", "payments"])}
            for m in members
        ],
    }
    sync_request = {
        "group_id": "orders-consumers",
        "generation_id": 5,
        "member_id": members[0],
        "group_instance_id": None,
        "protocol_type": "consumer",
        "protocol_name": "cooperative-sticky",
        "assignments": [
            {"member_id": m, "assignment": _assignment([i, i + 3, i + 6])}
            for i, m in enumerate(members)
        ],
    }
    sync_response = {
        "error_code": 0,
        "protocol_type": "consumer",
        "protocol_name": "cooperative-sticky",
        "assignment": _assignment([0, 3, 6]),
    }
    metadata_response = {
        "brokers": [
            {"node_id": n, "host": f"broker-{n}.kafka.svc.cluster.local", "port": 9092,
             "rack": f"rack-{n}"}
            for n in range(3)
        ],
        "cluster_id": "q1Sh-9_ISia_zwGINzRvyQ",
        "controller_id": 1,
        "topics": [
            {
                "error_code": 0,
                "name": "orders",
                "topic_id": uuid.UUID("6ba7b810-9dad-11d1-80b4-00c04fd430c8"),
                "is_internal": False,
                "partitions": [
                    {"error_code": 0, "partition_index": p, "leader_id": p % 3,
                     "leader_epoch": 7, "replica_nodes": [p % 3, (p + 1) % 3, (p + 2) % 3],
                     "isr_nodes": [p % 3, (p + 1) % 3, (p + 2) % 3], "offline_replicas": []}
                    for p in range(100)
                ],
                "topic_authorized_operations": -2147483648,
            }
        ],
    }
    return [
        Case("JoinGroup v9 request", 11, 9, REQ, join_request),
        Case("JoinGroup v9 response (3 members)", 11, 9, RESP, join_response),
        Case("SyncGroup v5 request (3 assignments)", 14, 5, REQ, sync_request),
        Case("SyncGroup v5 response", 14, 5, RESP, sync_response),
        Case("Metadata v12 response (100 partitions)", 3, 12, RESP, metadata_response),
    ]


def ops_per_second(fn: Callable[[], object], seconds: float) -> float:
    """Best of three timed runs, each about `seconds / 3` long.

    Timed in process CPU time, not wall time: the machine is shared, and time spent waiting
    for a core is not the codec's."""
    timer = timeit.Timer(fn, timer=time.process_time)
    number, elapsed = timer.autorange()
    number = max(1, int(number * (seconds / 3) / max(elapsed, 1e-9)))
    best = min(timer.repeat(repeat=3, number=number))
    return number / best


def _kio_class(api_key: int, version: int, direction: codec.Direction) -> Any:
    if load_payload_module is None:
        return None
    try:
        module = load_payload_module(
            api_key, version, EntityType.request if direction is REQ else EntityType.response
        )
    except Exception:
        return None
    suffix = "Request" if direction is REQ else "Response"
    return next(
        getattr(module, n) for n in dir(module)
        if n.endswith(suffix) and getattr(getattr(module, n), "__version__", None) == version
        and n != "RequestHeader"
    )


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def ratio(ours: float | None, kio: float | None) -> str:
    if ours is None or kio is None:
        return "-"
    return f"{ours / kio:.2f}x"


DecodeRow = tuple[str, float, float | None, float | None]
EncodeRow = tuple[str, float, float | None, float | None]


def bench_header(seconds: float) -> list[DecodeRow]:
    frame = codec.encode_request_header(1, 16, 123456, "consumer-orders-1") + b"\x00" * 64
    ours = ops_per_second(lambda: codec.parse_request_header(frame), seconds)
    kio_ops = None
    if load_payload_module is not None:
        from kio.schema.request_header.v2.header import RequestHeader

        reader = entity_reader(RequestHeader)
        kio_ops = ops_per_second(lambda: reader(frame, 0), seconds)
    return [("request header v2 parse (Fetch)", ours, None, kio_ops)]


def bench_bodies(seconds: float) -> tuple[list[DecodeRow], list[EncodeRow]]:
    decode_rows: list[DecodeRow] = []
    encode_rows: list[EncodeRow] = []
    for case in cases():
        data = codec.encode_body(case.api_key, case.version, case.direction, case.body)
        decoded = codec.decode_body(case.api_key, case.version, case.direction, data)

        def decode(case: Case = case, data: bytes = data) -> object:
            return codec.decode_body(case.api_key, case.version, case.direction, data)

        def encode(case: Case = case, value: dict[str, Any] = decoded) -> object:
            return codec.encode_body(case.api_key, case.version, case.direction, value)

        compiled = ops_per_second(decode, seconds)
        encoded = ops_per_second(encode, seconds)
        messages.USE_COMPILED = False
        try:
            interpreted = ops_per_second(decode, seconds)
            encoded_interpreted = ops_per_second(encode, seconds)
        finally:
            messages.USE_COMPILED = True

        kio_decode = kio_encode = None
        cls = _kio_class(case.api_key, case.version, case.direction)
        if cls is not None:
            reader = entity_reader(cls)
            writer = entity_writer(cls)
            entity, size = reader(data, 0)
            assert size == len(data), "kio disagrees on the body length"

            def kio_write(entity: Any = entity, writer: Any = writer) -> io.BytesIO:
                buffer = io.BytesIO()
                writer(buffer, entity)
                return buffer

            def kio_read(reader: Any = reader, data: bytes = data) -> object:
                return reader(data, 0)

            assert kio_write().getvalue() == data, "kio encodes different bytes"
            kio_decode = ops_per_second(kio_read, seconds)
            kio_encode = ops_per_second(kio_write, seconds)
        decode_rows.append((f"{case.name} [{len(data)} B]", compiled, interpreted, kio_decode))
        encode_rows.append((case.name, encoded, encoded_interpreted, kio_encode))
    return decode_rows, encode_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.5, help="time per measurement")
    args = parser.parse_args()
    try:
        import kio

        kio_version = kio.__version__
    except ImportError:
        kio_version = "not installed"
    print(f"python {platform.python_version()} on {platform.machine()}, kio {kio_version}")
    print()
    header = bench_header(args.seconds)
    decode_rows, encode_rows = bench_bodies(args.seconds)
    for title, rows in (("decode", [*header, *decode_rows]), ("encode", encode_rows)):
        print(f"{title:<50} {'ops/s':>11} {'interp ops/s':>12} {'kio ops/s':>11} "
              f"{'vs kio':>7} {'us/op':>7}")
        for name, ours, interpreted, kio_ops in rows:
            print(f"{name:<50} {fmt(ours):>11} {fmt(interpreted):>12} {fmt(kio_ops):>11} "
                  f"{ratio(ours, kio_ops):>7} {1e6 / ours:>7.2f}")
        print()
    print("ops/s: compiled construct (the default); interp: codec.messages.USE_COMPILED = False.")
    print("'vs kio' is our ops/s divided by kio's (above 1.00x: faster than kio).")


if __name__ == "__main__":
    main()
