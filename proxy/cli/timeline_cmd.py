"""`kafka-chaos-proxy timeline`: draw a group's rebalance timeline as one SVG file.

From an event-log file (`--events`, e.g. a matrix run's `proxy-events.jsonl.gz` or the file
`run --events-file` writes) or from a running proxy's buffered events (`--admin-url`), with the
records each member delivered when harness lines are given (`--harness m0.jsonl ...`). The
file is self-contained: it opens offline, in any browser, and hovering a span shows the decoded
request and response.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from kafka_chaos_proxy.proxy.cli.admin_client import (
    DEFAULT_ADMIN_URL,
    AdminUrl,
    Token,
    admin_client,
    fail,
)
from kafka_chaos_proxy.proxy.timeline import (
    DEFAULT_MAX_EVENTS,
    build_timeline,
    busiest_group,
    read_harness,
    read_json_lines,
)
from kafka_chaos_proxy.proxy.timeline.svg import render_svg

#: Events fetched per page from the admin API (its own maximum).
PAGE = 10_000


def _from_admin(admin_url: str, token: str | None, group: str | None,
                max_events: int) -> list[dict[str, Any]]:
    """The buffered events (of `group`, when given), paged oldest first, bounded."""
    events: list[dict[str, Any]] = []
    since = 0
    with admin_client(admin_url, token) as client:
        while len(events) < max_events * 4:  # the cap counts the group's exchanges only
            page = client.events(since=since, limit=PAGE, group=group)
            if not page:
                break
            events.extend(page)
            since = int(page[-1]["seq"])
    return events


def timeline(
    output: Annotated[Path, typer.Option("--output", "-o", help="The SVG file to write.",
                                         dir_okay=False)],
    group: Annotated[str | None, typer.Option(
        "--group", "-g", help="The consumer group (default: the one with the most events).",
        show_default=False)] = None,
    events: Annotated[Path | None, typer.Option(
        "--events", help="Event log file: JSON lines or a JSON list, gzipped or not. "
        "Without it the events come from the proxy at --admin-url.", exists=True,
        dir_okay=False, show_default=False)] = None,
    harness: Annotated[list[Path] | None, typer.Option(
        "--harness", help="Harness lines of a member (m0.jsonl[.gz]): its delivered records "
        "as a rate line, duplicates marked. Repeat per member.", exists=True, dir_okay=False,
        show_default=False)] = None,
    max_events: Annotated[int, typer.Option(
        "--max-events", min=1, help="Exchanges drawn at most; the picture says when cut.")
    ] = DEFAULT_MAX_EVENTS,
    last: Annotated[bool, typer.Option(
        "--last", help="When cut, keep the newest exchanges rather than the first.")] = False,
    admin_url: AdminUrl = DEFAULT_ADMIN_URL,
    token: Token = None,
) -> None:
    """Draw a consumer group's rebalance timeline (one lane per member) as an SVG file."""
    if events is not None:
        loaded = list(read_json_lines(events))
    else:
        loaded = _from_admin(admin_url, token, group, max_events)
    chosen = group or busiest_group(loaded)
    if chosen is None:
        fail("no events of any group: nothing to draw (name the group with --group)")
    model = build_timeline(loaded, chosen, read_harness(harness or []),
                           max_events=max_events, keep="last" if last else "first")
    if not model.spans:
        fail(f"no coordination events of group {chosen!r} in the events read")
    output.write_text(render_svg(model), encoding="utf-8")
    cut = f", cut to {len(model.spans)} of {model.total_events}" if model.cut else ""
    typer.echo(f"wrote {output}: group {chosen}, {len(model.lanes)} lane(s), "
               f"{len(model.spans)} exchanges{cut}")


def register(app: typer.Typer) -> None:
    app.command("timeline")(timeline)
