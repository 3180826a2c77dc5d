"""A ProxyServer on its own uvloop thread, for tests, benchmarks and embedding.

Blocking clients (kafka-python, confluent-kafka, a Java subprocess driven by the test) would
freeze a proxy sharing their event loop, so tests run the proxy on a private loop in a daemon
thread and talk to it through `call`. Start/stop are bounded in time.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import uvloop

from kafka_chaos_proxy.faults.decision import FaultDecider
from kafka_chaos_proxy.proxy.config import ProxyConfig
from kafka_chaos_proxy.proxy.exchange import ExchangeObserver
from kafka_chaos_proxy.proxy.pipeline.host import TriggerHooks
from kafka_chaos_proxy.proxy.server import EventSink, ProxyServer

T = TypeVar("T")


class EmbeddedProxy:
    def __init__(self, config: ProxyConfig, decider: FaultDecider | None = None,
                 observers: Iterable[ExchangeObserver] = (),
                 triggers: TriggerHooks | None = None,
                 fetch_event_sink: EventSink | None = None) -> None:
        self.config = config
        self._fetch_events = fetch_event_sink  # where Fetch sample events go (config.fetch_events)
        self._decider = decider
        self._observers = list(observers)
        self._triggers = triggers
        self.loop: asyncio.AbstractEventLoop | None = None
        self.server: ProxyServer | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None

    def start(self, timeout_s: float = 30.0) -> EmbeddedProxy:
        self._thread = threading.Thread(target=self._run, name="kcp-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise TimeoutError("proxy did not start")
        if self._error is not None:
            raise RuntimeError("proxy failed to start") from self._error
        return self

    def _run(self) -> None:
        uvloop.run(self._main())

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            self.server = ProxyServer(self.config, self._decider, self._observers,
                                      self._triggers, self._fetch_events)
            await self.server.start()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        await self._stop.wait()
        await self.server.stop(drain_timeout_s=1.0)

    @property
    def bootstrap_servers(self) -> str:
        assert self.server is not None
        return self.server.bootstrap_servers

    def call(self, fn: Callable[..., T], *args: Any, timeout_s: float = 10.0) -> T:
        """Run `fn(*args)` on the proxy's loop and return its result."""
        assert self.loop is not None
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                fut.set_result(fn(*args))
            except BaseException as exc:
                fut.set_exception(exc)

        self.loop.call_soon_threadsafe(run)
        return fut.result(timeout_s)

    def list_connections(self) -> list[dict[str, Any]]:
        assert self.server is not None
        return self.call(self.server.list_connections)

    def list_brokers(self) -> list[dict[str, Any]]:
        assert self.server is not None
        return self.call(self.server.list_brokers)

    def stop(self, timeout_s: float = 15.0) -> None:
        if self.loop is not None and self._stop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout_s)

    def __enter__(self) -> EmbeddedProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
