"""Helpers for the tests of the splice fast path (unit, against the scripted upstream, and
integration, against a real broker): a client that reads slowly, the proxy's sockets of one
connection kept small, frames cut out of a byte stream, splice(2) refused, bounded waits.

Why the sockets are kept small: loopback TCP buffers autotune to megabytes (tcp_rmem up to
32 MiB on some kernels), so a ~10 MB response could sit in the kernel whole and a slow client
would never make the splice wait; with them small, it must.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

import pytest

from kafka_chaos_proxy.proxy.pipeline import splice
from kafka_chaos_proxy.proxy.pipeline.connection import Connection
from tests.support.wire_fakes import Client

WAIT_S = 30.0  # a bound on every wait (a loaded machine is slow, never this slow)


async def until(cond: Callable[[], bool], seconds: float = WAIT_S) -> None:
    deadline = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


async def slow_client(address: tuple[str, int]) -> tuple[Client, int]:
    """A raw client whose socket holds little and that reads only when told (its stream
    reader pauses at 32 KiB), and its local port (how the proxy knows the connection)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, address)
    reader, writer = await asyncio.open_connection(sock=sock, limit=16384)
    return Client(reader, writer), sock.getsockname()[1]


def shrink_sockets(conn: Connection) -> None:
    """The proxy's client socket smaller than one transport read (the start of a large
    answer, written through the transport, is still in its buffer when the splice begins) and
    its upstream socket small (a broker held back by the proxy feels it). Run on the proxy's
    loop."""
    assert conn.client is not None and conn.upstream is not None
    conn.client.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    conn.upstream.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF,
                                                      32768)


def held(conn: Connection) -> int:
    """Bytes of responses the proxy holds for a connection: its client transport's buffer,
    the upstream frame reader, the response splicer's pipe. Run on the proxy's loop."""
    assert conn.client is not None
    s = conn.response_splicer
    return (conn.client.get_write_buffer_size() + conn.ureader.pending
            + (s.in_pipe if s is not None else 0))


def complete_frames(data: bytes) -> list[bytes]:
    """The complete size-prefixed frames at the start of `data`."""
    out, pos = [], 0
    while pos + 4 <= len(data):
        (size,) = struct.unpack_from(">i", data, pos)
        if pos + 4 + size > len(data):
            break
        out.append(data[pos:pos + 4 + size])
        pos += 4 + size
    return out


def correlation_ids(frames: list[bytes]) -> list[int]:
    return [struct.unpack_from(">i", f, 4)[0] for f in frames]


def refuse_splice(monkeypatch: pytest.MonkeyPatch) -> None:
    """splice(2) refuses every descriptor (as a kernel or sandbox without it would), and has
    not been refused yet in this process (`splice._refused`, put back after the test)."""
    def refuse(*args: Any, **kwargs: Any) -> int:
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(splice.os, "splice", refuse)
    monkeypatch.setattr(splice, "_refused", False)


def reset_on_close(client: Client) -> None:
    """Close the client's socket with a reset (SO_LINGER 0): gone mid-response."""
    sock = client.writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.writer.transport.abort()
