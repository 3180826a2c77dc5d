"""Zero-copy streaming of the rest of a cut-through frame, either way: socket -> pipe -> socket.

Why: profiles of both data paths show the proxy's CPU going to moving bytes, not to Python.
On the produce path (1 MB Produce requests streamed cut-through) the kernel copies each chunk
out of the client socket, the event loop copies it into a new `bytes` object, and the kernel
copies it again into the upstream socket; on the consume path (multi-megabyte Fetch responses)
60% of the samples were the read of the upstream socket and 28% the writes to the client.
Nothing in the proxy reads the body of a frame that is streamed cut-through (the decision was
taken on its header), so on Linux the body can go from socket to socket inside the kernel with
splice(2) through a pipe, and the proxy only wakes up to move the next piece.

One `Splicer` serves both directions; a `Route` names them: `TO_UPSTREAM` (a large request,
client socket -> upstream socket) and `TO_CLIENT` (a large response, upstream socket -> client
socket). The logic is the same either way; what differs (which side an error names, what an
EOF mid-frame is called, when the bytes are counted) is the route's or the caller's.

Invariants, as for the `bytes` path: the bytes reaching the destination are the source's bytes
(byte-exact), exactly `count` of them (the frame boundary is never crossed: what follows is
read in order, by the hand-read of the next head or by the transport), after whatever the
destination's transport had buffered (order), and at most one pipe's worth is in flight,
waiting for the destination socket to accept it (bounded; while the destination is slow the
source socket is not read: back-pressure).

The transports own the sockets, so the splicer works on duplicates of their descriptors (the
event loop refuses readers on a transport's own descriptor); the source transport's reading is
paused by the caller for as long as the splicer runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
from collections.abc import Callable
from dataclasses import dataclass

AVAILABLE = hasattr(os, "splice") and hasattr(os, "SPLICE_F_NONBLOCK")
# Below this many bytes left to stream, the set-up (pipe, two dup'd descriptors) is not worth it.
MIN_BYTES = 128 * 1024
# After a splice, the next frame's head is read by hand, this much: enough for its header and
# the cut-through decision, so that a following large frame is spliced from its start instead
# of the transport reading (and copying) a large first chunk of it.
HEAD_BYTES = 1024
PIPE_BYTES = 1024 * 1024  # asked for; the kernel may grant less (fs.pipe-max-size)
_FLAGS = getattr(os, "SPLICE_F_MOVE", 0) | getattr(os, "SPLICE_F_NONBLOCK", 0)
_UNSUPPORTED = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EBADF}
# `on_error` reason: splice(2) refused before any byte moved; the caller's transport carries on.
REFUSED = "splice_refused"


_refused = False  # splice(2) refused once (e.g. a sandboxed kernel): do not try again


def splice_supported() -> bool:
    return AVAILABLE and not _refused


class SpliceUnsupported(Exception):
    """No splicer for these descriptors (dup or pipe failed): use the `bytes` path."""


@dataclass
class Route:
    """One direction of splicing: how its sides are named in the reasons a splice ends with,
    and how many bytes it has moved in this process, every proxy in it together (what shows
    that the fast path is taken: tests and benchmarks read it; per connection,
    `Splicer.moved`)."""

    source: str  # "client" or "upstream": an error reading it ends with f"{source}_closed"
    dest: str  # likewise for an error writing the other side
    eof_reason: str  # the source's EOF before the frame's end
    moved: int = 0


TO_UPSTREAM = Route("client", "upstream", "truncated_frame")
# The broker closing mid-response is what the transport path calls it too.
TO_CLIENT = Route("upstream", "client", "upstream_closed")


class Splicer:
    """Moves `count` bytes from the source socket to the destination socket (`begin`), then
    calls `on_done`. One per connection and direction, kept for the next large frame: the pipe
    and the duplicated descriptors are set up once, not per frame.

    `dest_pending()` is the destination transport's own write-buffer size: bytes written
    through the transport before the splice started must reach the socket first (order).
    `on_taken(n)` reports bytes taken from the source, `on_delivered(n)` bytes handed to the
    destination socket (each caller counts where its transport path counts: a request when it
    is read, a response when it is written). `on_error(reason, detail)`: `REFUSED` (nothing
    moved, splice(2) is not for these sockets: carry on through the transport), else the
    connection cannot go on: the route's `eof_reason` (the source's EOF mid-frame),
    f"{source}_closed", f"{dest}_closed" or "internal_error". The splicer is closed by then.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, route: Route, source_fd: int,
                 dest_fd: int, dest_pending: Callable[[], int],
                 on_taken: Callable[[int], None], on_delivered: Callable[[int], None],
                 on_done: Callable[[], None], on_error: Callable[[str, str], None]) -> None:
        self.loop = loop
        self.route = route
        self.left = 0  # bytes still to take from the source socket
        self.in_pipe = 0  # bytes taken, not yet accepted by the destination socket
        self.moved = 0  # bytes taken over the splicer's life
        self._pending = dest_pending
        self._on_taken = on_taken
        self._on_delivered = on_delivered
        self._on_done = on_done
        self._on_error = on_error
        self._on_head: Callable[[bytes], None] | None = None
        self._reading = self._writing = False
        self.closed = False
        self._sfd = self._dfd = self._pr = self._pw = -1
        try:
            self._sfd = os.dup(source_fd)
            self._dfd = os.dup(dest_fd)
            self._pr, self._pw = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            self.close()
            raise SpliceUnsupported(str(exc)) from exc
        set_size = getattr(fcntl, "F_SETPIPE_SZ", None)
        self.pipe_bytes = 65536
        if set_size is not None:
            with contextlib.suppress(OSError):
                self.pipe_bytes = fcntl.fcntl(self._pw, set_size, PIPE_BYTES)

    @property
    def active(self) -> bool:
        return bool(self.left or self.in_pipe) and not self.closed

    @property
    def owns_source(self) -> bool:
        """Streaming, or waiting to read the next head: the source transport must not read."""
        return self.active or (self._on_head is not None and not self.closed)

    @property
    def waiting_for_dest(self) -> bool:
        """Bytes in the pipe wait for the destination socket (or its transport's buffer) to
        take them; the source is not read meanwhile (back-pressure)."""
        return self._writing and not self.closed

    def begin(self, count: int) -> None:
        """Stream the next `count` source bytes; move what can be moved now. A refusal of
        splice(2) is reported through `on_error(REFUSED, ...)` before this returns."""
        self._on_head = None
        self.left = count
        self._step()

    @property
    def awaiting_head(self) -> bool:
        return self._on_head is not None and not self.closed

    def cancel_head(self) -> None:
        """Stop waiting for the next head (reading is paused for another reason now)."""
        if self._on_head is not None:
            self._on_head = None
            if not self.active:
                self._idle()

    def await_head(self, on_head: Callable[[bytes], None]) -> None:
        """Once the source socket is readable, read at most `HEAD_BYTES` and pass them on
        (b"" at EOF or on an error: the transport, resumed, will see it for itself)."""
        self._on_head = on_head
        self._want_read()

    def _head_ready(self, on_head: Callable[[bytes], None]) -> None:
        try:
            data = os.read(self._sfd, HEAD_BYTES)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        self._on_head = None
        try:
            on_head(data)  # may `begin` the next stream: then the reader stays (no epoll churn)
        except Exception as exc:  # a bug of ours must cost one connection, not the proxy
            self._fail("internal_error", repr(exc))
            return
        if not self.owns_source:
            self._idle()

    def _on_ready(self) -> None:
        """Event-loop callback: nothing may escape into the loop (`_step` catches)."""
        if self._on_head is not None:
            self._head_ready(self._on_head)
            return
        self._step()

    def _step(self) -> None:
        if self.closed:
            return
        try:
            while True:
                if self.in_pipe:
                    if not self._pipe_to_dest():
                        return
                elif not self.left:
                    self._finish()
                    return
                elif not self._source_to_pipe():
                    return
        except Exception as exc:  # a bug of ours must cost one connection, not the proxy
            self._fail("internal_error", repr(exc))

    def _pipe_to_dest(self) -> bool:
        """Move the pipe's bytes on to the destination socket; False: wait (or failed)."""
        if self._pending():  # the transport's buffered bytes go first
            self._want_write()
            return False
        try:
            n = os.splice(self._pr, self._dfd, self.in_pipe, flags=_FLAGS)
        except BlockingIOError:
            self._want_write()
            return False
        except OSError as exc:
            self._fail(f"{self.route.dest}_closed", repr(exc))
            return False
        self.in_pipe -= n
        self._on_delivered(n)
        return True

    def _source_to_pipe(self) -> bool:
        """Take the next piece from the source socket into the pipe; False: wait (or failed,
        or the source's EOF cut the frame short)."""
        try:
            n = os.splice(self._sfd, self._pw, min(self.left, self.pipe_bytes), flags=_FLAGS)
        except BlockingIOError:
            self._want_read()
            return False
        except OSError as exc:
            self._fail_source(exc)
            return False
        if n == 0:
            self._fail(self.route.eof_reason, f"{self.left} bytes short at EOF")
            return False
        self.left -= n
        self.in_pipe += n
        self.moved += n
        self.route.moved += n
        self._on_taken(n)
        return True

    def _fail_source(self, exc: OSError) -> None:
        if not self.moved and exc.errno in _UNSUPPORTED:
            global _refused
            _refused = True
            self._fail(REFUSED, str(exc))
        else:
            self._fail(f"{self.route.source}_closed", repr(exc))

    def _fail(self, reason: str, detail: str) -> None:
        self.close()
        self._on_error(reason, detail)

    def _want_read(self) -> None:
        if self._writing:
            self.loop.remove_writer(self._dfd)
            self._writing = False
        if not self._reading:
            self.loop.add_reader(self._sfd, self._on_ready)
            self._reading = True

    def _want_write(self) -> None:
        if self._reading:
            self.loop.remove_reader(self._sfd)
            self._reading = False
        if not self._writing:
            self.loop.add_writer(self._dfd, self._on_ready)
            self._writing = True

    def _finish(self) -> None:
        """Idle until the next `begin`: nothing watched, so the transport reads again."""
        self._idle()
        self._on_done()

    def _idle(self) -> None:
        if self._reading:
            self.loop.remove_reader(self._sfd)
        if self._writing:
            self.loop.remove_writer(self._dfd)
        self._reading = self._writing = False

    def close(self) -> None:
        """Stop watching and release the pipe and the duplicated descriptors (idempotent)."""
        if self.closed:
            return
        self.closed = True
        self._idle()
        for fd in (self._sfd, self._dfd, self._pr, self._pw):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._sfd = self._dfd = self._pr = self._pw = -1
