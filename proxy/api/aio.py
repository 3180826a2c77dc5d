"""The Python API for asyncio code: `AsyncChaosProxy`, `AsyncFault`, `AsyncEvents`.

Each call is the sync API's call run in a worker thread (`asyncio.to_thread`): one HTTP
client, one set of request, response and error handling (`proxy.client.AdminClient`, which
httpx lets threads share), nothing written twice, and the test's event loop keeps running
its consumers while a call waits (an `events.wait` of ten seconds included; it ends by its
own timeout even when the awaiting task is cancelled).

    async with AsyncChaosProxy.start(bootstrap) as chaos:
        async with chaos.fault(api="SyncGroup", group="orders").error("NOT_COORDINATOR",
                                                                      times=1) as fault:
            ...
            event = await chaos.events.wait(api="SyncGroup", group="orders", injected=True)
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Callable, Generator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

from kafka_chaos_proxy.proxy.api.chaos import ChaosProxy
from kafka_chaos_proxy.proxy.api.events import DEFAULT_TIMEOUT_S, POLL_S, Event, EventQuery
from kafka_chaos_proxy.proxy.api.options import StartArgs
from kafka_chaos_proxy.proxy.api.rules import ApiName, Fault, FaultArgs, FaultBuilder
from kafka_chaos_proxy.proxy.api.scenarios import ScenarioArgs, ScenarioResult, ScenarioRun
from kafka_chaos_proxy.proxy.client import AdminClient

if TYPE_CHECKING:
    from kafka_chaos_proxy.faults.model import FaultRule


class AsyncFault:
    """An installed rule (`Fault`), awaitable; `async with` removes it on exit."""

    def __init__(self, fault: Fault) -> None:
        self.sync = fault
        self.id = fault.id
        self.rule = fault.rule

    def __repr__(self) -> str:
        return f"AsyncFault({self.id!r})"

    async def state(self) -> dict[str, Any]:
        return await asyncio.to_thread(self.sync.state)

    async def injections(self) -> int:
        return await asyncio.to_thread(self.sync.injections)

    async def matched(self) -> int:
        return await asyncio.to_thread(self.sync.matched)

    async def enable(self) -> None:
        await asyncio.to_thread(self.sync.enable)

    async def disable(self) -> None:
        await asyncio.to_thread(self.sync.disable)

    async def release(self) -> int:
        return await asyncio.to_thread(self.sync.release)

    async def remove(self) -> None:
        await asyncio.to_thread(self.sync.remove)

    async def wait(self, timeout: float = DEFAULT_TIMEOUT_S,
                   **query: Unpack[EventQuery]) -> Event:
        return await asyncio.to_thread(lambda: self.sync.wait(timeout, **query))

    async def __aenter__(self) -> AsyncFault:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.remove()


class InstallingFault:
    """What an async builder's action method returns: `await` it for the `AsyncFault`, or
    `async with` it to have the rule removed on exit. The rule was checked already (a
    mistake raised `RuleRejected` at the call); it is stored when awaited."""

    def __init__(self, install: Callable[[], Fault]) -> None:
        self._install = install
        self._fault: AsyncFault | None = None

    async def _installed(self) -> AsyncFault:
        if self._fault is None:
            self._fault = AsyncFault(await asyncio.to_thread(self._install))
        return self._fault

    def __await__(self) -> Generator[Any, None, AsyncFault]:
        return self._installed().__await__()

    async def __aenter__(self) -> AsyncFault:
        return await self._installed()

    async def __aexit__(self, *exc: object) -> None:
        if self._fault is not None:
            await self._fault.remove()


class AsyncEvents:
    """`Events`, awaitable."""

    def __init__(self, chaos: ChaosProxy) -> None:
        self._events = chaos.events

    @property
    def baseline(self) -> int:
        return self._events.baseline

    async def mark(self) -> int:
        return await asyncio.to_thread(self._events.mark)

    async def last_seq(self) -> int:
        return await asyncio.to_thread(self._events.last_seq)

    async def list(self, *, since: int | None = None, limit: int = 1000,
                   **query: Unpack[EventQuery]) -> builtins.list[Event]:
        return await asyncio.to_thread(
            lambda: self._events.list(since=since, limit=limit, **query))

    async def since(self, seq: int, **query: Unpack[EventQuery]) -> builtins.list[Event]:
        return await asyncio.to_thread(lambda: self._events.since(seq, **query))

    async def wait(self, *, timeout: float = DEFAULT_TIMEOUT_S, since: int | None = None,
                   poll_s: float = POLL_S, **query: Unpack[EventQuery]) -> Event:
        return await asyncio.to_thread(
            lambda: self._events.wait(timeout=timeout, since=since, poll_s=poll_s, **query))


class AsyncScenarioRun:
    """`ScenarioRun`, awaitable."""

    def __init__(self, run: ScenarioRun) -> None:
        self.sync = run

    @property
    def done(self) -> bool:
        return self.sync.done

    async def wait(self, timeout: float | None = None) -> ScenarioResult:
        return await asyncio.to_thread(self.sync.wait, timeout)

    async def stop(self, timeout: float = 10.0) -> ScenarioResult:
        return await asyncio.to_thread(self.sync.stop, timeout)


class AsyncChaosProxy:
    """`ChaosProxy` for asyncio code. `async with AsyncChaosProxy.start(...)` starts a proxy
    (in a worker thread: a start never blocks the loop) and stops it on exit; `attach` and
    `ChaosProxy.aio` wrap a proxy that runs already."""

    def __init__(self, chaos: ChaosProxy | None = None,
                 opener: Callable[[], ChaosProxy] | None = None) -> None:
        self._chaos = chaos
        self._opener = opener

    @classmethod
    def start(cls, bootstrap: str | None = None,
              **options: Unpack[StartArgs]) -> AsyncChaosProxy:
        """`ChaosProxy.start`'s arguments; the proxy starts at `async with` (or `open()`)."""
        return cls(opener=lambda: ChaosProxy.start(bootstrap, **options))

    @classmethod
    def attach(cls, admin_url: str, token: str | None = None, *,
               bootstrap: str | None = None) -> AsyncChaosProxy:
        return cls(opener=lambda: ChaosProxy.attach(admin_url, token, bootstrap=bootstrap))

    async def open(self) -> AsyncChaosProxy:
        if self._chaos is None:
            assert self._opener is not None
            self._chaos = await asyncio.to_thread(self._opener)
        return self

    async def close(self) -> None:
        if self._chaos is not None and self._opener is not None:
            await asyncio.to_thread(self._chaos.close)

    async def __aenter__(self) -> AsyncChaosProxy:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def sync(self) -> ChaosProxy:
        """The sync handle underneath (started: after `open()`)."""
        if self._chaos is None:
            raise RuntimeError("not started: use `async with AsyncChaosProxy.start(...)` or "
                               "`await chaos.open()`")
        return self._chaos

    @property
    def bootstrap(self) -> str:
        return self.sync.bootstrap

    @property
    def admin_url(self) -> str:
        return self.sync.admin_url

    @property
    def admin(self) -> AdminClient:
        return self.sync.admin

    @property
    def events(self) -> AsyncEvents:
        return AsyncEvents(self.sync)

    def view(self) -> AsyncChaosProxy:
        return AsyncChaosProxy(self.sync.view())

    def fault(self, api: ApiName | Sequence[ApiName] | None = None,
              **match: Unpack[FaultArgs]) -> FaultBuilder[InstallingFault]:
        chaos = self.sync

        def install(rule: dict[str, Any]) -> InstallingFault:
            return InstallingFault(lambda: chaos.add_rule(rule))

        return FaultBuilder(install, api, **match)

    async def add_rule(self, rule: Mapping[str, Any] | FaultRule) -> AsyncFault:
        return AsyncFault(await asyncio.to_thread(self.sync.add_rule, rule))

    async def rules(self) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.sync.rules)

    async def clear(self) -> int:
        return await asyncio.to_thread(self.sync.clear)

    async def holds(self) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.sync.holds)

    async def release_holds(self) -> int:
        return await asyncio.to_thread(self.sync.release_holds)

    async def reset(self) -> None:
        await asyncio.to_thread(self.sync.reset)

    async def groups(self) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.sync.groups)

    async def group(self, group_id: str) -> dict[str, Any]:
        return await asyncio.to_thread(self.sync.group, group_id)

    async def run_scenario(self, scenario: str | Path,
                           **options: Unpack[ScenarioArgs]) -> ScenarioResult:
        """`ChaosProxy.run_scenario`'s arguments."""
        return await asyncio.to_thread(lambda: self.sync.run_scenario(scenario, **options))

    async def start_scenario(self, scenario: str | Path,
                             **options: Unpack[ScenarioArgs]) -> AsyncScenarioRun:
        """`ChaosProxy.start_scenario`'s arguments."""
        run = await asyncio.to_thread(lambda: self.sync.start_scenario(scenario, **options))
        return AsyncScenarioRun(run)

