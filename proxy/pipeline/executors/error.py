"""ERROR: answer the request with a synthesized error response; the broker never sees it.

Broker-consistent (the decision's plan says `broker_consistent`, see `faults.actions.error`):
before the client is told UNKNOWN_MEMBER_ID, the member it names is removed at the broker this
connection forwards to, through the proxy's own side channel (`proxy.side_channel`: LeaveGroup,
or the KIP-848 leave heartbeat for ConsumerGroupHeartbeat). That runs as a task on the
connection's loop; the request's slot stays unfilled meanwhile, so the responses behind it wait
and order is kept (invariant 2), and the slot is filled once the broker answered, or gave up
(the side channel is bounded in time and never raises). The client is answered even when the
removal failed (a warning `broker_consistency_failed` says why); a connection that closed
meanwhile gets nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import structlog

from kafka_chaos_proxy.codec import ApiKey, api_label
from kafka_chaos_proxy.faults.decision import ActionKind, Decision
from kafka_chaos_proxy.proxy import side_channel
from kafka_chaos_proxy.proxy.pipeline.executors.base import (
    Executor,
    FaultTarget,
    answer_with_error,
    register,
)
from kafka_chaos_proxy.proxy.pipeline.request_context import RequestContext

log = structlog.get_logger("kcp.connection")

OFFSET_COMMIT, CONSUMER_GROUP_HEARTBEAT = ApiKey.OFFSET_COMMIT, ApiKey.CONSUMER_GROUP_HEARTBEAT
# The requests that name the member they come from, with these body fields (OffsetCommit's
# group_instance_id from v7; ConsumerGroupHeartbeat's member leaves by id alone).
MEMBER_APIS = frozenset({ApiKey.JOIN_GROUP, ApiKey.SYNC_GROUP, ApiKey.HEARTBEAT, OFFSET_COMMIT,
                         CONSUMER_GROUP_HEARTBEAT})
# What the broker may say to a removal that leaves it agreeing with the client: removed, or
# it did not know the member either.
_AGREED = frozenset({None, "UNKNOWN_MEMBER_ID"})

# Removals under way: the loop keeps only weak references to tasks.
_PENDING: set[asyncio.Task[None]] = set()


@dataclass(frozen=True, slots=True)
class _Member:
    api_key: int
    group_id: str
    member_id: str
    instance_id: str | None


class Error(Executor):
    kind = ActionKind.ERROR
    written_outcome = "error_injected"

    def on_request(self, conn: FaultTarget, ctx: RequestContext, decision: Decision,
                   expects_response: bool) -> None:
        conn.applied(decision)
        if ctx.slot is None:  # nothing to answer (acks=0 Produce)
            conn.end_exchange(ctx, "error_injected")
        elif getattr(decision.plan, "broker_consistent", False) is True:
            _remove_then_answer(conn, ctx, decision)
        else:
            answer_with_error(conn, ctx, decision)


def _remove_then_answer(conn: FaultTarget, ctx: RequestContext, decision: Decision) -> None:
    """Answer at once when there is nothing to remove (or no way to); else start the removal,
    which answers when it is done."""
    member, why_not = _member_of(ctx)
    address = conn.upstream_addr
    if member is not None and address is None:
        why_not = "the connection has no broker yet"
    if member is None or address is None:
        if why_not is not None:
            _warn(ctx, decision, member, address, why_not, latency_s=None)
        else:
            log.debug("broker_consistent_nothing_to_remove",
                      **_fields(ctx, decision, None, address))
        answer_with_error(conn, ctx, decision)
        return
    task = asyncio.get_running_loop().create_task(
        _remove_and_answer(conn, ctx, decision, member, address),
        name=f"kcp-broker-consistent-{ctx.connection_id}-{ctx.correlation_id}")
    _PENDING.add(task)
    task.add_done_callback(_PENDING.discard)


def _member_of(ctx: RequestContext) -> tuple[_Member | None, str | None]:
    """The member the request names, or None and why there is none to remove (None: an empty
    member id, a member the broker has not admitted yet, so nothing to remove)."""
    api = api_label(ctx.api_key)
    if ctx.api_key not in MEMBER_APIS:
        return None, f"a {api} request names no member to remove"
    body: dict[str, Any] | None = ctx.body()
    if body is None:
        return None, f"the {api} request could not be decoded"
    group_id, member_id = body.get("group_id"), body.get("member_id")
    if not isinstance(group_id, str) or not isinstance(member_id, str):
        return None, f"the {api} request v{ctx.api_version} names no group member"
    if not member_id:
        return None, None
    instance_id = body.get("instance_id" if ctx.api_key == CONSUMER_GROUP_HEARTBEAT
                           else "group_instance_id")
    return _Member(ctx.api_key, group_id, member_id,
                   instance_id if isinstance(instance_id, str) else None), None


async def _remove(member: _Member, address: tuple[str, int],
                  access: side_channel.Access) -> side_channel.SideChannelResult:
    if member.api_key == CONSUMER_GROUP_HEARTBEAT:
        return await side_channel.leave_consumer_group(address, member.group_id,
                                                       member.member_id, access=access)
    # An OffsetCommit does not say which protocol its group speaks, so a member of a KIP-848
    # group gets a LeaveGroup too (a Kafka 4.3 broker was seen removing such a member on it).
    return await side_channel.remove_member(address, member.group_id, member.member_id,
                                            member.instance_id, access=access)


async def _remove_and_answer(conn: FaultTarget, ctx: RequestContext, decision: Decision,
                             member: _Member, address: tuple[str, int]) -> None:
    try:
        result = await _remove(member, address, conn.side_channel_access)
    except Exception as exc:  # the side channel does not raise; the client is answered anyway
        log.exception("side_channel_raised", conn=ctx.connection_id)
        _warn(ctx, decision, member, address, f"internal error: {exc!r}", latency_s=None)
    else:
        _log_result(ctx, decision, member, address, result)
    if conn.closed:  # the client went away meanwhile: nobody to tell
        log.debug("broker_consistent_answer_dropped", conn=ctx.connection_id,
                  rule=decision.rule_id, api=api_label(ctx.api_key))
        return
    try:
        answer_with_error(conn, ctx, decision)
    except Exception as exc:  # a bug of ours costs this connection, as on the request path
        log.exception("request_handling_failed", conn=ctx.connection_id)
        conn.close("internal_error", detail=repr(exc))


def _fields(ctx: RequestContext, decision: Decision, member: _Member | None,
            address: tuple[str, int] | None) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "conn": ctx.connection_id, "rule": decision.rule_id, "api": api_label(ctx.api_key),
        "broker": None if address is None else f"{address[0]}:{address[1]}",
    }
    if member is not None:
        fields.update(group=member.group_id, member=member.member_id)
        if member.instance_id is not None:
            fields["instance"] = member.instance_id
    return fields


def _log_result(ctx: RequestContext, decision: Decision, member: _Member,
                address: tuple[str, int], result: side_channel.SideChannelResult) -> None:
    if not result.answered:
        _warn(ctx, decision, member, address, result.reason or "no answer", result.latency_s)
    elif result.error not in _AGREED:
        _warn(ctx, decision, member, address, f"the broker answered {result.error}",
              result.latency_s, via=result.api, broker_error=result.error)
    else:
        log.info("broker_consistent_removal", **_fields(ctx, decision, member, address),
                 via=f"{result.api} v{result.version}", broker_error=result.error,
                 latency_ms=round(result.latency_s * 1000, 1))


def _warn(ctx: RequestContext, decision: Decision, member: _Member | None,
          address: tuple[str, int] | None, reason: str, latency_s: float | None,
          **extra: Any) -> None:
    """The client is told UNKNOWN_MEMBER_ID although the broker may still hold the member."""
    if latency_s is not None:
        extra["latency_ms"] = round(latency_s * 1000, 1)
    log.warning("broker_consistency_failed", **_fields(ctx, decision, member, address),
                reason=reason, **extra)


register(Error())
