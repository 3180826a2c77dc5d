"""Readiness probe: a real ApiVersions + Metadata round trip over a raw socket.

Why raw bytes instead of a client library: the probe runs before any test, must not pull a
client's import cost or its retry loops into fixture start-up, and must tell "port open but
broker still fenced / catching up" apart from "ready". Metadata listing the expected node
ids is the signal that the broker serves clients, which a sleep or a port check is not.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from kafka_chaos_proxy.codec import ApiKey

_API_METADATA = ApiKey.METADATA
_API_VERSIONS = ApiKey.API_VERSIONS
_CLIENT_ID = b"kcp-readiness"


class ProbeError(OSError):
    """The broker answered with something other than a healthy response."""


@dataclass(frozen=True)
class BrokerInfo:
    """One broker as listed in a Metadata response."""

    node_id: int
    host: str
    port: int


def _request(api_key: int, version: int, correlation_id: int, body: bytes) -> bytes:
    header = struct.pack(">hhih", api_key, version, correlation_id, len(_CLIENT_ID)) + _CLIENT_ID
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks: list[bytes] = []
    remaining = n
    while remaining > 0:
        chunk = sock.recv(min(remaining, 65536))
        if not chunk:
            raise ProbeError("connection closed by broker")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _round_trip(sock: socket.socket, request: bytes, correlation_id: int) -> bytes:
    sock.sendall(request)
    (size,) = struct.unpack(">i", _recv_exact(sock, 4))
    if not 4 <= size <= 64 * 1024 * 1024:
        raise ProbeError(f"implausible response size {size}")
    data = _recv_exact(sock, size)
    (got,) = struct.unpack_from(">i", data, 0)
    if got != correlation_id:
        raise ProbeError(f"correlation id {got} != {correlation_id}")
    return data[4:]


def _api_ranges(body: bytes) -> dict[int, tuple[int, int]]:
    (error_code, count) = struct.unpack_from(">hi", body, 0)
    if error_code != 0:
        raise ProbeError(f"ApiVersions error code {error_code}")
    ranges: dict[int, tuple[int, int]] = {}
    offset = 6
    for _ in range(max(0, min(count, 10_000))):
        key, low, high = struct.unpack_from(">hhh", body, offset)
        ranges[key] = (low, high)
        offset += 6
    return ranges


def _read_string(body: bytes, offset: int) -> tuple[str | None, int]:
    (length,) = struct.unpack_from(">h", body, offset)
    offset += 2
    if length < 0:
        return None, offset
    return body[offset : offset + length].decode(), offset + length


def _parse_brokers(body: bytes, version: int) -> list[BrokerInfo]:
    offset = 4 if version >= 3 else 0  # throttle_time_ms from v3 on
    (count,) = struct.unpack_from(">i", body, offset)
    offset += 4
    brokers: list[BrokerInfo] = []
    for _ in range(max(0, min(count, 10_000))):
        (node_id,) = struct.unpack_from(">i", body, offset)
        host, offset = _read_string(body, offset + 4)
        (port,) = struct.unpack_from(">i", body, offset)
        _rack, offset = _read_string(body, offset + 4)
        brokers.append(BrokerInfo(node_id, host or "", port))
    return brokers


def api_versions(host: str, port: int, timeout_s: float = 5.0) -> dict[int, tuple[int, int]]:
    """The (min, max) version the broker serves for each API key."""
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        sock.settimeout(timeout_s)
        return _api_ranges(_round_trip(sock, _request(_API_VERSIONS, 0, 1, b""), 1))


def metadata_brokers(host: str, port: int, timeout_s: float = 5.0) -> list[BrokerInfo]:
    """Ask one bootstrap address for the live brokers; raises OSError if not serving yet."""
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        sock.settimeout(timeout_s)
        ranges = _api_ranges(_round_trip(sock, _request(_API_VERSIONS, 0, 1, b""), 1))
        low, high = ranges.get(_API_METADATA, (0, -1))
        # v4 and v1 are the non-flexible versions we can encode; newer brokers dropped v0-v3
        # of some APIs, older ones may lack v4.
        if low <= 4 <= high:
            version, body = 4, struct.pack(">ib", -1, 0)
        elif low <= 1 <= high:
            version, body = 1, struct.pack(">i", -1)
        else:
            raise ProbeError(f"no Metadata version we can speak in {low}..{high}")
        response = _round_trip(sock, _request(_API_METADATA, version, 2, body), 2)
        return _parse_brokers(response, version)
