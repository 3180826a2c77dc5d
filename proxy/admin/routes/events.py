"""The coordination event log: query the ring buffer, or follow it live over SSE."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import StreamingResponse

from kafka_chaos_proxy.proxy.admin.context import AdminContext, get_ctx
from kafka_chaos_proxy.proxy.admin.params import WholeNumber
from kafka_chaos_proxy.proxy.admin.schemas import Event
from kafka_chaos_proxy.proxy.admin.sse import event_stream
from kafka_chaos_proxy.proxy.events import EventFilter

router = APIRouter(prefix="/events", tags=["events"])

Ctx = Annotated[AdminContext, Depends(get_ctx)]
GroupQ = Annotated[str | None, Query(description="Only events of this group id.")]
MemberQ = Annotated[str | None, Query(description="Only events of this member id.")]
ApiQ = Annotated[
    str | None, Query(description="Only this API, by name (any case, e.g. SyncGroup) or key.")
]
SinceQ = Annotated[WholeNumber | None, Query(ge=0, description="Only events with a larger seq.")]


@router.get(
    "",
    summary="Buffered events, oldest first",
    description=(
        "Without `since`: the newest `limit` matching events. With `since`: the first `limit` "
        "matching events after that seq, so a poller passes the last seq it saw."
    ),
    response_model=list[Event],
)
async def list_events(
    ctx: Ctx,
    group: GroupQ = None,
    member: MemberQ = None,
    api: ApiQ = None,
    since: SinceQ = None,
    limit: Annotated[WholeNumber, Query(ge=1, le=10_000)] = 100,
) -> list[dict[str, Any]]:
    return ctx.events.query(EventFilter(group, member, api), since=since, limit=limit)


@router.get(
    "/stream",
    summary="Live events as server-sent events",
    description=(
        "Each event is an SSE message with `id` = seq, `event: coordination` and the event as "
        "JSON in `data`. Buffered events after `since` (or `Last-Event-ID`) are sent first. "
        "If this reader falls behind, the oldest events are dropped for it and an "
        "`event: dropped` message says how many. `limit` ends the stream after that many "
        "events. A comment line is sent when idle so proxies keep the connection open."
    ),
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream_events(
    ctx: Ctx,
    group: GroupQ = None,
    member: MemberQ = None,
    api: ApiQ = None,
    since: SinceQ = None,
    limit: Annotated[WholeNumber | None, Query(ge=1, le=1_000_000)] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    if since is None and last_event_id is not None and last_event_id.strip().isdigit():
        since = int(last_event_id.strip())
    body = event_stream(
        ctx.events,
        EventFilter(group, member, api),
        since=since,
        limit=limit,
        keepalive_s=ctx.stream_keepalive_s,
    )
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
