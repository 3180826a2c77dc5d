"""Listening sockets: the bootstrap listener and one per broker node.

Node listeners are bound synchronously (a plain socket, bind + listen) so that the port exists
and the kernel already queues connections the moment the rewriter needs it, i.e. before the
response that names the broker reaches the client; asyncio starts serving the socket right
after. Port 0 gives an ephemeral port (tests run many proxies side by side).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

import structlog

from kafka_chaos_proxy.proxy import metrics
from kafka_chaos_proxy.proxy.config import (
    DEFAULT_LISTEN_BACKLOG,
    DEFAULT_MAX_BROKERS,
    ListenerLimitError,
)

ProtocolFactory = Callable[[], asyncio.Protocol]
BOOTSTRAP_NODE = -1
_log = structlog.get_logger("kcp.listeners")


def bind_socket(host: str, port: int, backlog: int = DEFAULT_LISTEN_BACKLOG) -> socket.socket:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, socktype, proto, _, addr = infos[0]
    sock = socket.socket(family, socktype, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


@dataclass
class Listener:
    node_id: int  # -1: bootstrap
    sock: socket.socket
    port: int
    server: asyncio.Server | None = None
    task: asyncio.Task[asyncio.Server] | None = None


class ListenerSet:
    """The bootstrap listener plus at most `max_brokers` broker listeners.

    A refusal (over the bound, a port out of range) raises `ListenerLimitError`, is logged and
    counted in `kcp_listener_refusals_total`: the rewriter then closes the connection that
    would have learned the broker (a real address must never leak instead).
    """

    def __init__(self, host: str, factory: Callable[[int], ProtocolFactory],
                 max_brokers: int = DEFAULT_MAX_BROKERS,
                 backlog: int = DEFAULT_LISTEN_BACKLOG) -> None:
        self.host = host
        self._factory = factory
        self.max_brokers = max_brokers
        self.backlog = backlog
        self.listeners: dict[int, Listener] = {}

    def bind(self, node_id: int, port: int) -> Listener:
        """Bind now, serve as soon as the loop runs again."""
        existing = self.listeners.get(node_id)
        if existing is not None:
            return existing
        brokers = sum(1 for n in self.listeners if n != BOOTSTRAP_NODE)
        if node_id != BOOTSTRAP_NODE and brokers >= self.max_brokers:
            self._refuse("max_brokers", node_id,
                         f"broker {node_id} not given a listener: {brokers} brokers already "
                         f"(--max-brokers {self.max_brokers})")
        if not 0 <= port <= 65535:
            self._refuse("bad_port", node_id, f"broker {node_id}: port {port} is out of range")
        sock = bind_socket(self.host, port, self.backlog)
        listener = Listener(node_id, sock, sock.getsockname()[1])
        loop = asyncio.get_running_loop()
        # create_server listens again with its own default backlog (100) unless told.
        listener.task = loop.create_task(loop.create_server(
            self._factory(node_id), sock=sock, start_serving=True, backlog=self.backlog))
        listener.task.add_done_callback(functools.partial(self._served, listener))
        self.listeners[node_id] = listener
        return listener

    @staticmethod
    def _refuse(reason: str, node_id: int, message: str) -> NoReturn:
        metrics.listener_refusals_total.labels(reason).inc()
        _log.warning("listener_refused", node=node_id, reason=reason, detail=message)
        raise ListenerLimitError(message)

    @staticmethod
    def _served(listener: Listener, task: asyncio.Task[asyncio.Server]) -> None:
        if not task.cancelled() and task.exception() is None:
            listener.server = task.result()

    async def wait_serving(self) -> None:
        tasks = [li.task for li in self.listeners.values() if li.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self) -> None:
        """Stop accepting on every listener (open connections are not touched)."""
        await self.wait_serving()
        for li in self.listeners.values():
            if li.server is not None:
                li.server.close()
            else:
                with contextlib.suppress(OSError):
                    li.sock.close()

    async def wait_closed(self) -> None:
        for li in self.listeners.values():
            if li.server is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(li.server.wait_closed(), 1.0)
