"""One request as the pipeline tracks it, and as the fault engine sees it (`RequestView`).

The body is decoded lazily and at most once: a rule that matches on API key alone never pays
for decoding a Produce or Fetch frame, and a rule and an observer that both need it share one
decode.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

import structlog

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.codec import api_label
from kafka_chaos_proxy.faults.decision import PASS, Decision
from kafka_chaos_proxy.proxy.pipeline.slots import Slot

log = structlog.get_logger("kcp.connection")

_REQUEST = codec.Direction.REQUEST


class ConnectionFacts(Protocol):
    """What a request copies from its connection (the `Connection` has these attributes)."""

    @property
    def id(self) -> int: ...

    @property
    def client_host(self) -> str: ...

    @property
    def node_id(self) -> int: ...

    @property
    def principal(self) -> str | None: ...


class RequestContext:
    """One request in the pipeline; also the `RequestView` handed to the fault decider."""

    __slots__ = (
        "_body", "_decoded", "api_key", "api_version", "body_offset", "broker_node",
        "client_host", "client_id", "connection_id", "correlation_id", "decision",
        "exchange_wanted", "forwarded_at", "frame", "observed", "principal", "ready_at",
        "response_body", "slot", "started_at", "started_mono", "written_as",
    )

    def __init__(self, conn: ConnectionFacts, frame: bytes, hdr: codec.RequestHeader,
                 now: float, partial: bool = False) -> None:
        self.connection_id = conn.id
        self.client_host = conn.client_host
        self.broker_node = conn.node_id
        # Who the connection authenticated as, when its SASL exchange (or its client
        # certificate) says so (`proxy.pipeline.sasl`); None otherwise.
        self.principal = conn.principal
        self.api_key = hdr.api_key
        self.api_version = hdr.api_version
        self.correlation_id = hdr.correlation_id
        self.client_id = hdr.client_id
        self.frame = frame
        self.body_offset = None if hdr.header_size is None else 4 + hdr.header_size
        self._body: dict[str, Any] | None = None
        self._decoded = partial  # a partial frame (cut-through) has no body to decode
        self.decision: Decision = PASS
        self.slot: Slot | None = None
        self.started_mono = now
        self.started_at = 0.0
        self.forwarded_at: float | None = None
        self.ready_at = 0.0
        self.exchange_wanted = False
        self.observed = True  # False: too large to decode for observers (see exchanges)
        self.response_body: dict[str, Any] | None = None
        # The outcome observers get once the slot is written, when an executor knows better
        # than its kind's default (a hold that timed out into an error, a sequence).
        self.written_as: str | None = None

    def body(self) -> dict[str, Any] | None:
        """Decoded request body, decoded at most once; None when the codec cannot."""
        if not self._decoded:
            self._decoded = True
            if self.body_offset is not None:
                try:
                    self._body = codec.decode_body(self.api_key, self.api_version, _REQUEST,
                                                   memoryview(self.frame)[self.body_offset:])
                except Exception as exc:  # codec bugs must not kill the connection
                    log.warning("request_decode_failed", api=api_label(self.api_key),
                                version=self.api_version, error=str(exc))
        return self._body


class PassThrough:
    """A request forwarded without a context (`proxy.pipeline.passing`): what matching its
    response needs and nothing else. It reads like a context that passed (`decision`,
    `exchange_wanted`), so the response and cut-through code that looks at the head of the
    in-flight queue needs no second branch."""

    __slots__ = ("api_key", "api_version", "correlation_id", "forwarded_at", "slot")

    decision: ClassVar[Decision] = PASS
    exchange_wanted: ClassVar[bool] = False

    def __init__(self, api_key: int, api_version: int, correlation_id: int,
                 forwarded_at: float) -> None:
        self.api_key = api_key
        self.api_version = api_version
        self.correlation_id = correlation_id
        self.forwarded_at: float | None = forwarded_at
        self.slot: Slot | None = None


# A request in flight upstream, awaiting its response.
InFlight = RequestContext | PassThrough
