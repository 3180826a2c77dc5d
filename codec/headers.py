"""Request/response headers, hand-written on ``struct`` because they run for every frame.

``parse_request_header`` is the proxy's hot path (every Produce and Fetch goes through it),
so it avoids construct and any per-call allocation beyond the result tuple. The header
layouts are tiny and fixed by the spec:

* request v0: api_key int16, api_version int16, correlation_id int32
* request v1: + client_id as a *non-compact* nullable int16-length string
* request v2: v1 + a tagged-field section (client_id stays non-compact, see RequestHeader.json)
* response v0: correlation_id int32; v1: + a tagged-field section

The spec-driven construct decode of the same headers is available as
``decode_named("RequestHeader", v, data)``; tests check that both agree.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from kafka_chaos_proxy.codec.api import API_NAMES, request_header_version, response_header_version
from kafka_chaos_proxy.codec.errors import CodecError

_KEY_VER_CORR = struct.Struct(">hhi")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")

# (api_key, api_version) -> request header version, for every known pair.
_REQ_HV: dict[tuple[int, int], int] = {}
for _key in API_NAMES:
    from kafka_chaos_proxy.codec.api import supported_versions as _sv

    _lo, _hi = _sv(_key)
    for _v in range(_lo, _hi + 1):
        _REQ_HV[(_key, _v)] = request_header_version(_key, _v)


# raw -> decoded. Clients reuse a handful of ids; the bounds keep a hostile client that sends
# endless distinct ids from growing it past ~256 KiB.
_CLIENT_IDS: dict[bytes, str] = {}
_CLIENT_IDS_MAX = 1024
_CLIENT_ID_CACHEABLE = 256


class RequestHeader(NamedTuple):
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    # Bytes from the start of the frame to the body; None when the api/version is unknown,
    # because then the header version (and so the header's length) cannot be known.
    header_size: int | None


def _skip_tags(frame: bytes | bytearray | memoryview, off: int, n: int, api_key: int | None,
               api_version: int | None) -> int:
    """Skip a tagged-field section; the header specs define no tags, so all are unknown."""

    def varint(pos: int) -> tuple[int, int]:
        result = 0
        shift = 0
        while shift <= 28:
            if pos >= n:
                raise CodecError("truncated header tagged fields", api_key=api_key,
                                 api_version=api_version, field_path="_tagged_fields",
                                 offset=pos)
            b = frame[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            if b < 0x80:
                return result, pos
            shift += 7
        raise CodecError("header varint longer than 5 bytes", api_key=api_key,
                         api_version=api_version, field_path="_tagged_fields", offset=pos)

    count, off = varint(off)
    for _ in range(min(count, n)):
        _tag, off = varint(off)
        size, off = varint(off)
        off += size
        if off > n:
            raise CodecError("header tagged field runs past the frame", api_key=api_key,
                             api_version=api_version, field_path="_tagged_fields", offset=off)
    if count > n:
        raise CodecError("header tagged field count exceeds the frame", api_key=api_key,
                         api_version=api_version, field_path="_tagged_fields", offset=off)
    return off


def parse_request_header(frame: bytes | bytearray | memoryview) -> RequestHeader:
    """Parse the request header at the start of ``frame`` (the bytes after the size prefix).

    Unknown api key/version: still returns key, version, correlation id and the client id
    (read with the v1 layout every such client uses), with ``header_size=None``.
    """
    n = len(frame)
    if n < 8:
        raise CodecError(f"request header needs at least 8 bytes, frame has {n}",
                         field_path="request_api_key", offset=0)
    api_key, api_version, correlation_id = _KEY_VER_CORR.unpack_from(frame, 0)
    hv = _REQ_HV.get((api_key, api_version))
    if hv == 0:
        return _new_header(RequestHeader, (api_key, api_version, correlation_id, None, 8))
    if n < 10:
        raise CodecError("truncated client_id length", api_key=api_key,
                         api_version=api_version, direction="request",
                         field_path="client_id", offset=8)
    (clen,) = _I16.unpack_from(frame, 8)
    if clen < 0:
        client_id = None
        off = 10
    else:
        off = 10 + clen
        if off > n:
            raise CodecError(f"client_id length {clen} runs past the frame ({n} bytes)",
                             api_key=api_key, api_version=api_version, direction="request",
                             field_path="client_id", offset=8)
        raw = bytes(frame[10:off])
        client_id = _CLIENT_IDS.get(raw)
        if client_id is None:
            client_id = _decode_client_id(raw, api_key, api_version)
    if hv is None:
        return _new_header(RequestHeader, (api_key, api_version, correlation_id, client_id, None))
    if hv == 2:
        if off < n and frame[off] == 0:  # the usual case: no tagged fields
            off += 1
        else:
            off = _skip_tags(frame, off, n, api_key, api_version)
    return _new_header(RequestHeader, (api_key, api_version, correlation_id, client_id, off))


# tuple.__new__ skips the NamedTuple's Python-level __new__: half the cost of the result.
_new_header = tuple.__new__


def _decode_client_id(raw: bytes, api_key: int, api_version: int) -> str:
    try:
        client_id = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CodecError("client_id is not valid UTF-8", api_key=api_key,
                         api_version=api_version, direction="request",
                         field_path="client_id", offset=10) from None
    if len(raw) <= _CLIENT_ID_CACHEABLE:
        if len(_CLIENT_IDS) >= _CLIENT_IDS_MAX:
            _CLIENT_IDS.clear()
        _CLIENT_IDS[raw] = client_id
    return client_id


def encode_request_header(api_key: int, api_version: int, correlation_id: int,
                          client_id: str | None) -> bytes:
    hv = request_header_version(api_key, api_version)
    head = _KEY_VER_CORR.pack(api_key, api_version, correlation_id)
    if hv == 0:
        return head
    if client_id is None:
        cid = _I16.pack(-1)
    else:
        raw = client_id.encode("utf-8")
        if len(raw) > 0x7FFF:
            raise CodecError("client_id longer than 32767 bytes", api_key=api_key,
                             api_version=api_version, field_path="client_id")
        cid = _I16.pack(len(raw)) + raw
    return head + cid + (b"\x00" if hv == 2 else b"")


def parse_response_header(frame: bytes | bytearray | memoryview, api_key: int,
                          api_version: int) -> tuple[int, int]:
    """(correlation_id, header_size) of a response to a request of this api/version."""
    hv = response_header_version(api_key, api_version)
    n = len(frame)
    if n < 4:
        raise CodecError(f"response header needs at least 4 bytes, frame has {n}",
                         api_key=api_key, api_version=api_version, direction="response",
                         field_path="correlation_id", offset=0)
    (correlation_id,) = _I32.unpack_from(frame, 0)
    if hv == 0:
        return correlation_id, 4
    if n > 4 and frame[4] == 0:
        return correlation_id, 5
    return correlation_id, _skip_tags(frame, 4, n, api_key, api_version)


def encode_response_header(api_key: int, api_version: int, correlation_id: int) -> bytes:
    hv = response_header_version(api_key, api_version)
    return _I32.pack(correlation_id) + (b"\x00" if hv == 1 else b"")
