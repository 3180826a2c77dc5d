"""The group-coordination event log: one structured event per coordination exchange.

Events go to three places, none of which may ever slow the data plane down:
- a bounded ring buffer, so the admin API can answer "what just happened to group G";
- an optional JSON-lines file, the durable record a test or CI run leaves behind;
- live subscribers (the admin SSE stream), each with its own bounded queue. A subscriber that
  cannot keep up loses its oldest events and is told how many, rather than back-pressuring the
  proxy: a debugging tool that stalls the thing it watches would change the race it shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import structlog

from proxy import metrics
from proxy.event_fields import event_fields, iso_time
from proxy.exchange import Exchange

Event = dict[str, Any]

_log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class EventFilter:
    """The filters the admin API and the CLI share. `api` matches name (any case) or key."""

    group: str | None = None
    member: str | None = None
    api: str | None = None

    def matches(self, event: Event) -> bool:
        if self.group is not None and event.get("group") != self.group:
            return False
        if self.member is not None and event.get("member_id") != self.member:
            members = event.get("members") or []
            if not any(m.get("member_id") == self.member for m in members):
                return False
        if self.api is not None:
            wanted = self.api.strip().lower()
            if wanted != str(event.get("api", "")).lower() and wanted != str(event.get("api_key")):
                return False
        return True


class EventSubscription:
    """One live reader of the event stream.

    `dropped` counts events this subscriber lost because its queue was full; the stream shows
    it so a reader knows its view has a hole.
    """

    def __init__(self, log: EventLog, maxsize: int, event_filter: EventFilter) -> None:
        self._log = log
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize=max(1, maxsize))
        self.filter = event_filter
        self.dropped = 0
        self.closed = False

    def offer(self, event: Event) -> None:
        """Called from the data plane's observer call: never blocks, never raises."""
        if self.closed or not self.filter.matches(event):
            return
        while True:
            try:
                self._queue.put_nowait(event)
                return
            except asyncio.QueueFull:
                with contextlib.suppress(asyncio.QueueEmpty):
                    self._queue.get_nowait()
                    self.dropped += 1
                    metrics.event_subscriber_drops_total.inc()

    async def get(self, timeout: float | None = None) -> Event | None:
        """The next event; None when the wait timed out or the log closed."""
        if self.closed and self._queue.empty():
            return None
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None

    def close(self) -> None:
        """Stop receiving; a reader blocked in get() wakes up with None."""
        if self.closed:
            return
        self.closed = True
        self._log._unsubscribe(self)
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)
        if self._queue.full():  # make room for the wake-up even on a full queue
            with contextlib.suppress(asyncio.QueueEmpty, asyncio.QueueFull):
                self._queue.get_nowait()
                self._queue.put_nowait(None)

    def __enter__(self) -> EventSubscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class JsonLinesSink:
    """Appends one JSON object per line. Line-buffered so `tail -f` sees events as they happen.

    A write error (disk full) is logged once and the sink keeps trying: losing the file must
    not lose the proxy.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = path.open("a", encoding="utf-8", buffering=1)
        self._failed = False

    def write(self, event: Event) -> None:
        if self._file is None:
            return
        try:
            self._file.write(json.dumps(event, separators=(",", ":"), default=str) + "\n")
            self._failed = False
        except (OSError, ValueError):
            if not self._failed:
                _log.warning("event log write failed", path=str(self.path), exc_info=True)
            self._failed = True

    def close(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None


class EventLog:
    """The ExchangeObserver that records coordination events. Runs on the event loop only."""

    def __init__(
        self,
        capacity: int = 10_000,
        path: Path | None = None,
        subscriber_queue_size: int = 1_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._buffer: deque[Event] = deque(maxlen=max(1, capacity))
        self._sink = JsonLinesSink(path) if path is not None else None
        self._subscribers: set[EventSubscription] = set()
        self._subscriber_queue_size = subscriber_queue_size
        self._clock = clock
        self._seq = 0

    @property
    def capacity(self) -> int:
        return self._buffer.maxlen or 0

    @property
    def last_seq(self) -> int:
        return self._seq

    def __len__(self) -> int:
        return len(self._buffer)

    def observe(self, exchange: Exchange) -> None:
        self.record(event_fields(exchange))

    def record(self, fields: dict[str, Any]) -> Event:
        """Number an event and send it everywhere. Also used for events the proxy makes itself."""
        self._seq += 1
        event: Event = {"seq": self._seq}
        event.update((k, v) for k, v in fields.items() if k != "seq")
        if event.get("time") is None:
            now = self._clock()
            event["time"] = iso_time(now)
            event["ts"] = round(now, 6)
        self._buffer.append(event)
        if self._sink is not None:
            self._sink.write(event)
        for subscriber in tuple(self._subscribers):
            subscriber.offer(event)
        return event

    def query(
        self,
        event_filter: EventFilter = EventFilter(),
        since: int | None = None,
        limit: int = 100,
    ) -> list[Event]:
        """Events oldest first. With `since`: the first `limit` after that seq (paging forward);
        without: the newest `limit` (what just happened)."""
        limit = max(0, limit)
        if limit == 0:
            return []
        if since is not None:
            out: list[Event] = []
            for event in self._buffer:
                if event["seq"] > since and event_filter.matches(event):
                    out.append(event)
                    if len(out) >= limit:
                        break
            return out
        newest: deque[Event] = deque(maxlen=limit)
        for event in self._buffer:
            if event_filter.matches(event):
                newest.append(event)
        return list(newest)

    def __iter__(self) -> Iterator[Event]:
        return iter(tuple(self._buffer))

    def subscribe(
        self, event_filter: EventFilter = EventFilter(), maxsize: int | None = None
    ) -> EventSubscription:
        subscription = EventSubscription(self, maxsize or self._subscriber_queue_size, event_filter)
        self._subscribers.add(subscription)
        return subscription

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def _unsubscribe(self, subscription: EventSubscription) -> None:
        self._subscribers.discard(subscription)

    def close_subscribers(self) -> None:
        """End every live stream (their readers get None)."""
        for subscriber in tuple(self._subscribers):
            subscriber.close()

    def close(self) -> None:
        """End every live stream and close the file."""
        self.close_subscribers()
        if self._sink is not None:
            self._sink.close()
