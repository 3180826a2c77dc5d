"""`run --capture FILE`: the frames of chosen APIs, written to a file `decode --capture` reads.

A bug report about a rebalance is most useful with the bytes that crossed the wire; a tcpdump
of a TLS-less Kafka connection is the usual way to get them, but it needs root, a filter and
a dissector. The proxy already holds every frame whole, so it can write them itself.

The file is length-prefixed so it can be read back without a Kafka parser:

    MAGIC (8 bytes: b"KCPCAP" NUL, format version 1)
    per frame: RECORD (>dBIhhI: unix time, direction, connection id, api key, api version,
               frame length), then the frame itself (size prefix included, as on the wire)

Direction 0 is client -> broker (a request as the client sent it, before any fault), 1 is
broker -> client (a response as the broker sent it, before addresses are rewritten). Frames
streamed cut-through (pass-through Produce/Fetch of 256 KiB and more) are not captured: they
are never held whole, and the coordination APIs a capture is for never take that path.

Secrets are not captured: a SaslAuthenticate frame's `auth_bytes` (a PLAIN password, a SCRAM
proof, an OAuth token, in either direction) are replaced by `[redacted: N bytes]` before the
frame is written, the rest of the frame re-encoded as it was; a SaslAuthenticate frame that
cannot be decoded is not written at all. The raw tokens that follow a SaslHandshake v0 never
reach the capture (they are not Kafka frames).

Bounded on purpose: the file is opened once, writes go through one buffer (flushed by the
server's sweep and on stop, so a reader sees frames within a second or so), and at
`MAX_BYTES` capturing stops with one warning line saying so; the proxy goes on. A failing
disk ends the capture the same way, never a connection.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterable, Iterator
from enum import IntEnum
from pathlib import Path
from typing import BinaryIO, NamedTuple

import structlog

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.codec import ApiKey

__all__ = [
    "MAGIC",
    "MAX_BYTES",
    "CaptureFormatError",
    "CapturedFrame",
    "Direction",
    "FrameCapture",
    "read_capture",
]

log = structlog.get_logger("kcp.capture")

MAGIC = b"KCPCAP\x00\x01"
RECORD = struct.Struct(">dBIhhI")
SASL_AUTHENTICATE = ApiKey.SASL_AUTHENTICATE
_I32 = struct.Struct(">i")
# A capture is for a few rebalances, not a day of Fetch traffic: past this it stops.
MAX_BYTES = 256 * 1024 * 1024
# One write syscall per this many bytes of frames, whatever the frame rate.
BUFFER_BYTES = 256 * 1024


class Direction(IntEnum):
    CLIENT_TO_BROKER = 0
    BROKER_TO_CLIENT = 1

    @property
    def label(self) -> str:
        return "client->broker" if self is Direction.CLIENT_TO_BROKER else "broker->client"


class CapturedFrame(NamedTuple):
    time: float
    direction: Direction
    connection_id: int
    api_key: int
    api_version: int
    frame: bytes


class CaptureFormatError(ValueError):
    """The file is not a capture, or ends inside a record; the message names the offset."""


def resolve_apis(names: Iterable[str]) -> frozenset[int] | None:
    """API names (or numeric keys) -> api keys; None when no name is given (every API).

    Raises ValueError naming the unknown API, so `run` refuses a typo before it starts."""
    keys: set[int] = set()
    for name in names:
        try:
            keys.add(codec.api_key_of(name))
        except (ValueError, codec.CodecError):
            raise ValueError(f"unknown API {name!r} for --capture-api (a name such as "
                             "JoinGroup, or a numeric key)") from None
    return frozenset(keys) if keys else None


class FrameCapture:
    """The writer the pipeline taps (`proxy.pipeline.host.FrameTap`): one per server."""

    def __init__(self, path: Path, apis: Iterable[str] = (), max_bytes: int = MAX_BYTES,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.keys = resolve_apis(apis)
        self.max_bytes = max_bytes
        self.written = len(MAGIC)
        self.frames = 0
        self.stopped: str | None = None  # why capturing ended early (full, disk error)
        self._clock = clock
        self._file: BinaryIO | None = open(self.path, "wb", buffering=BUFFER_BYTES)  # noqa: SIM115
        self._file.write(MAGIC)
        log.info("capture_started", path=str(self.path), max_bytes=max_bytes,
                 apis=sorted(codec.api_label(k) for k in self.keys) if self.keys else "all")

    def request(self, conn_id: int, api_key: int, api_version: int, frame: bytes) -> None:
        self._write(Direction.CLIENT_TO_BROKER, conn_id, api_key, api_version, frame)

    def response(self, conn_id: int, api_key: int, api_version: int, frame: bytes) -> None:
        self._write(Direction.BROKER_TO_CLIENT, conn_id, api_key, api_version, frame)

    def _write(self, direction: Direction, conn_id: int, api_key: int, api_version: int,
               frame: bytes) -> None:
        out = self._file
        if out is None or (self.keys is not None and api_key not in self.keys):
            return
        if api_key == SASL_AUTHENTICATE:
            redacted = redact_sasl(direction, api_version, frame)
            if redacted is None:
                return
            frame = redacted
        size = RECORD.size + len(frame)
        if self.written + size > self.max_bytes:
            self._stop("full", f"{self.path} reached its cap of {self.max_bytes} bytes "
                       f"after {self.frames} frames; later frames are not captured")
            return
        try:
            out.write(RECORD.pack(self._clock(), direction, conn_id & 0xFFFFFFFF, api_key,
                                  api_version, len(frame)))
            out.write(frame)
        except OSError as exc:
            self._stop("write_failed", f"writing {self.path} failed: {exc}")
            return
        self.written += size
        self.frames += 1

    def _stop(self, reason: str, detail: str) -> None:
        self.stopped = reason
        log.warning("capture_stopped", reason=reason, detail=detail)
        self.close()

    def flush(self) -> None:
        """Push buffered frames to the file (the server's sweep calls this)."""
        if self._file is not None:
            try:
                self._file.flush()
            except OSError as exc:
                self._stop("write_failed", f"writing {self.path} failed: {exc}")

    def close(self) -> None:
        out, self._file = self._file, None
        if out is None:
            return
        try:
            out.close()
        except OSError as exc:
            log.warning("capture_stopped", reason="write_failed",
                        detail=f"closing {self.path} failed: {exc}")
        log.info("capture_closed", path=str(self.path), frames=self.frames,
                 bytes=self.written)


def redact_sasl(direction: Direction, api_version: int, frame: bytes) -> bytes | None:
    """A SaslAuthenticate frame (size prefix included) with its `auth_bytes` replaced by a
    note of their length; None when the frame cannot be decoded (then it is not captured)."""
    view = memoryview(frame)[4:]
    try:
        if direction is Direction.CLIENT_TO_BROKER:
            hsize = codec.parse_request_header(view).header_size
            if hsize is None:
                return None
            kind = codec.Direction.REQUEST
        else:
            _, hsize = codec.parse_response_header(view, SASL_AUTHENTICATE, api_version)
            kind = codec.Direction.RESPONSE
        body = codec.decode_body(SASL_AUTHENTICATE, api_version, kind, view[hsize:])
        secret = body.get("auth_bytes") or b""
        body["auth_bytes"] = f"[redacted: {len(secret)} bytes]".encode()
        payload = bytes(view[:hsize]) + codec.encode_body(SASL_AUTHENTICATE, api_version, kind,
                                                          body)
    except Exception:  # a frame we cannot re-encode is left out rather than kept whole
        return None
    return _I32.pack(len(payload)) + payload


def read_capture(path: Path | str) -> Iterator[CapturedFrame]:
    """Every frame of a capture file, in the order written.

    Raises CaptureFormatError for a file that is not a capture, or one that ends inside a
    record (the frames before it were yielded already)."""
    with open(path, "rb") as src:
        magic = src.read(len(MAGIC))
        if magic != MAGIC:
            raise CaptureFormatError(
                f"{path} is not a capture of `run --capture` (it does not start with "
                f"{MAGIC!r})")
        offset = len(MAGIC)
        while head := src.read(RECORD.size):
            if len(head) < RECORD.size:
                raise CaptureFormatError(f"{path} ends inside a record header at offset "
                                         f"{offset} (was the proxy killed mid-write?)")
            when, direction, conn, api_key, version, length = RECORD.unpack(head)
            frame = src.read(length)
            if len(frame) < length or direction not in (0, 1):
                raise CaptureFormatError(f"{path}: the record at offset {offset} is cut short "
                                         "or damaged (was the proxy killed mid-write?)")
            yield CapturedFrame(when, Direction(direction), conn, api_key, version, frame)
            offset += RECORD.size + length
