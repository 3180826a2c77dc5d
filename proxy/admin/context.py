"""What the admin routes read and change, handed to them as one object.

Routes get it from `request.app.state.ctx` rather than from globals so that tests can run many
independent apps (and the schema fuzzer one of its own) in a single process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from fastapi import Request

from kafka_chaos_proxy.proxy.admin.guard import DEFAULT_MAX_BODY_BYTES, LOCAL_HOSTS
from kafka_chaos_proxy.proxy.events import EventLog
from kafka_chaos_proxy.proxy.groups import GroupStateModel
from kafka_chaos_proxy.proxy.holds import HoldRegistry

if TYPE_CHECKING:
    from kafka_chaos_proxy.faults.engine import FaultEngine


class ProxyInfoLike(Protocol):
    def list_connections(self) -> list[dict[str, Any]]: ...

    def list_brokers(self) -> list[dict[str, Any]]: ...


@dataclass
class AdminContext:
    engine: FaultEngine
    events: EventLog
    groups: GroupStateModel
    holds: HoldRegistry | None = None  # the data plane's parked requests/responses
    proxy: ProxyInfoLike | None = None  # set when the data plane starts
    token: str | None = None
    stream_keepalive_s: float = 15.0
    # Host names the API answers to (see `proxy.admin.guard`); "*" among them: any.
    allowed_hosts: frozenset[str] = LOCAL_HOSTS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES


def get_ctx(request: Request) -> AdminContext:
    ctx: AdminContext = request.app.state.ctx
    return ctx
