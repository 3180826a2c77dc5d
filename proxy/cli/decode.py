"""`kafka-chaos-proxy decode`: turn captured Kafka bytes into readable JSON.

For looking at what a client or broker actually sent (a tcpdump payload, a frame from the
event log, a hex string in a bug report) without a broker or a client library. It uses the
same codec as the proxy, so what it prints is what the proxy sees.

A whole request frame names its API and version, so for a frame the side and the schema are
inferred; a response does not, so it needs `--response --api NAME --version N`, and the error
says exactly that rather than failing somewhere inside a misread body. Consumer-protocol
payloads (JoinGroup metadata, SyncGroup assignments) are decoded too, since they are what a
rebalance is about; `--raw-payloads` keeps them as bytes. `--capture FILE` reads back what
`run --capture` wrote (`proxy.capture`), one JSON object per frame.

Failures are one line on stderr and exit code 2, so the command is usable in scripts and its
error points straight at the field and byte offset that did not parse.
"""

from __future__ import annotations

import base64
import json
import struct
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.codec import consumer_protocol
from kafka_chaos_proxy.proxy.capture import (
    CapturedFrame,
    CaptureFormatError,
    Direction,
    read_capture,
)

EXIT_BAD_INPUT = 2
JOIN_GROUP, SYNC_GROUP = 11, 14
RESPONSE_NEEDS = ("a response needs --response --api NAME --version N (a response frame does "
                  "not name its API or version)")


class BadInput(Exception):
    """Input that does not decode; `str()` is the one line `_fail` prints."""


class BytesAs(StrEnum):
    HEX = "hex"
    BASE64 = "base64"


def _fail(message: str) -> NoReturn:
    """One line on stderr and exit 2: the contract for every kind of bad input."""
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    raise typer.Exit(EXIT_BAD_INPUT)


def _read_input(source: str, as_hex: bool) -> bytes:
    if source == "-":
        raw = sys.stdin.buffer.read()
    else:
        try:
            raw = Path(source).read_bytes()
        except OSError as exc:
            _fail(f"cannot read {source}: {exc.strerror or exc}")
    if not as_hex:
        return raw
    text = "".join(raw.decode("ascii", errors="replace").split())
    text = text.removeprefix("0x")
    try:
        return bytes.fromhex(text)
    except ValueError as exc:
        _fail(f"input is not hex: {exc}")


def _resolve_api(api: str) -> int:
    try:
        return codec.api_key_of(api)
    except (ValueError, codec.CodecError):
        _fail(f"unknown API {api!r} (give a name such as JoinGroup or a numeric key)")


def _jsonable(value: Any, bytes_as: BytesAs) -> Any:
    """Codec values -> JSON values; bytes become hex or base64 strings, UUIDs their text."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v, bytes_as) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v, bytes_as) for v in value]
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        return raw.hex() if bytes_as is BytesAs.HEX else base64.b64encode(raw).decode("ascii")
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _describe_error(exc: codec.CodecError) -> str:
    """The codec's error as one line that always names the field and the byte offset."""
    text = str(exc)
    field_path = getattr(exc, "field_path", None)
    offset = getattr(exc, "offset", None)
    parts = [text]
    if field_path and str(field_path) not in text:
        parts.append(f"field {field_path}")
    if offset is not None and f"offset={offset}" not in text and f"offset {offset}" not in text:
        parts.append(f"at offset {offset}")
    return ", ".join(parts)


def _unframe(data: bytes) -> bytes:
    """Strip and check the 4-byte size prefix of a frame."""
    if len(data) < 4:
        raise BadInput(f"frame size prefix: needs 4 bytes, got {len(data)} (at offset 0)")
    (size,) = struct.unpack_from(">i", data, 0)
    if size != len(data) - 4:
        raise BadInput(
            f"frame size prefix says {size} bytes but {len(data) - 4} follow (at offset 0)")
    return data[4:]


def looks_like_request_frame(data: bytes) -> bool:
    """A whole frame whose header parses as a known api/version with a sane client id: the
    test the proxy applies after raw SASL (`RequestPath._looks_like_request`). A response's
    correlation id rarely passes it, and when it does the body fails and the error says
    what a response needs."""
    if len(data) < 14 or struct.unpack_from(">i", data, 0)[0] != len(data) - 4:
        return False
    api_key, api_version = struct.unpack_from(">hh", data, 4)
    if not codec.is_supported(api_key, api_version):
        return False
    (cid_len,) = struct.unpack_from(">h", data, 12)
    return cid_len == -1 or 0 <= cid_len <= len(data) - 14


def _decode_frame(
    data: bytes, direction: codec.Direction, api_key: int | None, version: int | None
) -> tuple[int, int, dict[str, Any], dict[str, Any]]:
    """(api_key, version, header, body) of a whole frame.

    Header errors count offsets from the first byte after the size prefix; body errors count
    from the body's first byte, and the message says where the body starts in the input."""
    frame = _unframe(data)
    if direction is codec.Direction.REQUEST:
        header = codec.parse_request_header(frame)
        api_key, version = header.api_key, header.api_version
        if header.header_size is None:
            raise BadInput(f"frame is api {api_key} v{version}, which the codec does not know")
        head = {
            "api_key": header.api_key,
            "api_version": header.api_version,
            "correlation_id": header.correlation_id,
            "client_id": header.client_id,
        }
        size = header.header_size
    else:
        if api_key is None or version is None:
            raise BadInput(RESPONSE_NEEDS)
        correlation_id, size = codec.parse_response_header(frame, api_key, version)
        head = {"correlation_id": correlation_id}
    try:
        body = codec.decode_body(api_key, version, direction, frame[size:])
    except codec.CodecError as exc:
        raise BadInput(f"{_describe_error(exc)} (the body starts at input offset "
                       f"{4 + size})") from None
    return api_key, version, head, body


def _expand(item: Any, key: str, new_key: str,
            decoder: Callable[[bytes], dict[str, Any]]) -> None:
    """Replace a consumer-protocol payload by its decoded form; another protocol's payload
    (Connect's, or garbage) stays as it was."""
    if not isinstance(item, dict):
        return
    value = item.get(key)
    if not isinstance(value, bytes | bytearray | memoryview):
        return
    try:
        decoded = decoder(bytes(value))
    except codec.CodecError:
        return
    del item[key]
    item[new_key] = decoded


def decode_consumer_payloads(api_key: int, direction: codec.Direction,
                             body: dict[str, Any]) -> dict[str, Any]:
    """JoinGroup metadata -> `subscription`, SyncGroup assignments -> `assignment` (in place),
    when the protocol type is "consumer" (or not said: versions before it was sent)."""
    if body.get("protocol_type") not in ("consumer", None):
        return body
    subscription = consumer_protocol.decode_subscription
    assignment = consumer_protocol.decode_assignment
    request = direction is codec.Direction.REQUEST
    if api_key == JOIN_GROUP:
        for item in body.get("protocols" if request else "members") or ():
            _expand(item, "metadata", "subscription", subscription)
    elif api_key == SYNC_GROUP and request:
        for item in body.get("assignments") or ():
            _expand(item, "assignment", "assignment", assignment)
    elif api_key == SYNC_GROUP:
        _expand(body, "assignment", "assignment", assignment)
    return body


def _infer_direction(request: bool, response: bool, frame: bool, data: bytes,
                     api_key: int | None) -> tuple[codec.Direction, bool]:
    """(direction, is a whole frame) from the flags and, where they do not say, the bytes."""
    if response:
        return codec.Direction.RESPONSE, frame
    if request:
        return codec.Direction.REQUEST, frame
    if frame or api_key is None:
        whole = len(data) >= 4 and struct.unpack_from(">i", data, 0)[0] == len(data) - 4
        if looks_like_request_frame(data) or (frame and not whole):
            return codec.Direction.REQUEST, True  # (a bad size prefix is reported as such)
        if frame:
            raise BadInput(f"this frame's header is not a request's; {RESPONSE_NEEDS}")
        raise BadInput("not a whole request frame (a 4-byte size prefix, then a header naming "
                       "a known API and version); for a body give --api NAME --version N and "
                       "--request or --response; " + RESPONSE_NEEDS)
    raise BadInput("say which side the bytes come from: --request or --response (only a "
                   "whole request frame names its API)")


def _decode_input(data: bytes, direction: codec.Direction, frame: bool,
                  api_key: int | None, version: int | None,
                  ) -> tuple[int, dict[str, Any] | None, dict[str, Any]]:
    """(api_key, header or None, body) of a frame or a bare body."""
    if frame:
        api_key, version, header, body = _decode_frame(data, direction, api_key, version)
        return api_key, header, body
    if api_key is None or version is None:
        raise BadInput("--api and --version are required unless the input is a whole "
                       "request frame")
    if not codec.is_supported(api_key, version):
        low, high = codec.supported_versions(api_key)
        raise BadInput(f"{codec.API_NAMES[api_key]} v{version} is unknown "
                       f"(known: v{low}-v{high})")
    return api_key, None, codec.decode_body(api_key, version, direction, data)


def _captured(record: CapturedFrame, raw_payloads: bool) -> dict[str, Any]:
    """One captured frame as printed by `decode --capture`."""
    out: dict[str, Any] = {
        "time": datetime.fromtimestamp(record.time, UTC).isoformat(timespec="milliseconds"),
        "direction": record.direction.label,
        "connection": record.connection_id,
        "api": codec.api_label(record.api_key),
        "version": record.api_version,
    }
    request = record.direction is Direction.CLIENT_TO_BROKER
    side = codec.Direction.REQUEST if request else codec.Direction.RESPONSE
    try:
        _, _, header, body = _decode_frame(record.frame, side, record.api_key,
                                           record.api_version)
    except codec.CodecError as exc:
        out["error"] = _describe_error(exc)
        out["frame"] = record.frame
        return out
    except (BadInput, struct.error) as exc:
        out["error"] = str(exc)
        out["frame"] = record.frame
        return out
    out["header"] = header
    out["body"] = body if raw_payloads else decode_consumer_payloads(record.api_key, side, body)
    return out


def _print_capture(path: str, api: str | None, bytes_as: BytesAs, raw_payloads: bool) -> None:
    """Every frame of a capture file (of one API with --api), one JSON object each."""
    wanted = _resolve_api(api) if api is not None else None
    try:
        for record in read_capture(path):
            if wanted is None or record.api_key == wanted:
                typer.echo(json.dumps(_jsonable(_captured(record, raw_payloads), bytes_as),
                                      indent=2, ensure_ascii=False))
    except OSError as exc:
        _fail(f"cannot read {path}: {exc.strerror or exc}")
    except CaptureFormatError as exc:
        _fail(str(exc))


def decode(
    source: Annotated[
        str, typer.Argument(metavar="[FILE|-]", help="Input file, or - for stdin.")
    ] = "-",
    api: Annotated[
        str | None, typer.Option("--api", help="API name (JoinGroup) or key (11).")
    ] = None,
    version: Annotated[int | None, typer.Option("--version", help="API version.")] = None,
    request: Annotated[bool, typer.Option("--request", help="Input is a request.")] = False,
    response: Annotated[bool, typer.Option("--response", help="Input is a response.")] = False,
    as_hex: Annotated[
        bool, typer.Option("--hex", help="Input is hex text (whitespace ignored), not binary.")
    ] = False,
    frame: Annotated[
        bool,
        typer.Option(
            "--frame",
            help="Input is a whole frame: 4-byte size prefix, header, body. For requests the "
            "API and version come from the header (a request frame is recognised without "
            "this flag too); responses need --response --api NAME --version N.",
        ),
    ] = False,
    bytes_as: Annotated[
        BytesAs,
        typer.Option("--bytes-as", help="How bytes and records fields are printed."),
    ] = BytesAs.HEX,
    show_header: Annotated[
        bool,
        typer.Option(
            "--show-header", help="With --frame: print {header, body} instead of the body."
        ),
    ] = False,
    raw_payloads: Annotated[
        bool,
        typer.Option("--raw-payloads", help="Keep consumer-protocol payloads (JoinGroup "
                     "metadata, SyncGroup assignments) as bytes instead of decoding them."),
    ] = False,
    capture: Annotated[
        str | None,
        typer.Option("--capture", metavar="FILE", help="Read a file written by `run "
                     "--capture` and print each frame decoded (only --api's with --api)."),
    ] = None,
) -> None:
    """Decode one Kafka request or response (body or whole frame) and print it as JSON.

    A whole request frame is recognised by its header; a response needs --response --api
    --version. Input is raw binary unless --hex is given. Field names are the spec's in snake_case;
    bytes fields are hex by default (--bytes-as base64 to change). Bad input exits with code 2
    and one line on stderr naming the field and byte offset.
    """
    if capture is not None:
        _print_capture(capture, api, bytes_as, raw_payloads)
        return
    api_key = _resolve_api(api) if api is not None else None
    if request and response:
        _fail("give only one of --request and --response")
    if not frame and (request or response) and (api_key is None or version is None):
        _fail("--api and --version are required unless --frame is given")
    data = _read_input(source, as_hex)
    try:
        direction, frame = _infer_direction(request, response, frame, data, api_key)
    except BadInput as exc:
        _fail(str(exc))
    try:
        api_key, header, body = _decode_input(data, direction, frame, api_key, version)
    except (BadInput, codec.CodecError) as exc:
        why = _describe_error(exc) if isinstance(exc, codec.CodecError) else str(exc)
        if not frame or direction is codec.Direction.RESPONSE:
            _fail(why)
        if request:
            _fail(f"{why}; if it is a response, {RESPONSE_NEEDS}")
        # Inferred: a response whose first bytes happen to read as a request header.
        _fail(f"{RESPONSE_NEEDS}; read as a request (as its header suggests) it fails: {why}")
    if not raw_payloads:
        body = decode_consumer_payloads(api_key, direction, body)
    output: Any = body
    if show_header and header is not None:
        output = {"header": header, "body": body}
    typer.echo(json.dumps(_jsonable(output, bytes_as), indent=2, ensure_ascii=False))


def register(app: typer.Typer) -> None:
    """Add the `decode` command to the CLI app."""
    app.command("decode")(decode)


__all__ = ["BytesAs", "decode", "decode_consumer_payloads", "looks_like_request_frame",
           "register"]
