"""`kafka-chaos-proxy decode`: turn captured Kafka bytes into readable JSON.

For looking at what a client or broker actually sent (a tcpdump payload, a frame from the
event log, a hex string in a bug report) without a broker or a client library. It uses the
same codec as the proxy, so what it prints is what the proxy sees.

Failures are one line on stderr and exit code 2, so the command is usable in scripts and its
error points straight at the field and byte offset that did not parse.
"""

from __future__ import annotations

import base64
import json
import struct
import sys
import uuid
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

import codec

EXIT_BAD_INPUT = 2


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
        _fail(f"frame size prefix: needs 4 bytes, got {len(data)} (at offset 0)")
    (size,) = struct.unpack_from(">i", data, 0)
    if size != len(data) - 4:
        _fail(f"frame size prefix says {size} bytes but {len(data) - 4} follow (at offset 0)")
    return data[4:]


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
            _fail(f"frame is api {api_key} v{version}, which the codec does not know")
        head = {
            "api_key": header.api_key,
            "api_version": header.api_version,
            "correlation_id": header.correlation_id,
            "client_id": header.client_id,
        }
        size = header.header_size
    else:
        if api_key is None or version is None:
            _fail("--frame --response needs --api and --version (responses do not name them)")
        correlation_id, size = codec.parse_response_header(frame, api_key, version)
        head = {"correlation_id": correlation_id}
    try:
        body = codec.decode_body(api_key, version, direction, frame[size:])
    except codec.CodecError as exc:
        _fail(f"{_describe_error(exc)} (the body starts at input offset {4 + size})")
    return api_key, version, head, body


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
            "API and version come from the header; responses still need --api/--version.",
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
) -> None:
    """Decode one Kafka request or response body and print it as JSON.

    Input is raw binary unless --hex is given. Field names are the spec's in snake_case;
    bytes fields are hex by default (--bytes-as base64 to change). Bad input exits with code 2
    and one line on stderr naming the field and byte offset.
    """
    if request and response:
        _fail("give only one of --request and --response")
    if frame and not response:
        request = True
    if not (request or response):
        _fail("say which side the bytes come from: --request or --response")
    direction = codec.Direction.REQUEST if request else codec.Direction.RESPONSE
    api_key = _resolve_api(api) if api is not None else None
    if not frame and (api_key is None or version is None):
        _fail("--api and --version are required unless --frame is given")
    data = _read_input(source, as_hex)
    header: dict[str, Any] | None = None
    try:
        if frame:
            api_key, version, header, body = _decode_frame(data, direction, api_key, version)
        else:
            assert api_key is not None and version is not None
            if not codec.is_supported(api_key, version):
                low, high = codec.supported_versions(api_key)
                _fail(f"{codec.API_NAMES[api_key]} v{version} is unknown (known: v{low}-v{high})")
            body = codec.decode_body(api_key, version, direction, data)
    except codec.CodecError as exc:
        _fail(_describe_error(exc))
    output: Any = body
    if show_header and header is not None:
        output = {"header": header, "body": body}
    typer.echo(json.dumps(_jsonable(output, bytes_as), indent=2, ensure_ascii=False))


def register(app: typer.Typer) -> None:
    """Add the `decode` command to the CLI app."""
    app.command("decode")(decode)


__all__ = ["BytesAs", "decode", "register"]
