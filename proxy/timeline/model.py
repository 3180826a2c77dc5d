"""The timeline of one consumer group, as plain data: lanes, spans, bands, markers, rates.

Why a model apart from the picture: the same facts are drawn for a file (`kafka-chaos-proxy
timeline`), for every published matrix run and for the live `/ui` page, and tests check them
without parsing SVG. Everything here is a pure function of the event dicts the event log writes
(see `proxy.event_fields`) and, optionally, of the harness lines of a matrix run (records
delivered per member).

What the events really carry decides the colours: `outcome` is `ok`, `error_injected`,
`dropped`, `closed` or `upstream_closed`; a `fault` with action `delay`/`hold`/`throttle` on an
`ok` exchange made it late; an `error` on an `ok` exchange came from the broker. Events of an
API the timeline does not know (a future `Fetch` sample, say) are counted and not drawn, so a
newer event log never breaks an older picture.

Members are found the way a person reading the log would: an event's own `member_id`, else the
member last seen on the same connection, else the member its client id had at that moment
(FindCoordinator goes to a bootstrap connection that never carries a member id).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Exchanges drawn at most; the picture says how many were left out.
DEFAULT_MAX_EVENTS = 5_000
#: Harness lines (records delivered) read at most per member.
MAX_HARNESS_RECORDS = 500_000
#: Buckets of a member's delivery-rate line.
RATE_BUCKETS = 150
#: Characters per line and lines of a span's decoded summary (its hover text).
SUMMARY_LINE_CHARS = 240
SUMMARY_LINES = 14

COORDINATION_APIS = frozenset({
    "JoinGroup", "SyncGroup", "Heartbeat", "LeaveGroup", "OffsetCommit", "OffsetFetch",
    "FindCoordinator", "DescribeGroups", "ConsumerGroupHeartbeat", "ConsumerGroupDescribe",
    "ShareGroupHeartbeat", "ShareGroupDescribe", "StreamsGroupHeartbeat",
    "StreamsGroupDescribe", "TxnOffsetCommit",
})
EPOCH_APIS = frozenset({"ConsumerGroupHeartbeat", "ShareGroupHeartbeat",
                        "StreamsGroupHeartbeat"})

# Span kinds, in legend order.
OK = "ok"
BROKER_ERROR = "broker_error"
INJECTED = "injected"
DROPPED = "dropped"
DELAYED = "delayed"
CLOSED = "closed"
OTHER = "other"
KINDS: tuple[str, ...] = (OK, BROKER_ERROR, INJECTED, DROPPED, DELAYED, CLOSED, OTHER)
KIND_LABELS = {OK: "ok", BROKER_ERROR: "broker error", INJECTED: "injected error",
               DROPPED: "dropped", DELAYED: "delayed / held", CLOSED: "closed", OTHER: "other"}
_LATE_ACTIONS = frozenset({"delay", "hold", "throttle"})

TopicPartitions = dict[str, list[int]]


@dataclass(frozen=True)
class Span:
    """One coordination exchange: request in (`start`) to response out (`end`), seconds."""

    seq: int
    lane: str
    connection: int | None
    api: str
    start: float
    end: float
    kind: str
    outcome: str
    generation: int | None
    error: str | None
    rule: str | None
    action: str | None
    summary: tuple[str, ...]


@dataclass
class Row:
    """A connection under a member's lane."""

    connection: int | None
    broker: int | None


@dataclass
class Lane:
    """One member (or, without any member id, one client id)."""

    key: str
    member_id: str | None
    client_id: str | None
    first_ts: float
    rows: list[Row] = field(default_factory=list)

    @property
    def label(self) -> str:
        client = self.client_id or "?"
        if self.member_id is None:
            return f"{client} (no member id)"
        short = self.member_id.removeprefix(client).lstrip("-") or self.member_id
        return f"{client} · {short[:8]}"

    def row_of(self, connection: int | None, broker: int | None) -> int:
        for index, row in enumerate(self.rows):
            if row.connection == connection:
                return index
        self.rows.append(Row(connection, broker))
        return len(self.rows) - 1


@dataclass(frozen=True)
class Band:
    """A generation (classic) or the group's highest member epoch seen (KIP-848)."""

    generation: int
    start: float
    end: float
    epoch: bool


@dataclass(frozen=True)
class AssignmentChange:
    lane: str
    at: float
    partitions: TopicPartitions
    seq: int


@dataclass
class Deliveries:
    """Records one harness member delivered, and the duplicates among them, per time bucket
    (`RATE_BUCKETS` across the timeline): bounded however many records a run delivered."""

    name: str
    anchor: str | None  # the lane key the line is drawn under, when one matches
    counts: list[int]
    duplicates: list[int]
    total: int
    cut: bool = False

    @property
    def duplicate_total(self) -> int:
        return sum(self.duplicates)


@dataclass
class Timeline:
    group: str
    start: float
    end: float
    lanes: list[Lane]
    spans: list[Span]
    bands: list[Band]
    assignments: list[AssignmentChange]
    deliveries: list[Deliveries]
    total_events: int  # exchanges of the group, drawn or not
    cut: int  # exchanges of the group left out by the cap
    kept: str  # "first" or "last": which end of the run the cap kept
    ignored: dict[str, int]  # events of APIs the timeline does not draw, by API

    @property
    def duration(self) -> float:
        return max(self.end - self.start, 1e-3)

    def lane(self, key: str) -> Lane:
        return next(lane for lane in self.lanes if lane.key == key)


# ------------------------------------------------------------------------- helpers


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return str(value) if isinstance(value, str) and value else None


def event_start(ev: Mapping[str, Any]) -> float | None:
    return _num(ev.get("ts"))


def event_end(ev: Mapping[str, Any]) -> float | None:
    start = event_start(ev)
    if start is None:
        return None
    latency = _num(ev.get("latency_ms")) or 0.0
    return start + max(latency, 0.0) / 1000.0


def fault_actions(fault: Any) -> list[str]:
    """The actions of a fault: one, or each stage's for a chain (`sequence`)."""
    if not isinstance(fault, Mapping):
        return []
    stages = fault.get("stages")
    if isinstance(stages, list) and stages:
        return [str(s.get("action")) for s in stages if isinstance(s, Mapping)]
    return [str(fault.get("action"))] if fault.get("action") else []


def span_kind(ev: Mapping[str, Any]) -> str:
    """The colour of an exchange, from the `outcome` and `fault` the event carries."""
    outcome = ev.get("outcome")
    if outcome == "error_injected":
        return INJECTED
    if outcome == "dropped":
        return DROPPED
    if outcome in ("closed", "upstream_closed"):
        return CLOSED
    if outcome != "ok":
        return OTHER
    if _LATE_ACTIONS.intersection(fault_actions(ev.get("fault"))):
        return DELAYED
    if ev.get("error") and ev.get("step") != "member_id_required":  # KIP-394's normal step
        return BROKER_ERROR
    return OK


def partitions_text(parts: Mapping[str, Any] | None, limit: int = SUMMARY_LINE_CHARS) -> str:
    if not parts:
        return "none"
    text = "; ".join(f"{topic}[{','.join(str(p) for p in ps or [])}]"
                     for topic, ps in parts.items())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clip(line: str) -> str:
    line = " ".join(line.split())
    return line if len(line) <= SUMMARY_LINE_CHARS else line[: SUMMARY_LINE_CHARS - 1] + "…"


def _offsets_text(offsets: Mapping[str, Any]) -> str:
    parts = []
    for topic, per in offsets.items():
        if not isinstance(per, Mapping):
            continue
        items = []
        for index, value in per.items():
            entry = value if isinstance(value, Mapping) else {}
            item = f"{index}→{entry.get('offset')}"
            if entry.get("error"):
                item += f" {entry['error']}"
            items.append(item)
        parts.append(f"{topic}: {', '.join(items)}")
    return "; ".join(parts)


def _fault_text(fault: Mapping[str, Any]) -> str:
    text = f"fault: rule {fault.get('rule')} ({fault.get('action')}"
    for key in ("error", "delay_ms", "side", "close"):
        if fault.get(key) is not None:
            text += f" {key}={fault[key]}"
    if fault.get("synthetic"):
        text += ", synthetic: no broker sends this"
    if fault.get("rules"):
        text += f", rules {', '.join(str(r) for r in fault['rules'])}"
    return text + ")"


def summary_lines(ev: Mapping[str, Any], start: float) -> tuple[str, ...]:
    """The decoded request/response of an exchange, as the few lines a hover shows."""
    head = f"#{ev.get('seq')} {ev.get('api')} v{ev.get('version')}"
    if ev.get("generation") is not None:
        head += f" · gen/epoch {ev['generation']}"
    head += f" · {ev.get('latency_ms')} ms · +{start:.3f} s"
    lines = [head, f"outcome: {ev.get('outcome')}"]
    if isinstance(ev.get("fault"), Mapping):
        lines.append(_fault_text(ev["fault"]))
    if ev.get("error"):
        lines.append(f"error: {ev['error']}" + (f" ({ev['step']})" if ev.get("step") else ""))
    lines.append(f"member: {ev.get('member_id') or '-'} · client: {ev.get('client_id') or '-'}")
    lines.append(f"connection {ev.get('connection')} → broker {ev.get('broker')}")
    for key in ("protocol", "leader", "coordinator", "instance_id"):
        if ev.get(key) is not None:
            lines.append(f"{key}: {ev[key]}")
    if isinstance(ev.get("subscription"), list):
        lines.append(f"subscription: {', '.join(str(t) for t in ev['subscription'])}")
    if isinstance(ev.get("members"), list):
        lines.append(f"members: {len(ev['members'])}")
    if isinstance(ev.get("assignments"), Mapping):
        lines.append("assignments: " + "; ".join(
            f"{str(m)[-12:]}: {partitions_text(p, 80) if isinstance(p, Mapping) else p}"
            for m, p in ev["assignments"].items()))
    if isinstance(ev.get("assignment"), Mapping):
        lines.append(f"assignment: {partitions_text(ev['assignment'])}")
    if isinstance(ev.get("offsets"), Mapping):
        lines.append(f"offsets: {_offsets_text(ev['offsets'])}")
    return tuple(_clip(line) for line in lines[:SUMMARY_LINES])


# ------------------------------------------------------------------------- members


class _Members:
    """Who sent each event: its own member id, its connection's, or its client id's."""

    def __init__(self, events: Sequence[Mapping[str, Any]]) -> None:
        self.by_connection: dict[Any, str] = {}
        self.by_client: dict[Any, str] = {}
        self.first_of_client: dict[Any, str] = {}
        for ev in events:
            member = _text(ev.get("member_id"))
            if member is not None:
                self.first_of_client.setdefault(ev.get("client_id"), member)

    def member_of(self, ev: Mapping[str, Any]) -> str | None:
        """Call in time order: what was seen before an event decides for it."""
        member = _text(ev.get("member_id"))
        connection, client = ev.get("connection"), ev.get("client_id")
        if member is not None:
            self.by_connection[connection] = member
            self.by_client[client] = member
            return member
        if connection in self.by_connection:
            return self.by_connection[connection]
        return self.by_client.get(client) or self.first_of_client.get(client)


# ------------------------------------------------------------------------- building


def group_events(events: Iterable[Mapping[str, Any]], group: str
                 ) -> tuple[list[Mapping[str, Any]], dict[str, int]]:
    """The group's coordination events in time order, and the other APIs' counts."""
    mine: list[Mapping[str, Any]] = []
    ignored: dict[str, int] = {}
    for ev in events:
        if not isinstance(ev, Mapping) or ev.get("group") != group:
            continue
        api = str(ev.get("api"))
        if api not in COORDINATION_APIS or event_start(ev) is None:
            ignored[api] = ignored.get(api, 0) + 1
            continue
        mine.append(ev)
    mine.sort(key=lambda e: (event_start(e) or 0.0, _int(e.get("seq")) or 0))
    return mine, ignored


def _cap(events: list[Mapping[str, Any]], max_events: int, keep: str
         ) -> list[Mapping[str, Any]]:
    if len(events) <= max_events:
        return events
    return events[-max_events:] if keep == "last" else events[:max_events]


def _bands(events: Sequence[Mapping[str, Any]], end: float) -> list[Band]:
    """A band starts when a JoinGroup answers a higher generation, or a KIP-848 heartbeat a
    higher member epoch, than any before."""
    starts: list[tuple[float, int, bool]] = []
    for ev in events:
        generation = _int(ev.get("generation"))
        api = ev.get("api")
        if generation is None or generation < 0 or ev.get("outcome") != "ok" or ev.get("error"):
            continue
        if api == "JoinGroup" or api in EPOCH_APIS:
            starts.append((event_end(ev) or 0.0, generation, api in EPOCH_APIS))
    starts.sort()
    bands: list[Band] = []
    highest = -1
    for at, generation, epoch in starts:
        if generation <= highest:
            continue
        highest = generation
        if bands:
            bands[-1] = Band(bands[-1].generation, bands[-1].start, at, bands[-1].epoch)
        bands.append(Band(generation, at, end, epoch))
    return bands


def _assignment(ev: Mapping[str, Any]) -> TopicPartitions | None:
    parts = ev.get("assignment")
    if ev.get("api") not in ("SyncGroup", *EPOCH_APIS) or not isinstance(parts, Mapping):
        return None
    return {str(t): [int(p) for p in ps if _int(p) is not None]
            for t, ps in parts.items() if isinstance(ps, list)}


def build_timeline(
    events: Iterable[Mapping[str, Any]],
    group: str,
    harness: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    *,
    max_events: int = DEFAULT_MAX_EVENTS,
    keep: str = "first",
) -> Timeline:
    """The timeline of `group` from event-log dicts; `harness` maps a member's name (`m0`)
    to its harness lines. At most `max_events` exchanges, the first or the `last` ones."""
    if max_events < 1:
        raise ValueError("max_events must be at least 1")
    if keep not in ("first", "last"):
        raise ValueError("keep is 'first' or 'last'")
    mine, ignored = group_events(events, group)
    total = len(mine)
    kept = _cap(mine, max_events, keep)
    members = _Members(kept)
    lanes: dict[str, Lane] = {}
    spans: list[Span] = []
    assignments: list[AssignmentChange] = []
    last_assignment: dict[str, TopicPartitions] = {}
    t0 = min((event_start(e) or 0.0 for e in kept), default=0.0)
    for ev in kept:
        start, end = event_start(ev) or 0.0, event_end(ev) or 0.0
        member = members.member_of(ev)
        client = _text(ev.get("client_id"))
        key = member if member is not None else f"client:{client}"
        lane = lanes.get(key)
        if lane is None:
            lane = lanes[key] = Lane(key, member, client, start)
        lane.row_of(_int(ev.get("connection")), _int(ev.get("broker")))
        fault = ev.get("fault") if isinstance(ev.get("fault"), Mapping) else None
        spans.append(Span(
            seq=_int(ev.get("seq")) or 0, lane=key, connection=_int(ev.get("connection")),
            api=str(ev.get("api")), start=start, end=end, kind=span_kind(ev),
            outcome=str(ev.get("outcome")), generation=_int(ev.get("generation")),
            error=_text(ev.get("error")), rule=_text(fault.get("rule")) if fault else None,
            action=_text(fault.get("action")) if fault else None,
            summary=summary_lines(ev, start - t0),
        ))
        parts = _assignment(ev)
        if parts is not None and last_assignment.get(key) != parts:
            last_assignment[key] = parts
            assignments.append(AssignmentChange(key, end, parts, spans[-1].seq))
    ends = [s.end for s in spans]
    t1 = max(ends, default=t0)
    deliveries, t0, t1 = _deliveries(harness or {}, list(lanes.values()), t0, t1)
    return Timeline(
        group=group, start=t0, end=max(t1, t0 + 1e-3),
        lanes=sorted(lanes.values(), key=lambda lane: lane.first_ts), spans=spans,
        bands=_bands(kept, max(t1, t0 + 1e-3)), assignments=assignments,
        deliveries=deliveries, total_events=total, cut=total - len(kept), kept=keep,
        ignored=ignored,
    )


# ------------------------------------------------------------------------- deliveries


def _records(lines: Sequence[Mapping[str, Any]]) -> tuple[list[tuple[float, tuple[Any, ...]]],
                                                          bool]:
    out: list[tuple[float, tuple[Any, ...]]] = []
    for line in lines:
        if line.get("event") != "record":
            continue
        ts = _num(line.get("ts"))
        if ts is None:
            continue
        if len(out) >= MAX_HARNESS_RECORDS:
            return out, True
        out.append((ts, (line.get("topic"), line.get("partition"), line.get("offset"))))
    return out, False


def _anchor(name: str, lines: Sequence[Mapping[str, Any]], lanes: Sequence[Lane]) -> str | None:
    """The lane of the member a harness file belongs to: by a member id it reported, else
    by a client id that ends with its name (`...-m0`)."""
    reported = {str(line["member_id"]) for line in lines if _text(line.get("member_id"))}
    for lane in lanes:
        if lane.member_id in reported:
            return lane.key
    for lane in lanes:
        if lane.client_id and lane.client_id.endswith(f"-{name}"):
            return lane.key
    return None


def _deliveries(harness: Mapping[str, Sequence[Mapping[str, Any]]], lanes: Sequence[Lane],
                t0: float, t1: float) -> tuple[list[Deliveries], float, float]:
    per_member = {name: _records(lines) for name, lines in sorted(harness.items())}
    times = [ts for records, _ in per_member.values() for ts, _ in records]
    if times:
        if t1 <= t0:  # no exchange drawn: the records alone set the window
            t0, t1 = min(times), max(times)
        else:
            t0, t1 = min(t0, min(times)), max(t1, max(times))
    width = max(t1 - t0, 1e-3)
    seen: set[tuple[Any, ...]] = set()
    ordered = sorted((ts, name, key) for name, (records, _) in per_member.items()
                     for ts, key in records)
    counts = {name: [0] * RATE_BUCKETS for name in per_member}
    duplicates = {name: [0] * RATE_BUCKETS for name in per_member}
    for ts, name, key in ordered:  # a record any member had before is a duplicate
        index = max(min(int((ts - t0) / width * RATE_BUCKETS), RATE_BUCKETS - 1), 0)
        counts[name][index] += 1
        if key in seen:
            duplicates[name][index] += 1
        seen.add(key)
    out = [Deliveries(name, _anchor(name, harness[name], lanes), counts[name],
                      duplicates[name], len(records), cut)
           for name, (records, cut) in per_member.items()]
    return out, t0, t1
