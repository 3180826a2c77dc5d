"""`kafka-chaos-proxy events tail` and `kafka-chaos-proxy groups`: watch a running proxy.

Both are clients of the admin HTTP API (the live event stream and /groups), so they show
exactly what any other consumer of the API sees. `events tail` prints one compact line per
coordination event (and per Fetch sample of a proxy run with `--fetch-events`), or the event's
JSON with `--json` for piping into jq.

`events tail` starts with the recent buffered events of its filter, because the moment worth
seeing (a consumer's JoinGroup) is usually over by the time a tail started next to it has
connected; `--since now` is live only. A proxy that goes away (restarted, redeployed) costs
one line and a bounded wait: the tail reconnects and resumes after the last seq it printed.

Exit codes match `faults`: 0 ok; 2 refused (4xx, e.g. an unknown group); 1 unreachable or 5xx.
"""

from __future__ import annotations

import contextlib
import json
import time
from datetime import datetime
from typing import Annotated, Any

import typer

from kafka_chaos_proxy.proxy.cli.admin_client import (
    DEFAULT_ADMIN_URL,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    AdminUrl,
    Token,
    admin_client,
    fail,
)
from kafka_chaos_proxy.proxy.cli.terminal import safe
from kafka_chaos_proxy.proxy.client import AdminClient, AdminUnreachable, sse_messages

__all__ = ["compact", "register", "sse_messages"]

events_app = typer.Typer(
    name="events", help="Follow the group-coordination event log.", no_args_is_help=True
)

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]

# Buffered events `events tail` shows first when neither --since nor --last says otherwise.
DEFAULT_REPLAY = 100
# Waits between reconnect attempts after the proxy went away (about a minute in all): long
# enough for a restart, bounded so a tail in a script does not hang forever. Tests shorten it.
RECONNECT_DELAYS_S: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0, *(5.0,) * 10)


def _parts(assignment: dict[str, list[int]] | None) -> str:
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
        f"{m}={_parts(a)}" for m, a in sorted(v.items())) + "]"),
    ("assignment", lambda v: f"assigned={_parts(v)}"),
    ("coordinator", lambda v: f"coordinator={v}"),
    # Fetch samples (`run --fetch-events`): the session's partitions, the requests covered.
    ("partitions", lambda v: f"fetching={_parts(v) if isinstance(v, dict) else v}"),
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


def _since_value(since: str | None) -> int | None:
    """--since: a seq, `now`, or None (not given: replay); a bad value ends with exit 2."""
    if since is None or since == "now":
        return None
    if since.isdigit():
        return int(since)
    fail(f"--since takes an event seq (a number, 0 for every buffered event) or `now`, "
         f"not {since!r}", EXIT_REFUSED)


class _Tail:
    """One `events tail`: where it starts, what it printed, how it gets back after a loss."""

    def __init__(self, client: AdminClient, filters: dict[str, str | None],
                 limit: int | None, as_json: bool) -> None:
        self.client = client
        self.filters = filters
        self.limit = limit
        self.as_json = as_json
        self.printed = 0
        self.last_seq = 0  # the stream resumes after this seq

    def _newest_seq(self) -> int:
        newest = self.client.events(limit=1)
        return int(newest[-1]["seq"]) if newest else 0

    def start(self, since: str | None, last: int) -> None:
        """Where the stream begins; the first call also proves the proxy is reachable (else
        the command ends with exit 1, as every command does)."""
        seq = _since_value(since)
        if seq is not None:
            self.last_seq = seq
            return
        newest = self._newest_seq()  # a seq, not None: nothing between the calls is lost
        if since == "now":
            self.last_seq = newest
            return
        f = self.filters
        recent = self.client.events(limit=last, group=f["group"], member=f["member"],
                                    api=f["api"])
        self.last_seq = int(recent[0]["seq"]) - 1 if recent else newest

    @property
    def done(self) -> bool:
        return self.limit is not None and self.printed >= self.limit

    def follow(self) -> None:
        """Print events until --limit; a stream that ends or breaks is reconnected."""
        while not self.done:
            with contextlib.suppress(AdminUnreachable):
                self._stream()
            if not self.done:
                self._reconnect()

    def _stream(self) -> None:
        left = None if self.limit is None else self.limit - self.printed
        for kind, data in self.client.stream_events(since=self.last_seq, limit=left,
                                                    **self.filters):
            if kind == "dropped":
                typer.echo(f"(fell behind: {json.loads(data)['dropped']} events lost)",
                           err=True)
                continue
            event = json.loads(data)
            typer.echo(json.dumps(event) if self.as_json else compact(event))
            self.last_seq = max(self.last_seq, int(event.get("seq") or 0))
            self.printed += 1

    def _reconnect(self) -> None:
        """Wait for the proxy to come back (bounded); a proxy whose log is behind the last
        seq printed is a new process, whose events are then followed from its first."""
        url = self.client.base_url
        typer.echo(f"proxy at {url} went away; reconnecting...", err=True)
        for delay in RECONNECT_DELAYS_S:
            time.sleep(delay)
            try:
                newest = self._newest_seq()
            except AdminUnreachable:
                continue
            if newest < self.last_seq:
                self.last_seq = 0
                typer.echo(f"proxy at {url} is back (restarted: its events from the first)",
                           err=True)
            else:
                typer.echo(f"proxy at {url} is back", err=True)
            return
        fail(f"proxy at {url} did not come back within {sum(RECONNECT_DELAYS_S):.0f} s",
             EXIT_UNREACHABLE)


@events_app.command("tail")
def tail(
    group: Annotated[str | None, typer.Option("--group", "-g", help="Only this group.")] = None,
    api: Annotated[
        str | None, typer.Option("--api", "-a", help="Only this API (e.g. SyncGroup).")
    ] = None,
    member: Annotated[str | None, typer.Option("--member", help="Only this member id.")] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", metavar="SEQ|now",
                     help="Start after this event seq (0: every buffered event), or `now` "
                     "for live events only. Default: the last --last buffered events."),
    ] = None,
    last: Annotated[
        int, typer.Option("--last", min=1, help="Without --since: how many buffered events "
                          "of the filter to show first.")
    ] = DEFAULT_REPLAY,
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", min=1, help="Stop after this many events.")
    ] = None,
    as_json: AsJson = False,
    admin_url: AdminUrl = DEFAULT_ADMIN_URL,
    token: Token = None,
) -> None:
    """Print the recent coordination events, then new ones as they happen (Ctrl-C to stop).

    If the proxy goes away the tail says so, reconnects when it is back (for about a minute)
    and goes on after the last event it printed."""
    filters = {"group": group, "api": api, "member": member}
    with admin_client(admin_url, token) as client:
        tailer = _Tail(client, filters, limit, as_json)
        try:
            tailer.start(since, last)
            tailer.follow()
        except KeyboardInterrupt:
            return


def table(rows: list[list[str]], header: list[str]) -> str:
    rows = [[safe(str(c)) for c in row] for row in rows]
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)).rstrip()
        for row in [header, *rows]
    ]
    return "\n".join(lines)


def dash(value: Any) -> str:
    return "-" if value is None or value == "" else str(value)


def _rebalance_ms(group: dict[str, Any]) -> str:
    last = group.get("last_rebalance") or {}
    duration = last.get("duration_ms")
    return "-" if duration is None else f"{duration:.0f}"


def groups(
    group_id: Annotated[
        str | None, typer.Argument(help="One group in detail; all groups when omitted.")
    ] = None,
    as_json: AsJson = False,
    admin_url: AdminUrl = DEFAULT_ADMIN_URL,
    token: Token = None,
) -> None:
    """Show consumer groups as seen through the proxy: generation, leader, members."""
    if group_id is None:
        with admin_client(admin_url, token) as client:
            listed = client.groups()
        if as_json:
            typer.echo(json.dumps(listed, indent=2))
            return
        header = ["GROUP", "KIND", "STATE", "GEN", "LEADER", "MEMBERS", "REBALANCES", "LAST_MS"]
        rows = [
            [
                g["group_id"],
                g["kind"],
                g["state"],
                dash(g.get("generation")),
                dash(g.get("leader")),
                str(g["member_count"]),
                str(g["rebalance_count"]),
                _rebalance_ms(g),
            ]
            for g in listed
        ]
        typer.echo(table(rows, header) if rows else "no groups seen yet")
        return
    with admin_client(admin_url, token) as client:
        detail = client.group(group_id)
    if as_json:
        typer.echo(json.dumps(detail, indent=2))
        return
    typer.echo(safe(
        f"group {detail['group_id']} ({detail['kind']}): {detail['state']}, "
        f"generation {dash(detail.get('generation'))}, leader {dash(detail.get('leader'))}, "
        f"protocol {dash(detail.get('protocol_type'))}/{dash(detail.get('protocol'))}, "
        f"{detail['rebalance_count']} rebalances (last {_rebalance_ms(detail)} ms)"
    ))
    if detail.get("last_error"):
        typer.echo(safe(f"last error: {detail['last_error']}"))
    rows = [
        [
            m["member_id"],
            dash(m.get("instance_id")),
            dash(m.get("client_id")),
            dash(m.get("client_host")),
            dash(m.get("generation")),
            _parts(m.get("assignment")) if m.get("assignment") is not None else "-",
        ]
        for m in detail["members"]
    ]
    header = ["MEMBER", "INSTANCE", "CLIENT", "HOST", "GEN", "ASSIGNMENT"]
    typer.echo(table(rows, header) if rows else "no members")


def register(app: typer.Typer) -> None:
    app.add_typer(events_app)
    app.command("groups")(groups)
