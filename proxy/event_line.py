"""One coordination event as one line a person reads: the format of `events tail` and of the
pytest plugin's failure report, defined once.

`seq`, the time, `ApiVversion`, then who (group, member, generation, leader), what (topics,
the leader's plan, the assignment received, the coordinator), how it ended (`-> ERROR` or
`-> OK`, an outcome other than ok, the fault that touched it) and the latency. Values come
from clients (group and member ids), so the line is made terminal-safe (`proxy.terminal`).

Imports only the standard library and `proxy.terminal`: a report hook can format events
without loading the CLI.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kafka_chaos_proxy.proxy.terminal import safe


def assignment_text(assignment: dict[str, list[int]] | None) -> str:
    """topic:partitions pairs, e.g. {orders:[0, 1]}; {} for none."""
    if not assignment:
        return "{}"
    return "{" + ",".join(f"{t}:{p}" for t, p in sorted(assignment.items())) + "}"


# (event field, how it is shown) in line order; a field shows only when the event has it.
_WORDS: tuple[tuple[str, Any], ...] = (
    ("group", lambda v: f"group={v}"),
    ("member_id", lambda v: f"member={v}"),
    ("generation", lambda v: f"gen={v}"),
    ("leader", lambda v: f"leader={v}"),
    ("subscription", lambda v: "topics=" + ",".join(v)),
    ("assignments", lambda v: "plan[" + " ".join(
        f"{m}={assignment_text(a)}" for m, a in sorted(v.items())) + "]"),
    ("assignment", lambda v: f"assigned={assignment_text(v)}"),
    ("coordinator", lambda v: f"coordinator={v}"),
    # Fetch samples (`run --fetch-events`): the session's partitions, the requests covered.
    ("partitions", lambda v: f"fetching={assignment_text(v) if isinstance(v, dict) else v}"),
    ("fetches", lambda v: f"fetches={v}"),
)
# Fields whose 0 or empty value is still worth showing.
_SHOWN_WHEN_EMPTY = frozenset({"generation", "assignment", "coordinator", "partitions"})


def _clock(event: dict[str, Any]) -> str:
    try:
        return datetime.fromisoformat(event["time"]).strftime("%H:%M:%S.%f")[:-3]
    except (KeyError, TypeError, ValueError):
        return "?"


def compact(event: dict[str, Any]) -> str:
    """One line per event: when, what, who, which generation, how it ended."""
    words = [f"{event.get('seq', '?'):>6}", _clock(event),
             f"{event.get('api')}v{event.get('version')}"]
    for key, show in _WORDS:
        value = event.get(key)
        if value is not None and (value or key in _SHOWN_WHEN_EMPTY):
            words.append(show(value))
    if event.get("outcome") == "observed":  # a Fetch sample: a request seen, no answer
        words.append("(sample)")
    else:
        words.append(f"-> {event.get('error') or 'OK'}")
    if event.get("outcome") not in (None, "ok", "observed"):
        words.append(f"({event['outcome']})")
    fault = event.get("fault")
    if fault:
        words.append(f"[fault {fault.get('rule')}: {fault.get('action')}]")
    if event.get("latency_ms") is not None:
        words.append(f"{event['latency_ms']:.1f}ms")
    return safe(" ".join(words))
