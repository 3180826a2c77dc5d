"""The group-coordination event log: one structured event per coordination exchange, and
(opt-in, `run --fetch-events`) Fetch sample events: which partitions each connection's fetch
session covers (`proxy.fetch_sessions`; `api` "Fetch", `outcome` "observed", no group).

Events go to three places, none of which may ever slow the data plane down:
- a ring buffer bounded in count and in bytes, so the admin API can answer "what just
  happened to group G" without a burst of huge OffsetCommits holding gigabytes;
- an optional JSON-lines file, the durable record a test or CI run leaves behind, rotated by
  size with a bounded number of files kept;
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

from kafka_chaos_proxy.proxy import metrics
from kafka_chaos_proxy.proxy.event_fields import event_fields, iso_time
from kafka_chaos_proxy.proxy.exchange import Exchange

Event = dict[str, Any]

_log = structlog.get_logger(__name__)

DEFAULT_CAPACITY = 10_000
DEFAULT_BUFFER_BYTES = 64 * 1024 * 1024
# One event above this (serialized) has its largest fields cut (`truncate_event`).
DEFAULT_MAX_EVENT_BYTES = 256 * 1024
DEFAULT_FILE_MAX_BYTES = 64 * 1024 * 1024
# One answer of the admin API's event queries holds at most this much (pages go on by `since`).
DEFAULT_QUERY_BYTES = 8 * 1024 * 1024
DEFAULT_FILE_KEEP = 5
# A field this small is never cut: a note is no shorter, and a number must stay a number for
# the readers of the event (the admin API's response model types it).
MIN_CUT_BYTES = 64
# Fields never cut: what makes an event findable and readable. A Fetch sample's own small
# facts stay too (its `partitions` is what may be large): whose connection, how many fetches.
_KEPT = frozenset({"seq", "time", "ts", "api", "api_key", "version", "group", "member_id",
                   "generation", "error", "outcome", "fault", "truncated",
                   "connection", "client_id", "fetches", "session_id", "session_epoch",
                   "partitions_dropped"})


@dataclass(frozen=True)
class EventLogOptions:
    """Where events go and how much of them is kept, in memory and on disk."""

    path: Path | None = None  # the JSON-lines file; None: memory only
    buffer_size: int = DEFAULT_CAPACITY  # events kept in memory for the admin API
    buffer_bytes: int = DEFAULT_BUFFER_BYTES
    file_max_bytes: int = DEFAULT_FILE_MAX_BYTES  # rotated past this size
    file_keep: int = DEFAULT_FILE_KEEP
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES  # larger events have fields cut

    def build(self) -> EventLog:
        return EventLog(self.buffer_size, self.path, buffer_bytes=self.buffer_bytes,
                        max_event_bytes=self.max_event_bytes,
                        file_max_bytes=self.file_max_bytes, file_keep=self.file_keep)


def _dumps(event: Event) -> str:
    return json.dumps(event, separators=(",", ":"), default=str)


def truncate_event(event: Event, text: str, limit: int) -> tuple[Event, str]:
    """Cut the largest fields of an event whose JSON is over `limit` bytes, biggest first,
    until it fits; each cut field becomes a short note and `truncated` maps it to its
    original size, so a reader knows what is missing and how much. Fields under
    `MIN_CUT_BYTES` are kept: the event is then as small as the cut can make it."""
    if len(text) <= limit:
        return event, text
    sizes = sorted(((len(_dumps({k: v})), k) for k, v in event.items() if k not in _KEPT),
                   reverse=True)
    sizes = [(size, key) for size, key in sizes if size >= MIN_CUT_BYTES]
    out = dict(event)
    cut: dict[str, int] = {}
    total = len(text)
    for size, key in sizes:
        if total <= limit:
            break
        out[key] = f"<{size} bytes, truncated>"
        cut[key] = size
        total -= size
    out["truncated"] = cut
    return out, _dumps(out)


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

    Rotated by size like a log file: past `max_bytes` the file becomes `<name>.1` (older ones
    shift up to `<name>.<keep>`, the oldest is deleted), so a long soak cannot fill the disk.
    A write error (disk full) is logged once and the sink keeps trying: losing the file must
    not lose the proxy.
    """

    def __init__(self, path: Path, max_bytes: int = DEFAULT_FILE_MAX_BYTES,
                 keep: int = DEFAULT_FILE_KEEP) -> None:
        self.path = path
        self.max_bytes = max(1, max_bytes)
        self.keep = max(0, keep)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = path.open("a", encoding="utf-8", buffering=1)
        self._size = path.stat().st_size
        self._failed = False

    def write_line(self, line: str) -> None:
        if self._file is None:
            return
        try:
            if self._size and self._size + len(line) + 1 > self.max_bytes:
                self._rotate()
            self._file.write(line + "\n")
            self._size += len(line) + 1
            self._failed = False
        except (OSError, ValueError):
            if not self._failed:
                _log.warning("event log write failed", path=str(self.path), exc_info=True)
            self._failed = True

    def write(self, event: Event) -> None:
        self.write_line(_dumps(event))

    def _rotate(self) -> None:
        assert self._file is not None
        self._file.close()
        self._file = None
        oldest = self.path.with_name(f"{self.path.name}.{self.keep}")
        with contextlib.suppress(FileNotFoundError):
            oldest.unlink()
        for n in range(self.keep - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n}")
            with contextlib.suppress(FileNotFoundError):
                older.rename(self.path.with_name(f"{self.path.name}.{n + 1}"))
        if self.keep:
            self.path.rename(self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink()
        self._file = self.path.open("a", encoding="utf-8", buffering=1)
        self._size = 0

    def close(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None


class EventLog:
    """The ExchangeObserver that records coordination events. Runs on the event loop only."""

    def __init__(
        self,
        capacity: int = DEFAULT_CAPACITY,
        path: Path | None = None,
        subscriber_queue_size: int = 1_000,
        clock: Callable[[], float] = time.time,
        buffer_bytes: int = DEFAULT_BUFFER_BYTES,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        file_max_bytes: int = DEFAULT_FILE_MAX_BYTES,
        file_keep: int = DEFAULT_FILE_KEEP,
    ) -> None:
        self._buffer: deque[Event] = deque(maxlen=max(1, capacity))
        self._sizes: deque[int] = deque()  # serialized size of each buffered event
        self._buffered_bytes = 0
        self.buffer_bytes = max(1, buffer_bytes)
        # One event always fits the ring: a larger one is cut to the ring's size.
        self.max_event_bytes = max(256, min(max_event_bytes, self.buffer_bytes))
        self._sink = (JsonLinesSink(path, file_max_bytes, file_keep)
                      if path is not None else None)
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

    @property
    def buffered_bytes(self) -> int:
        """Serialized size of the events held now (bounded by `buffer_bytes`)."""
        return self._buffered_bytes

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
        event, text = truncate_event(event, _dumps(event), self.max_event_bytes)
        self._hold(event, len(text))
        if self._sink is not None:
            self._sink.write_line(text)
        for subscriber in tuple(self._subscribers):
            subscriber.offer(event)
        return event

    def _hold(self, event: Event, size: int) -> None:
        """Make room first, then add: the held bytes never exceed the bound, not even for a
        moment (the admin API and tests read them from other threads)."""
        buffer, sizes = self._buffer, self._sizes
        while buffer and (len(buffer) == buffer.maxlen
                          or self._buffered_bytes + size > self.buffer_bytes):
            buffer.popleft()
            self._buffered_bytes -= sizes.popleft()
        buffer.append(event)
        sizes.append(size)
        self._buffered_bytes += size

    def query(
        self,
        event_filter: EventFilter = EventFilter(),
        since: int | None = None,
        limit: int = 100,
        max_bytes: int = DEFAULT_QUERY_BYTES,
    ) -> list[Event]:
        """Events oldest first. With `since`: the first `limit` after that seq (paging forward);
        without: the newest `limit` (what just happened). At most `max_bytes` of serialized
        events (at least one), so that one answer never holds the event loop for long; a
        poller pages on from the last seq it got."""
        limit = max(0, limit)
        if limit == 0:
            return []
        pairs = zip(self._buffer, self._sizes, strict=True)
        if since is not None:
            out: list[Event] = []
            total = 0
            for event, size in pairs:
                if event["seq"] > since and event_filter.matches(event):
                    total += size
                    if out and total > max_bytes:
                        break
                    out.append(event)
                    if len(out) >= limit:
                        break
            return out
        newest: deque[tuple[Event, int]] = deque(maxlen=limit)
        for event, size in pairs:
            if event_filter.matches(event):
                newest.append((event, size))
        kept: list[Event] = []
        total = 0
        for event, size in reversed(newest):  # the newest are what was asked for
            total += size
            if kept and total > max_bytes:
                break
            kept.append(event)
        kept.reverse()
        return kept

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
