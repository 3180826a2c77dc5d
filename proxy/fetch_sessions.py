"""Which partitions each client connection is fetching: KIP-227 fetch sessions as the proxy
sees them, for the opt-in Fetch sample events (`run --fetch-events`).

Why: a consumer that keeps fetching a partition the group has already given to another member
(a "zombie") shows only on the wire. Coordination events say who owns what; these say who is
really reading what, at the time the Fetch request arrived.

KIP-227 in brief, as this module follows it per connection (one session per connection: a
client fetches from one broker over one connection):
- Fetch v0-6 have no sessions: every request lists the whole set.
- v7+: `session_epoch` 0 (a new session) or -1 (FINAL: a full request without or closing a
  session) lists the whole set; an epoch above 0 is incremental on the session: the partitions
  it lists are added (or were changed), `forgotten_topics_data` are removed.
- v13+ name topics by `topic_id` (a UUID), not by name. The set keeps the key the request used
  (a name or a UUID) and names ids only when it is shown (`TopicNames`, filled from the
  Metadata answers the proxy sees), so an id learned later names the partitions already held;
  an id not (yet) known shows as `topic_id:<uuid>`.

Bounded (the project's rule): at most `DEFAULT_MAX_PARTITIONS` partitions per connection
(further ones are not kept and counted in `dropped`, until the next full request), and
`DEFAULT_MAX_TOPIC_IDS` ids in the name map (the oldest learned is forgotten first). The
pipeline decodes a Fetch request only up to `ProxyConfig.max_observed_bytes` (larger frames
are not sampled), so one request costs work linear in a bounded size.

Pure: no I/O, no clock (times are handed in). Imports only `proxy.decoded` (pure helpers), so
the pipeline may use it: tests/unit/architecture.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kafka_chaos_proxy.proxy.decoded import dict_items, int_or_none

#: Partitions one connection's session is tracked for at most.
DEFAULT_MAX_PARTITIONS = 10_000
#: Topic ids the name map holds at most (the oldest learned is dropped first).
DEFAULT_MAX_TOPIC_IDS = 100_000
#: With its set unchanged, a connection gets at most one Fetch event per this many seconds.
EVENT_INTERVAL_S = 1.0
#: `session_epoch` of a full request that closes (or never opens) a session.
FINAL_EPOCH = -1
#: `session_epoch` of a full request that opens a new session.
INITIAL_EPOCH = 0
#: The first Fetch version with sessions, and the first that names topics by id.
SESSIONS_SINCE = 7
TOPIC_IDS_SINCE = 13

_ZERO_UUID = uuid.UUID(int=0)

TopicKey = str | uuid.UUID


def _uuid(value: Any) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return None if value == _ZERO_UUID else value
    if isinstance(value, bytes | bytearray) and len(value) == 16:
        found = uuid.UUID(bytes=bytes(value))
        return None if found == _ZERO_UUID else found
    return None


@dataclass(frozen=True, slots=True)
class FetchSample:
    """What one Fetch sample event tells (`proxy.event_fields.fetch_event_fields` makes the
    event of it): when the request arrived, on which connection, and the session after it."""

    at: float  # time.time() when the request arrived
    connection_id: int
    client_id: str | None
    client_host: str
    broker_node: int
    api_version: int
    correlation_id: int
    partitions: dict[str, list[int]]  # the session's whole set, named
    dropped: int
    fetches: int
    session_id: int
    session_epoch: int


class TopicNames:
    """Topic id -> name, learned from Metadata answers; at most `max_entries` ids (the one
    learned longest ago goes first). Shared by every connection of a proxy: a client learns
    ids on one connection and fetches on another."""

    def __init__(self, max_entries: int = DEFAULT_MAX_TOPIC_IDS) -> None:
        self.max_entries = max(1, max_entries)
        self._names: OrderedDict[uuid.UUID, str] = OrderedDict()

    def __len__(self) -> int:
        return len(self._names)

    def learn(self, topic_id: Any, name: Any) -> None:
        key = _uuid(topic_id)
        if key is None or not isinstance(name, str) or not name:
            return
        names = self._names
        if key in names:
            names.move_to_end(key)
        names[key] = name
        while len(names) > self.max_entries:
            names.popitem(last=False)

    def learn_metadata(self, body: Mapping[str, Any]) -> None:
        """Every (topic_id, name) of a decoded Metadata response (v10+ carry ids)."""
        for topic in dict_items(body.get("topics")):
            self.learn(topic.get("topic_id"), topic.get("name"))

    def name(self, key: TopicKey) -> str:
        """A topic as an event shows it: its name, else `topic_id:<uuid>`."""
        if isinstance(key, str):
            return key
        return self._names.get(key) or f"topic_id:{key}"


class FetchSession:
    """One connection's fetch session: the partitions it covers, and when to tell about them."""

    __slots__ = ("_parts", "count", "dropped", "fetches", "last_event_at", "max_partitions",
                 "session_epoch", "session_id")

    def __init__(self, max_partitions: int = DEFAULT_MAX_PARTITIONS) -> None:
        self.max_partitions = max(1, max_partitions)
        self._parts: dict[TopicKey, set[int]] = {}
        self.count = 0  # partitions held (sum of the sets' sizes)
        #: Partitions not kept because the set was full, since the last full request.
        self.dropped = 0
        self.session_id = 0
        self.session_epoch = FINAL_EPOCH
        #: Fetch requests since the last event (the one being told included).
        self.fetches = 0
        self.last_event_at: float | None = None

    # -- applying one request

    def apply(self, version: int, body: Mapping[str, Any]) -> bool:
        """Fold one decoded Fetch request into the set; True when the set changed."""
        self.fetches += 1
        id_key = version >= TOPIC_IDS_SINCE
        if version < SESSIONS_SINCE:
            self.session_id, self.session_epoch = 0, FINAL_EPOCH
            return self._replace(body, id_key)
        self.session_id = int_or_none(body.get("session_id")) or 0
        epoch = int_or_none(body.get("session_epoch"))
        self.session_epoch = FINAL_EPOCH if epoch is None else epoch
        if self.session_epoch <= INITIAL_EPOCH:  # 0 or -1: a full request
            return self._replace(body, id_key)
        added = self._add(self._listed(body.get("topics"), id_key))
        removed = self._forget(body.get("forgotten_topics_data"), id_key)
        return added != removed  # one listed and forgotten in the same request: no change

    @staticmethod
    def _topic_key(topic: Mapping[str, Any], id_key: bool) -> TopicKey | None:
        if id_key:
            return _uuid(topic.get("topic_id"))
        name = topic.get("topic")
        return name if isinstance(name, str) else None

    def _listed(self, topics: Any, id_key: bool) -> Iterable[tuple[TopicKey, int]]:
        for topic in dict_items(topics):
            key = self._topic_key(topic, id_key)
            if key is None:
                continue
            for part in dict_items(topic.get("partitions")):
                index = int_or_none(part.get("partition"))
                if index is not None:
                    yield key, index

    def _replace(self, body: Mapping[str, Any], id_key: bool) -> bool:
        before = self._parts
        self._parts, self.count, self.dropped = {}, 0, 0
        self._add(self._listed(body.get("topics"), id_key))
        return self._parts != before

    def _add(self, listed: Iterable[tuple[TopicKey, int]]) -> set[tuple[TopicKey, int]]:
        """Add what is not held yet (within the bound); returns what was added."""
        added: set[tuple[TopicKey, int]] = set()
        parts = self._parts
        for key, index in listed:
            held = parts.get(key)
            if held is not None and index in held:
                continue
            if self.count >= self.max_partitions:
                self.dropped += 1
                continue
            if held is None:
                held = parts[key] = set()
            held.add(index)
            self.count += 1
            added.add((key, index))
        return added

    def _forget(self, forgotten: Any, id_key: bool) -> set[tuple[TopicKey, int]]:
        """Remove what is held of `forgotten_topics_data`; returns what was removed."""
        removed: set[tuple[TopicKey, int]] = set()
        parts = self._parts
        for topic in dict_items(forgotten):
            key = self._topic_key(topic, id_key)
            if key is None:
                continue
            held = parts.get(key)
            if held is None:
                continue
            for index in topic.get("partitions") or ():
                if index in held:
                    held.discard(index)
                    self.count -= 1
                    removed.add((key, index))
            if not held:
                del parts[key]
        return removed

    # -- telling about it

    def due(self, now: float, changed: bool, interval_s: float = EVENT_INTERVAL_S) -> bool:
        """Is an event due for the request just applied: the first on this connection, the
        set changed, or `interval_s` passed since the last event."""
        last = self.last_event_at
        return changed or last is None or now - last >= interval_s

    def take(self, now: float) -> int:
        """An event is told now: the fetches it covers (counting restarts after it)."""
        fetches, self.fetches = self.fetches, 0
        self.last_event_at = now
        return fetches

    def partitions(self, names: TopicNames | None = None) -> dict[str, list[int]]:
        """The whole set, {topic: sorted partitions}, topics sorted; ids named by `names`
        (without: `topic_id:<uuid>`)."""
        out: dict[str, list[int]] = {}
        for key, held in self._parts.items():
            name = names.name(key) if names is not None else (
                key if isinstance(key, str) else f"topic_id:{key}")
            out.setdefault(name, []).extend(held)
        return {name: sorted(set(parts)) for name, parts in sorted(out.items())}
