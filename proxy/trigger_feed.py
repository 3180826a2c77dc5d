"""Where trigger events come from: the one place that tells the fault engine, the holds and
the group's live state what just happened on the data path.

Three moments, all synchronous on the event loop, so a rule armed by an event decides the very
next request with its new state (no polling, no slop):

* `request_arrived`: a coordination request reached the proxy, before it is decided (the
  live state counts a JoinGroup as pending, and opens its round, before a rule asks);
* `request_dispatched`: the same request once its decision was carried out (phase `request`
  events: a request arms rules for the requests after it, never for itself);
* `observe`: an exchange ended, its answer written, dropped or cut off (phase `response`),
  after the group model folded it (this observer is listed after the group model).

Injections (phase `injected`) come from the engine itself (`FaultEngine.event_sinks`).
Only coordination APIs make request and response events, as only they are observed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from kafka_chaos_proxy.faults.decision import RequestView
from kafka_chaos_proxy.faults.triggers import GroupView, request_event
from kafka_chaos_proxy.proxy.event_fields import event_fields
from kafka_chaos_proxy.proxy.exchange import Exchange
from kafka_chaos_proxy.proxy.group_live import GroupLiveState
from kafka_chaos_proxy.proxy.groups import GroupStateModel
from kafka_chaos_proxy.proxy.holds import HoldRegistry


class TriggerEngine(Protocol):
    """What the feed needs of `faults.engine.FaultEngine`."""

    group_view: GroupView | None
    event_sinks: list[Callable[[Any], None]]

    @property
    def wants_events(self) -> bool: ...

    def notify(self, event: Any) -> None: ...


class TriggerFeed:
    """An `ExchangeObserver` and `ConnectionObserver`, plus the pipeline's request hooks
    (`proxy.pipeline.host.TriggerHooks`) and the server's one `HoldRegistry`."""

    def __init__(self, engine: TriggerEngine | None, groups: GroupStateModel,
                 holds: HoldRegistry | None = None) -> None:
        self.engine = engine
        self.live = GroupLiveState(groups)
        self.holds = holds if holds is not None else HoldRegistry()
        if engine is not None:
            engine.group_view = self.live
            engine.event_sinks.append(self.holds.notify)

    def _wanted(self) -> bool:
        return (self.engine is not None and self.engine.wants_events) or self.holds.waiting

    def _tell(self, event: dict[str, Any]) -> None:
        if self.engine is not None:
            self.engine.notify(event)
        self.holds.notify(event)

    # -- the pipeline's hooks

    def request_arrived(self, request: RequestView) -> None:
        self.live.request_arrived(request)

    def request_dispatched(self, request: RequestView) -> None:
        if self._wanted():
            self._tell(request_event(request, "request"))

    # -- observers

    def observe(self, exchange: Exchange) -> None:
        ev = event_fields(exchange)
        self.live.exchange_ended(ev)
        if not self._wanted():
            return
        event = dict(ev)
        event["phase"] = "response"
        fault = ev.get("fault")
        if fault:
            event["rule"] = fault.get("rule")
            event["rules"] = fault.get("rules")
        self._tell(event)

    def connection_closed(self, connection_id: int) -> None:
        self.live.connection_closed(connection_id)
        self.holds.connection_closed(connection_id)
