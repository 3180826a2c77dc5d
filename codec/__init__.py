"""The Kafka wire protocol, pure: bytes in, dicts out (and back). No I/O, no asyncio.

What lives here:

* ``schema``       generated facts from Kafka's JSON specs
                   (``python -m kafka_chaos_proxy.codec.generate``),
                   with the ``ApiKey`` and ``ErrorCode`` enums
* ``generate``     the generator that writes ``schema``
* ``api``          api keys/names, supported versions, flexible versions, header versions
* ``headers``      request/response headers; ``parse_request_header`` is the per-frame fast path
* ``wire``         Kafka's wire forms as plain bounded read/write functions
* ``primitives``   construct classes for Kafka's wire types, built on ``wire``
* ``messages``     the engine: spec -> construct tree per (api, version, direction), cached
* ``errors``       ``CodecError`` and friends: api, version, field path and byte offset
* ``error_codes``  Kafka error names <-> codes

Imports: the standard library and ``construct`` only. Nothing else of ours may be imported
from here (dependencies point ``proxy -> faults -> codec``).

Body values are plain dicts keyed by the snake_case spec field names; unknown tagged fields
are kept under ``"_unknown_tags"`` so that decode -> encode is byte-exact.
"""

from __future__ import annotations

from typing import Any

from kafka_chaos_proxy.codec.api import (
    API_NAMES,
    Direction,
    api_key_of,
    api_label,
    api_name,
    is_flexible,
    is_supported,
    request_header_version,
    response_header_version,
    stable_versions,
    supported_versions,
)
from kafka_chaos_proxy.codec.error_codes import ERROR_CODES, error_code, error_label, error_name
from kafka_chaos_proxy.codec.errors import CodecError, UnknownApiError, UnknownErrorCodeError
from kafka_chaos_proxy.codec.headers import (
    RequestHeader,
    encode_request_header,
    encode_response_header,
    parse_request_header,
    parse_response_header,
)
from kafka_chaos_proxy.codec.messages import (
    decode_body,
    decode_body_prefix,
    decode_named,
    decode_named_prefix,
    encode_body,
    encode_body_prefix,
    encode_named,
)
from kafka_chaos_proxy.codec.schema import ApiKey, ErrorCode


def decode_request(frame: bytes | bytearray | memoryview) -> tuple[RequestHeader, dict[str, Any]]:
    """Header and body of a whole request frame (without the 4-byte size prefix)."""
    header = parse_request_header(frame)
    if header.header_size is None:
        raise UnknownApiError(
            f"cannot decode api {header.api_key} version {header.api_version}",
            api_key=header.api_key, api_version=header.api_version, direction="request",
        )
    body = decode_body(header.api_key, header.api_version, Direction.REQUEST,
                       memoryview(frame)[header.header_size:])
    return header, body


def decode_response(frame: bytes | bytearray | memoryview, api_key: int,
                    api_version: int) -> tuple[int, dict[str, Any]]:
    """Correlation id and body of a whole response frame (without the size prefix)."""
    correlation_id, size = parse_response_header(frame, api_key, api_version)
    body = decode_body(api_key, api_version, Direction.RESPONSE, memoryview(frame)[size:])
    return correlation_id, body


def encode_request(header: RequestHeader | tuple[int, int, int, str | None],
                   body: dict[str, Any]) -> bytes:
    """Header + body of a request frame (without the size prefix)."""
    api_key, api_version, correlation_id, client_id = header[0], header[1], header[2], header[3]
    return (encode_request_header(api_key, api_version, correlation_id, client_id)
            + encode_body(api_key, api_version, Direction.REQUEST, body))


def encode_response(api_key: int, api_version: int, correlation_id: int,
                    body: dict[str, Any]) -> bytes:
    """Header + body of a response frame (without the size prefix)."""
    return (encode_response_header(api_key, api_version, correlation_id)
            + encode_body(api_key, api_version, Direction.RESPONSE, body))


__all__ = [
    "API_NAMES",
    "ERROR_CODES",
    "ApiKey",
    "CodecError",
    "Direction",
    "ErrorCode",
    "RequestHeader",
    "UnknownApiError",
    "UnknownErrorCodeError",
    "api_key_of",
    "api_label",
    "api_name",
    "decode_body",
    "decode_body_prefix",
    "decode_named",
    "decode_named_prefix",
    "decode_request",
    "decode_response",
    "encode_body",
    "encode_body_prefix",
    "encode_named",
    "encode_request",
    "encode_request_header",
    "encode_response",
    "encode_response_header",
    "error_code",
    "error_label",
    "error_name",
    "is_flexible",
    "is_supported",
    "parse_request_header",
    "parse_response_header",
    "request_header_version",
    "response_header_version",
    "stable_versions",
    "supported_versions",
]
