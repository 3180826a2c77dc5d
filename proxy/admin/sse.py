"""Server-sent events from the event log.

The stream subscribes before it replays the buffer so that nothing recorded in between is
lost, then skips the live copies of what the replay already sent (by seq). A reader is never
allowed to hold the data plane back: its subscription queue is bounded, overflow drops its
oldest events and the stream reports the count as an `event: dropped` message.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from kafka_chaos_proxy.proxy.events import EventFilter, EventLog

REPLAY_MAX = 10_000


def format_sse(data: Any, event: str = "coordination", event_id: int | None = None) -> bytes:
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append(f"event: {event}")
    lines.append("data: " + json.dumps(data, separators=(",", ":"), default=str))
    return ("\n".join(lines) + "\n\n").encode()


async def event_stream(
    log: EventLog,
    event_filter: EventFilter,
    since: int | None = None,
    limit: int | None = None,
    keepalive_s: float = 15.0,
) -> AsyncIterator[bytes]:
    sent = 0
    last_seq = log.last_seq if since is None else since
    with log.subscribe(event_filter) as subscription:
        yield b": connected\n\n"  # lets the client see headers and the stream start at once
        if since is not None:
            for buffered in log.query(event_filter, since=since, limit=REPLAY_MAX):
                yield format_sse(buffered, event_id=buffered["seq"])
                last_seq = buffered["seq"]
                sent += 1
                if limit is not None and sent >= limit:
                    return
        reported_drops = 0
        while True:  # ends with the client, the log (proxy stop) or `limit`
            event = await subscription.get(timeout=keepalive_s)
            if subscription.dropped != reported_drops:
                yield format_sse({"dropped": subscription.dropped - reported_drops}, "dropped")
                reported_drops = subscription.dropped
            if event is None:
                if subscription.closed:
                    return
                yield b": keepalive\n\n"
                continue
            if event["seq"] <= last_seq:
                continue
            last_seq = event["seq"]
            yield format_sse(event, event_id=event["seq"])
            sent += 1
            if limit is not None and sent >= limit:
                return
