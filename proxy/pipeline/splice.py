"""Zero-copy streaming of a cut-through request body: client socket -> pipe -> upstream socket.

Why: profiles of the produce path (1 MB Produce requests streamed cut-through) show the proxy's
CPU going to moving bytes, not to Python: the kernel copies each chunk out of the client socket,
the event loop copies it into a new `bytes` object, and the kernel copies it again into the
upstream socket. Nothing in the proxy reads the body of a request that is streamed cut-through
(the decision was taken on its header), so on Linux the body can go from socket to socket inside
the kernel with splice(2) through a pipe, and the proxy only wakes up to move the next piece.

Invariants, as for the `bytes` path: the bytes reaching the broker are the client's bytes
(byte-exact), exactly `count` of them (the frame boundary is never crossed: what follows is
read in order, by the hand-read of the next head or by the transport), and at most one pipe's
worth is in flight, waiting for the upstream socket to accept it (bounded; while the broker is
slow the client socket is not read: back-pressure).

The transports own the sockets, so the splicer works on duplicates of their descriptors (the
event loop refuses readers on a transport's own descriptor); the client transport's reading is
paused by the caller for as long as the splicer runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
from collections.abc import Callable

AVAILABLE = hasattr(os, "splice") and hasattr(os, "SPLICE_F_NONBLOCK")
# Below this many bytes left to stream, the set-up (pipe, two dup'd descriptors) is not worth it.
MIN_BYTES = 128 * 1024
# After a splice, the next request's head is read by hand, this much: enough for its header
# and the cut-through decision, so that a following large request is spliced from its start
# instead of the transport reading (and copying) a large first chunk of it.
HEAD_BYTES = 1024
PIPE_BYTES = 1024 * 1024  # asked for; the kernel may grant less (fs.pipe-max-size)
_FLAGS = getattr(os, "SPLICE_F_MOVE", 0) | getattr(os, "SPLICE_F_NONBLOCK", 0)
_UNSUPPORTED = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EBADF}


_refused = False  # splice(2) refused once (e.g. a sandboxed kernel): do not try again


def splice_supported() -> bool:
    return AVAILABLE and not _refused


class SpliceUnsupported(Exception):
    """splice(2) refused these descriptors before any byte moved: use the `bytes` path."""


class RequestSplicer:
    """Moves `count` bytes from the client socket to the upstream socket (`begin`), then calls
    `on_done`. One per connection, kept for its next large request: the pipe and the
    duplicated descriptors are set up once, not per request.

    `upstream_pending()` is the upstream transport's own write-buffer size: bytes written
    through the transport before the splice started must reach the socket first (order).
    `on_bytes(n)` reports progress (metrics); `on_error(reason, detail)` ends the connection:
    reason "truncated_frame" (client EOF mid-frame), "client_closed" or "upstream_closed".
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, client_fd: int, upstream_fd: int,
                 upstream_pending: Callable[[], int],
                 on_bytes: Callable[[int], None], on_done: Callable[[], None],
                 on_error: Callable[[str, str], None]) -> None:
        self.loop = loop
        self.left = 0  # bytes still to take from the client socket
        self.in_pipe = 0  # bytes taken, not yet accepted by the upstream socket
        self.moved = 0
        self._pending = upstream_pending
        self._on_bytes = on_bytes
        self._on_done = on_done
        self._on_error = on_error
        self._on_head: Callable[[bytes], None] | None = None
        self._reading = self._writing = False
        self.closed = False
        self._cfd = self._ufd = self._pr = self._pw = -1
        try:
            self._cfd = os.dup(client_fd)
            self._ufd = os.dup(upstream_fd)
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
    def owns_client(self) -> bool:
        """Streaming, or waiting to read the next head: the client transport must not read."""
        return self.active or (self._on_head is not None and not self.closed)

    def begin(self, count: int) -> None:
        """Stream the next `count` client bytes; move what can be moved now. Raises
        `SpliceUnsupported` if splice(2) refuses (the splicer is closed then)."""
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
        """Once the client socket is readable, read at most `HEAD_BYTES` and pass them on
        (b"" at EOF or on an error: the transport, resumed, will see it for itself)."""
        self._on_head = on_head
        self._want_read()

    def _head_ready(self, on_head: Callable[[bytes], None]) -> None:
        try:
            data = os.read(self._cfd, HEAD_BYTES)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        self._on_head = None
        try:
            on_head(data)  # may `begin` the next stream: then the reader stays (no epoll churn)
        except Exception as exc:  # a bug of ours must cost one connection, not the proxy
            self.close()
            self._on_error("internal_error", repr(exc))
            return
        if not self.owns_client:
            self._idle()

    def _on_ready(self) -> None:
        """Event-loop callback: nothing may escape into the loop."""
        if self._on_head is not None:
            self._head_ready(self._on_head)
            return
        try:
            self._step()
        except SpliceUnsupported as exc:  # refused only now: the connection cannot go on
            self._on_error("internal_error", f"splice refused: {exc}")

    def _step(self) -> None:
        if self.closed:
            return
        try:
            while True:
                if self.in_pipe:
                    if not self._pipe_to_upstream():
                        return
                elif not self.left:
                    self._finish()
                    return
                elif not self._client_to_pipe():
                    return
        except SpliceUnsupported:
            raise
        except Exception as exc:  # a bug of ours must cost one connection, not the proxy
            self.close()
            self._on_error("internal_error", repr(exc))

    def _pipe_to_upstream(self) -> bool:
        """Move the pipe's bytes on to the upstream socket; False: wait (or failed)."""
        if self._pending():  # the transport's buffered bytes go first
            self._want_write()
            return False
        try:
            n = os.splice(self._pr, self._ufd, self.in_pipe, flags=_FLAGS)
        except BlockingIOError:
            self._want_write()
            return False
        except OSError as exc:
            self._fail_upstream(exc)
            return False
        self.in_pipe -= n
        return True

    def _client_to_pipe(self) -> bool:
        """Take the next piece from the client socket into the pipe; False: wait (or failed,
        or the client's EOF cut the frame short)."""
        try:
            n = os.splice(self._cfd, self._pw, min(self.left, self.pipe_bytes), flags=_FLAGS)
        except BlockingIOError:
            self._want_read()
            return False
        except OSError as exc:
            self._fail_client(exc)
            return False
        if n == 0:
            self.close()
            self._on_error("truncated_frame", f"{self.left} bytes short at EOF")
            return False
        self.left -= n
        self.in_pipe += n
        self.moved += n
        self._on_bytes(n)
        return True

    def _fail_client(self, exc: OSError) -> None:
        if not self.moved and exc.errno in _UNSUPPORTED:
            global _refused
            _refused = True
            self.close()
            raise SpliceUnsupported(str(exc))
        self.close()
        self._on_error("client_closed", repr(exc))

    def _fail_upstream(self, exc: OSError) -> None:
        self.close()
        self._on_error("upstream_closed", repr(exc))

    def _want_read(self) -> None:
        if self._writing:
            self.loop.remove_writer(self._ufd)
            self._writing = False
        if not self._reading:
            self.loop.add_reader(self._cfd, self._on_ready)
            self._reading = True

    def _want_write(self) -> None:
        if self._reading:
            self.loop.remove_reader(self._cfd)
            self._reading = False
        if not self._writing:
            self.loop.add_writer(self._ufd, self._on_ready)
            self._writing = True

    def _finish(self) -> None:
        """Idle until the next `begin`: nothing watched, so the transport reads again."""
        self._idle()
        self._on_done()

    def _idle(self) -> None:
        if self._reading:
            self.loop.remove_reader(self._cfd)
        if self._writing:
            self.loop.remove_writer(self._ufd)
        self._reading = self._writing = False

    def close(self) -> None:
        """Stop watching and release the pipe and the duplicated descriptors (idempotent)."""
        if self.closed:
            return
        self.closed = True
        self._idle()
        for fd in (self._cfd, self._ufd, self._pr, self._pw):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._cfd = self._ufd = self._pr = self._pw = -1
