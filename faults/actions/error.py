"""`error`: answer with a synthesized error response; the broker never sees the request.

With `broker_consistent`, the broker is made to agree with what the client is told before it
is told: for UNKNOWN_MEMBER_ID the proxy first removes the member at the broker (a LeaveGroup,
or the KIP-848 leave heartbeat, of its own), so a client that correctly rejoins finds no ghost
of its old member holding the next rebalance back for a session timeout. The data plane reads
`ErrorPlan.broker_consistent` from the Decision's `plan`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from pydantic import Field, StrictBool, model_validator

from kafka_chaos_proxy.faults.actions._base import ActionSpec, DecideContext
from kafka_chaos_proxy.faults.actions._shared import ErrorActionBase, decide_error
from kafka_chaos_proxy.faults.decision import ActionKind, Decision

# The one error a broker can be made to agree with: it forgets a member on request.
CONSISTENT_ERROR = "UNKNOWN_MEMBER_ID"
# What to do instead, for the errors people try next: no request of the proxy's own can make
# a broker mean these, real group activity can.
_INSTEAD = {
    "FENCED_INSTANCE_ID": (
        "a broker fences a static member only when a real second member joins with the same "
        "group.instance.id; start one in the scenario instead"
    ),
    "ILLEGAL_GENERATION": (
        "a broker answers ILLEGAL_GENERATION only after a real rebalance moved the generation "
        "on; start or stop a member in the scenario instead"
    ),
}


@dataclass(frozen=True, slots=True)
class ErrorPlan:
    """What the `error` executor needs beyond the error code (the Decision's `plan`)."""

    broker_consistent: bool = False


class ErrorAction(ErrorActionBase):
    """Answer with a synthesized error response; the broker never sees the request."""

    _what: ClassVar[str] = "action of type 'error'"
    type: Literal["error"]
    broker_consistent: StrictBool = Field(
        default=False,
        description="UNKNOWN_MEMBER_ID only: first remove the member at the broker (one "
        "LeaveGroup round trip of the proxy's own), then answer, so the broker agrees.",
    )

    @model_validator(mode="after")
    def _check_consistency(self) -> ErrorAction:
        if not self.broker_consistent or self.error == CONSISTENT_ERROR:
            return self
        instead = _INSTEAD.get(self.error)
        if instead is not None:
            raise ValueError(
                f"broker_consistent cannot make the broker agree with {self.error}: {instead} "
                "(or drop broker_consistent)"
            )
        raise ValueError(
            f"broker_consistent applies to error {CONSISTENT_ERROR} only, not {self.error}; "
            f"write error: {CONSISTENT_ERROR} or drop broker_consistent"
        )


def decide(action: ErrorAction, ctx: DecideContext) -> Decision:
    """The shared error decision; a broker-consistent one also carries its `ErrorPlan`."""
    if not action.broker_consistent:
        return decide_error(action, ctx)
    return ctx.decision(ActionKind.ERROR, error_code=action.error_code,
                        plan=ErrorPlan(broker_consistent=True))


ACTION = ActionSpec(ActionKind.ERROR, ErrorAction, decide,
                    {"type": "error", "error": "NOT_COORDINATOR"})
