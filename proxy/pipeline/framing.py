"""Kafka frame boundaries, and the one field the hot path reads undecoded (Produce acks); no I/O.

Every Kafka message on the wire is a big-endian int32 size followed by that many bytes. The
reader yields each frame *with* its size prefix so an unchanged frame is forwarded as the very
same bytes object (invariant 1) without re-concatenation. Limits are enforced before anything
is allocated from an untrusted length (invariant 5).
"""

from __future__ import annotations

import struct

from kafka_chaos_proxy.codec import ApiKey

_INT32 = struct.Struct(">i")
_INT16 = struct.Struct(">h")

PRODUCE = ApiKey.PRODUCE
FETCH = ApiKey.FETCH
METADATA = ApiKey.METADATA
SASL_HANDSHAKE = ApiKey.SASL_HANDSHAKE


class FrameError(Exception):
    """Input that cannot be a Kafka frame; `reason` is the metric label."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


# Bytes of an incomplete frame's start kept apart for `FrameReader.partial`: enough for the
# request header (client ids are short in practice) and a Produce transactional id, which is
# all the cut-through decision reads; small, so keeping it costs a bounded copy per chunk.
HEAD_BYTES = 16 * 1024


class FrameReader:
    """Splits a byte stream into size-prefixed frames, in time linear in the bytes fed.

    Copies are what a Python proxy pays for on large frames, so the reader keeps them to one:
    chunks of an incomplete frame are only collected in a list and joined once the frame is
    complete (a frame that arrives in one chunk is sliced out of it, and a chunk that is
    exactly one frame is returned as the same object). The first `HEAD_BYTES` of an incomplete
    frame are also kept on their own, so `partial` can show them without joining the rest:
    joining on every chunk made a 100 MiB frame cost seconds of CPU (quadratic), a stall for
    every other connection on the loop (invariant 5).
    """

    __slots__ = ("_have", "_head", "_need", "_parts", "max_frame_bytes")

    def __init__(self, max_frame_bytes: int) -> None:
        self._parts: list[bytes] = []
        self._have = 0  # bytes held in _parts
        self._need = 0  # bytes needed before it is worth parsing again
        self._head = b""  # the first (up to HEAD_BYTES) bytes held in _parts
        self.max_frame_bytes = max_frame_bytes

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held back (non-zero at EOF means truncation)."""
        return self._have

    def partial(self, min_total: int = 0) -> tuple[int, bytes] | None:
        """(full frame length, its first bytes: up to `HEAD_BYTES`) of the incomplete frame,
        once its first 8 bytes (size and, for a response, correlation id) are in and the frame
        is at least `min_total` bytes long; None otherwise. Costs no copy."""
        need = self._need
        if self._have < 8 or need <= self._have or need < min_total:
            return None
        return need, self._head

    def take_partial(self) -> bytes:
        """Hand the incomplete frame's bytes to the caller (who streams the rest itself)."""
        parts = self._parts
        held = parts[0] if len(parts) == 1 else b"".join(parts)
        self._parts = []
        self._have = 0
        self._need = 0
        self._head = b""
        return held

    def feed(self, data: bytes) -> list[bytes]:
        if self._parts:
            self._parts.append(data)
            self._have += len(data)
            head = self._head
            if len(head) < HEAD_BYTES:
                self._head = head + data[:HEAD_BYTES - len(head)]
            if self._have < self._need:
                return []
            data = b"".join(self._parts)
            self._parts = []
            self._have = 0
            self._head = b""
        return self._split(data)

    def _split(self, data: bytes) -> list[bytes]:
        frames: list[bytes] = []
        n = len(data)
        pos = 0
        limit = self.max_frame_bytes
        need = 4
        while n - pos >= 4:
            (size,) = _INT32.unpack_from(data, pos)
            if size < 0:
                raise FrameError("negative_length", str(size))
            if size > limit:
                raise FrameError("frame_too_large", f"{size} > {limit}")
            end = pos + 4 + size
            if end > n:
                need = 4 + size
                break
            frames.append(data[pos:end])
            pos = end
        if pos < n:
            rest = bytes(data[pos:] if pos else data)
            self._parts = [rest]
            self._have = len(rest)
            self._need = need
            self._head = rest[:HEAD_BYTES] if len(rest) > HEAD_BYTES else rest
        return frames


def read_uvarint(data: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    for _ in range(5):
        if pos >= len(data):
            raise FrameError("truncated_varint")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
    raise FrameError("bad_varint")


def produce_acks(frame: bytes, body_offset: int, api_version: int, flexible: bool,
                 end: int | None = None) -> int:
    """The `acks` of a Produce request without decoding it.

    acks is the first field up to v2 and follows the nullable transactional_id from v3 on
    (a compact string from the first flexible version, v9). `end`: where the frame ends in
    `frame` when that holds more than one (a received chunk).
    """
    pos = body_offset
    if api_version >= 3:
        if flexible:
            n, pos = read_uvarint(frame, pos)
            pos += max(n - 1, 0)
        else:
            (n,) = _INT16.unpack_from(frame, pos)
            pos += 2 + max(n, 0)
    if pos + 2 > (len(frame) if end is None else end):
        raise FrameError("short_produce")
    return int(_INT16.unpack_from(frame, pos)[0])


def with_size(payload: bytes) -> bytes:
    """Prefix a frame payload with its size."""
    return _INT32.pack(len(payload)) + payload
