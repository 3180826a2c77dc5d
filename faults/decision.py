"""The contract between the fault engine and the data plane.

`faults` decides what happens to one request; `proxy` makes it happen on sockets. This module
is the whole vocabulary they share, so the data plane never needs to know how a rule matched and
the engine never needs to know about transports. It imports nothing of ours but `codec`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class ActionKind(StrEnum):
    """What the data plane does with one request/response exchange: the built-in kinds.

    An action added later (`faults.actions`) may use a plain string kind instead; a StrEnum
    member equals its string, so the data plane can compare either way.
    """

    FORWARD = "forward"
    ERROR = "error"
    ERROR_AFTER_FORWARD = "error_after_forward"
    DROP_REQUEST = "drop_request"
    DROP_RESPONSE = "drop_response"
    DELAY = "delay"
    CLOSE = "close"
    THROTTLE = "throttle"


class Side(StrEnum):
    REQUEST = "request"
    RESPONSE = "response"


class CloseWhen(StrEnum):
    BEFORE = "before"  # close instead of forwarding the request
    AFTER = "after"  # forward the request, close when its response arrives (response discarded)


class CloseMode(StrEnum):
    GRACEFUL = "graceful"  # FIN
    RESET = "reset"  # RST (SO_LINGER 0)


class RequestView(Protocol):
    """What the engine may read about a request. The data plane implements it.

    `body` decodes lazily and caches, so a rule that matches only on API key never pays for a
    full decode of a Produce or Fetch frame.
    """

    connection_id: int
    client_host: str
    broker_node: int  # node id of the upstream broker; -1 for the bootstrap listener
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    # Who the client authenticated as (SASL, or its TLS client certificate), where the
    # exchange reveals it (`proxy.pipeline.sasl`); None otherwise.
    principal: str | None

    def body(self) -> dict[str, Any] | None:
        """The decoded request body, or None when the codec cannot decode it."""
        ...


@dataclass(frozen=True, slots=True)
class Decision:
    """One fault (or none) for one exchange.

    `delay_s` is already drawn from the rule's distribution: the data plane only sleeps.
    For DELAY it applies on `side`; for DROP_* `close_after_s` (if set) closes the client
    connection that long after the drop, as a dead peer would eventually be detected.

    `action` is an `ActionKind` member for the built-in actions and may be a plain string for
    an action registered later; `plan` is that action's own parameters, for actions whose
    executor needs more than the shared fields.
    """

    action: str = ActionKind.FORWARD
    rule_id: str | None = None
    error_code: int | None = None
    side: Side = Side.REQUEST
    delay_s: float = 0.0
    close_when: CloseWhen = CloseWhen.BEFORE
    close_mode: CloseMode = CloseMode.GRACEFUL
    close_after_s: float | None = None
    throttle_bytes_per_s: int | None = None
    # Called by the data plane once the injection really happened (for counters and dosage).
    on_applied: Callable[[], None] | None = field(default=None, compare=False, repr=False)
    # An action's own parameters, for actions whose executor needs more than the shared fields.
    plan: Any = field(default=None, kw_only=True)

    @property
    def is_fault(self) -> bool:
        # `!=`, not `is not`: a plain-string kind is never the FORWARD member itself.
        return self.action != ActionKind.FORWARD


PASS = Decision()

# The kind of a decision made of several rules' decisions (rules with `chain`), carried out in
# rule order; `plan` holds them. Not an action a user writes: the engine composes it.
SEQUENCE = "sequence"


class FaultDecider(Protocol):
    """Implemented by the fault engine; called by the data plane for every request."""

    def on_request(self, request: RequestView) -> Decision: ...
