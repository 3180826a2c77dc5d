"""Bounds on what clients can make the proxy hold (invariant 5): buffered bytes, connections.

Kept out of the hot path on purpose: the buffer budget is settled once per received chunk
(only when the bytes held change), admission once per accepted connection, and the timeouts
by a sweep the server runs about once a second (`ConnectionCore.sweep`), not by timers per
frame.
"""

from __future__ import annotations

import contextlib
import os

from kafka_chaos_proxy.proxy.config import ProxyConfig

# Reasons a connection is refused on accept (`kcp_connection_refusals_total{reason}`).
MAX_CONNECTIONS = "max_connections"
MAX_CONNECTIONS_PER_IP = "max_connections_per_ip"
FD_LIMIT = "fd_limit"
# Reasons the sweep closes a connection (`kcp_connection_closes_total{reason}`).
IDLE_TIMEOUT = "idle_timeout"
REQUEST_TIMEOUT = "request_timeout"
HANDSHAKE_TIMEOUT = "handshake_timeout"
# How often the server sweeps its connections for timeouts: the slack of every timeout.
SWEEP_INTERVAL_S = 1.0


class BufferBudget:
    """Bytes of incomplete client frames held in memory, summed over the whole process.

    Each connection adds what its frame reader holds when that changes and gives all of it
    back when it closes (`ConnectionCore._account_held`, `ConnectionCore.close`), so the sum
    goes back to zero when every frame is complete or its connection gone. One per process,
    as memory is; each server holds it against its own `max_buffered_bytes_total`.
    """

    __slots__ = ("total",)

    def __init__(self) -> None:
        self.total = 0


BUFFERED = BufferBudget()


def descriptor_cap(max_connections: int) -> int | None:
    """Connections the descriptor limit (RLIMIT_NOFILE) leaves room for, when fewer than
    `max_connections`; None when it is no tighter (or unknown).

    Why: past the limit accept(2) fails with EMFILE, and uvloop (libuv) then accepts and drops
    the connections it cannot keep without a word in any log. Refusing at this cap instead
    keeps a descriptor free for each admitted connection's upstream socket and says so
    (`kcp_connection_refusals_total{reason="fd_limit"}` and a log line).
    """
    soft = None
    with contextlib.suppress(ImportError, OSError, ValueError):
        import resource

        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            return None
    if soft is None:
        return None
    in_use = 0
    with contextlib.suppress(OSError):
        in_use = len(os.listdir("/proc/self/fd"))  # Linux; elsewhere the spare must do
    spare = min(256, soft // 8)  # listeners bound later, the admin API, event streams
    cap = max((soft - in_use - spare) // 2, 0)  # two per connection: client, upstream
    return cap if cap < max_connections else None


class Admission:
    """Connection counts of one server, total and by client IP, checked on accept."""

    __slots__ = ("_by_ip", "_config", "_open", "fd_cap")

    def __init__(self, config: ProxyConfig, fd_cap: int | None = None) -> None:
        self._config = config
        self.fd_cap = fd_cap  # `descriptor_cap`, set by the server when it starts
        self._open = 0
        self._by_ip: dict[str, int] = {}

    def admit(self, ip: str) -> str | None:
        """Count a new connection from `ip`; or the reason it is refused (nothing counted)."""
        cfg = self._config
        if self._open >= cfg.max_connections:
            return MAX_CONNECTIONS
        if self.fd_cap is not None and self._open >= self.fd_cap:
            return FD_LIMIT
        per_ip = cfg.max_connections_per_ip
        n = self._by_ip.get(ip, 0)
        if per_ip is not None and n >= per_ip:
            return MAX_CONNECTIONS_PER_IP
        self._open += 1
        self._by_ip[ip] = n + 1
        return None

    def release(self, ip: str) -> None:
        """An admitted connection closed."""
        self._open -= 1
        n = self._by_ip.get(ip, 0) - 1
        if n > 0:
            self._by_ip[ip] = n
        else:
            self._by_ip.pop(ip, None)

    @property
    def open(self) -> int:
        return self._open

    def from_ip(self, ip: str) -> int:
        return self._by_ip.get(ip, 0)
