"""The contract between the data plane and whatever watches coordination traffic.

The connection pipeline builds one `Exchange` per request/response pair of the APIs observers
care about (the group-coordination APIs), with both bodies decoded, and hands it to every
`ExchangeObserver` (the event log, the group-state model, metrics). Observers never see sockets
and the pipeline never knows what an observer does with an exchange.

An observer may also want to know when a client connection has closed (the group model does:
a member whose LeaveGroup went unanswered is gone once its connection is): it then also
implements `ConnectionObserver`, and the pipeline calls it once per closed connection, after
the connection's last exchanges were observed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from kafka_chaos_proxy.faults.decision import PASS, Decision


@dataclass(slots=True)
class Exchange:
    """One request and what the client finally received for it.

    `response_body` is what the client saw: the broker's answer, or the synthesized error, or
    None when the response was dropped or the connection closed before it arrived. `outcome`
    says which in words ("ok", "error_injected", "dropped", "closed", "upstream_closed").
    """

    connection_id: int
    client_host: str
    broker_node: int
    client_id: str | None
    api_key: int
    api_version: int
    correlation_id: int
    request_body: dict[str, Any] | None
    response_body: dict[str, Any] | None
    started_at: float  # time.time() when the request arrived from the client
    latency_s: float  # until the response was handed to the client (or the exchange ended)
    upstream_latency_s: float | None  # forward to broker answer; None if never forwarded
    outcome: str = "ok"
    decision: Decision = PASS
    # Who the client authenticated as (SASL, or its TLS client certificate), where the
    # exchange revealed it (`proxy.pipeline.sasl`); None otherwise.
    principal: str | None = None


class ExchangeObserver(Protocol):
    def observe(self, exchange: Exchange) -> None:
        """Called on the event loop; must not block. Exceptions are logged and swallowed."""
        ...


@runtime_checkable
class ConnectionObserver(Protocol):
    """Optional second half of an `ExchangeObserver`."""

    def connection_closed(self, connection_id: int) -> None:
        """Called on the event loop once the connection `connection_id` has closed; must not
        block. Exceptions are logged and swallowed."""
        ...
