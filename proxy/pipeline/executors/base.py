"""What an executor is (`Executor`), what it may do to a connection (`FaultTarget`), and the
registry that finds it by action kind."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Protocol

from kafka_chaos_proxy.faults.decision import CloseMode, Decision
from kafka_chaos_proxy.proxy.pipeline.request_context import RequestContext
from kafka_chaos_proxy.proxy.side_channel import Access


class FaultTarget(Protocol):
    """The connection as an executor sees it; the rest of its state is none of its business."""

    @property
    def upstream_addr(self) -> tuple[str, int] | None:
        """The broker this connection forwards to, (host, port); None until it is connected."""
        ...

    @property
    def side_channel_access(self) -> Access:
        """How the proxy's own connections reach this connection's broker (TLS, login)."""
        ...

    @property
    def closed(self) -> bool:
        """The connection has ended: nothing filled into a slot will reach the client."""
        ...

    def applied(self, decision: Decision) -> None:
        """Confirm that the injection happened (the engine counts and doses from this)."""
        ...

    def forward(self, ctx: RequestContext) -> None:
        """Send the request upstream in arrival order; a `ctx.ready_at` in the future holds it,
        and the requests behind it, until then."""
        ...

    def fill_slot(self, ctx: RequestContext, data: bytes, ready_at: float = ...) -> None:
        """Give the request's response slot its bytes; they reach the client in request order,
        not before `ready_at` (loop time, `now()`)."""
        ...

    def synthesize_error(self, ctx: RequestContext, error_code: int | None) -> bytes | None:
        """A response frame for `ctx` carrying `error_code` (-1 when None); None when the codec
        cannot build one (logged)."""
        ...

    def end_exchange(self, ctx: RequestContext, outcome: str) -> None:
        """Hand an observed request to the observers as finished with `outcome` (for a
        response that will never be written)."""
        ...

    def close(self, reason: str, mode: CloseMode = ..., detail: str = "") -> None: ...

    def close_later(self, decision: Decision) -> None:
        """Close `decision.close_after_s` from now, if set: a dead peer is detected late."""
        ...

    def now(self) -> float:
        """The event loop's clock, which `ready_at` is measured in."""
        ...

    def throttle(self, bytes_per_s: int | None) -> None:
        """Pace all later writes to the client at `bytes_per_s` (None: no cap)."""
        ...

    def schedule(self, at: float, callback: Callable[[], None]) -> None:
        """Run `callback` at loop time `at` (`now()`), unless the connection has closed."""
        ...

    def park(self, ctx: RequestContext, decision: Decision, resume: Callable[[], None],
             expire: Callable[[], None]) -> None:
        """Start a hold (`decision.plan` is its `HoldPlan`): `resume` when it ends by its
        `until`, a release or a timeout with on_timeout release; `expire` on any other
        timeout. Neither runs once the connection has closed."""
        ...


class Executor:
    """Carries out one action kind; one subclass per kind, each in its own module.

    The defaults are what the data plane does with a request the action does not touch:
    forward it, and deliver its response as it came.
    """

    kind: ClassVar[str]
    # The outcome observers get when the response slot is written to the client.
    written_outcome: ClassVar[str] = "ok"

    def on_request(self, conn: FaultTarget, ctx: RequestContext, decision: Decision,
                   expects_response: bool) -> None:
        """Request side: the request has arrived and owns its response slot (`ctx.slot`,
        None when no response is expected, as for an acks=0 Produce)."""
        conn.forward(ctx)

    def on_response(self, conn: FaultTarget, ctx: RequestContext, decision: Decision,
                    data: bytes, now: float) -> None:
        """Response side: the broker's response to a forwarded request, already rewritten and
        observed, arrived at `now`; the slot stays unfilled unless this fills it."""
        conn.fill_slot(ctx, data)


def answer_with_error(conn: FaultTarget, ctx: RequestContext, decision: Decision) -> None:
    """Fill the request's slot with a synthesized error of the decision's code; the codec not
    managing to build one (logged) costs the connection, never a wrong answer."""
    data = conn.synthesize_error(ctx, decision.error_code)
    if data is None:
        conn.close("error_synthesis_failed")
    else:
        ctx.written_as = "error_injected"
        conn.fill_slot(ctx, data)


EXECUTORS: dict[str, Executor] = {}
_PASS_THROUGH = Executor()


def register(executor: Executor) -> Executor:
    """Add an executor, keyed by the plain string of its kind; each kind has exactly one."""
    kind = str(executor.kind)
    if kind in EXECUTORS:
        raise ValueError(f"two executors for action {kind!r}")
    EXECUTORS[kind] = executor
    return executor


def executor_for(kind: str) -> Executor:
    """The executor of action `kind` (an `ActionKind` or its plain string). A kind without one
    is forwarded and delivered untouched, as the data plane always did with an unknown kind."""
    return EXECUTORS.get(kind, _PASS_THROUGH)
