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

ProtocolFactory = Callable[[], asyncio.Protocol]


def bind_socket(host: str, port: int, backlog: int = 1024) -> socket.socket:
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
    def __init__(self, host: str, factory: Callable[[int], ProtocolFactory]) -> None:
        self.host = host
        self._factory = factory
        self.listeners: dict[int, Listener] = {}

    def bind(self, node_id: int, port: int) -> Listener:
        """Bind now, serve as soon as the loop runs again."""
        existing = self.listeners.get(node_id)
        if existing is not None:
            return existing
        sock = bind_socket(self.host, port)
        listener = Listener(node_id, sock, sock.getsockname()[1])
        loop = asyncio.get_running_loop()
        listener.task = loop.create_task(
            loop.create_server(self._factory(node_id), sock=sock, start_serving=True))
        listener.task.add_done_callback(functools.partial(self._served, listener))
        self.listeners[node_id] = listener
        return listener

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
