"""Draw a `Timeline` as one self-contained SVG document (no script, no font, no link out).

Why SVG written by hand: the picture has to open from a file with no network (a matrix run's
evidence on GitHub, an artifact of a CI job) and be the same picture the live `/ui` page shows,
which fetches this very document. Every drawn thing carries `class` and `data-*` attributes
(lane member, span api/outcome/rule/seq) so that the page can show a span's summary on click
and a browser test can check the picture by element positions rather than by pixels. Hovering
a span shows its `<title>`: the decoded request and response.

All text from events is escaped; nothing from an event becomes markup.
"""

from __future__ import annotations

from collections.abc import Iterable
from xml.sax.saxutils import escape, quoteattr

from kafka_chaos_proxy.proxy.timeline.model import (
    BROKER_ERROR,
    CLOSED,
    DELAYED,
    DROPPED,
    INJECTED,
    KIND_LABELS,
    KINDS,
    OK,
    OTHER,
    AssignmentChange,
    Deliveries,
    Lane,
    Span,
    Timeline,
    partitions_text,
)

COLOURS = {OK: "#3a9a4b", BROKER_ERROR: "#e08a1e", INJECTED: "#d62728", DROPPED: "#8e44ad",
           DELAYED: "#1f77b4", CLOSED: "#222222", OTHER: "#999999"}
LABEL_W = 260
PLOT_W = 1100
RIGHT = 24
TOP = 64  # title, legend
AXIS_H = 22
BAND_H = 18
LANE_HEAD_H = 18
ROW_H = 13
SPAN_H = 9
RATE_H = 26
GAP = 6
MIN_SPAN_W = 1.5
FONT = "font-family='sans-serif'"


def _attrs(**values: object) -> str:
    """`key="value"` pairs, escaped; `data_x` becomes `data-x`; None is left out."""
    parts = []
    for key, value in values.items():
        if value is None:
            continue
        name = key.rstrip("_").replace("_", "-")
        parts.append(f"{name}={quoteattr(str(value))}")
    return " ".join(parts)


#: Characters of a lane's label that fit beside the plot; longer ones keep their end (-m0 ·).
LABEL_CHARS = 38


def _fit(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else "…" + label[-(LABEL_CHARS - 1):]


def _n(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


class _Scale:
    def __init__(self, timeline: Timeline, width: float) -> None:
        self.t0 = timeline.start
        self.per_s = width / timeline.duration
        self.width = width

    def x(self, ts: float) -> float:
        return LABEL_W + min(max((ts - self.t0) * self.per_s, 0.0), self.width)


def _ticks(duration: float) -> list[float]:
    """About ten round steps (0.1, 0.2, 0.5, 1, 2, 5 ... seconds) across the run."""
    raw = duration / 10
    step = 1.0
    for candidate in (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15,
                      30, 60, 120, 300, 600, 1800, 3600):
        step = candidate
        if candidate >= raw:
            break
    count = int(duration / step) + 1
    return [i * step for i in range(min(count, 200))]


def _header(timeline: Timeline, width: float) -> list[str]:
    members = sum(1 for lane in timeline.lanes if lane.member_id)
    title = (f"group {timeline.group}: {members} member(s), {len(timeline.spans)} exchanges, "
             f"{timeline.duration:.2f} s")
    out = [f"<text x='8' y='18' font-size='14' font-weight='bold' {FONT} class='title'>"
           f"{escape(title)}</text>"]
    x = 8.0
    for kind in KINDS:
        out.append(f"<rect x='{_n(x)}' y='28' width='12' height='9' fill='{COLOURS[kind]}'/>")
        out.append(f"<text x='{_n(x + 16)}' y='37' font-size='11' {FONT}>"
                   f"{escape(KIND_LABELS[kind])}</text>")
        x += 26 + 6.5 * len(KIND_LABELS[kind])
    out.append(f"<text x='{_n(x)}' y='37' font-size='11' {FONT}>◆ assignment  "
               f"▼ fault rule  | duplicate record</text>")
    notes = []
    if timeline.cut:
        which = "last" if timeline.kept == "last" else "first"
        notes.append(f"cut: showing the {which} {len(timeline.spans)} of "
                     f"{timeline.total_events} exchanges")
    if timeline.ignored:
        notes.append("not drawn: " + ", ".join(f"{n} {api}" for api, n in
                                                sorted(timeline.ignored.items())))
    if notes:
        out.append(f"<text x='8' y='54' font-size='11' fill='#b00' {FONT} class='cut'>"
                   f"{escape('; '.join(notes))}</text>")
    return out


def _axis(scale: _Scale, timeline: Timeline, y: float, height: float) -> list[str]:
    out = []
    for tick in _ticks(timeline.duration):
        x = scale.x(timeline.start + tick)
        out.append(f"<line x1='{_n(x)}' x2='{_n(x)}' y1='{_n(y + 14)}' y2='{_n(y + height)}' "
                   "stroke='#e4e4e4' stroke-width='1'/>")
        out.append(f"<text x='{_n(x)}' y='{_n(y + 11)}' font-size='10' text-anchor='middle' "
                   f"{FONT}>{_n(tick)} s</text>")
    return out


def _bands(scale: _Scale, timeline: Timeline, y: float, height: float) -> list[str]:
    out = []
    for i, band in enumerate(timeline.bands):
        x1, x2 = scale.x(band.start), scale.x(band.end)
        fill = "#f3f6fb" if i % 2 == 0 else "#fbf8f1"
        name = "epoch" if band.epoch else "gen"
        out.append(f"<rect {_attrs(class_='gen', data_generation=band.generation)} "
                   f"x='{_n(x1)}' y='{_n(y)}' width='{_n(max(x2 - x1, 1))}' "
                   f"height='{_n(height)}' fill='{fill}' stroke='#d8dce4' stroke-width='0.5'>"
                   f"<title>{name} {band.generation}: +{band.start - timeline.start:.3f} s to "
                   f"+{band.end - timeline.start:.3f} s</title></rect>")
        out.append(f"<text x='{_n(x1 + 3)}' y='{_n(y + 13)}' font-size='11' {FONT}>"
                   f"{name} {band.generation}</text>")
    return out


def _span(span: Span, scale: _Scale, y: float, lane_ref: str) -> list[str]:
    x1 = scale.x(span.start)
    width = max(scale.x(span.end) - x1, MIN_SPAN_W)
    attrs = _attrs(class_=f"span k-{span.kind}", data_seq=span.seq, data_api=span.api,
                   data_outcome=span.kind, data_lane=lane_ref, data_connection=span.connection,
                   data_generation=span.generation, data_rule=span.rule)
    title = escape("\n".join(span.summary))
    out = [f"<rect {attrs} x='{_n(x1)}' y='{_n(y)}' width='{_n(width)}' height='{SPAN_H}' "
           f"fill='{COLOURS[span.kind]}'><title>{title}</title></rect>"]
    if span.rule is not None:
        out.append(f"<path {_attrs(class_='rule-mark', data_rule=span.rule, data_seq=span.seq)} "
                   f"d='M{_n(x1 - 3.5)} {_n(y - 5)} h7 l-3.5 4.5 z' fill='#d62728'>"
                   f"<title>{escape(f'rule {span.rule} ({span.action}) on #{span.seq}')}</title>"
                   "</path>")
    return out


def _lane(lane: Lane, ref: str, timeline: Timeline, scale: _Scale, y: float,
          spans: list[Span]) -> tuple[list[str], float]:
    """A member's lane; its spans and markers name it by `ref` (L0, L1...), not by member id,
    which would repeat a long string on every span."""
    height = LANE_HEAD_H + ROW_H * len(lane.rows)
    out = [f"<g {_attrs(class_='lane', data_lane=ref, data_member=lane.member_id, data_client=lane.client_id)}>",  # noqa: E501
           f"<rect class='lane-bg' x='0' y='{_n(y)}' width='{_n(LABEL_W + scale.width)}' "
           f"height='{_n(height)}' fill='none' stroke='#bbb' stroke-width='0.6'/>",
           f"<text x='6' y='{_n(y + 13)}' font-size='11' font-weight='bold' {FONT}>"
           f"{escape(_fit(lane.label))}<title>{escape(lane.member_id or lane.key)}</title>"
           "</text>"]
    for index, row in enumerate(lane.rows):
        row_y = y + LANE_HEAD_H + ROW_H * index
        broker = "bootstrap" if row.broker == -1 else f"broker {row.broker}"
        out.append(f"<text x='18' y='{_n(row_y + 9)}' font-size='9' fill='#555' {FONT}>"
                   f"conn {row.connection} → {escape(broker)}</text>")
    rows = {row.connection: i for i, row in enumerate(lane.rows)}
    for span in spans:
        row_y = y + LANE_HEAD_H + ROW_H * rows.get(span.connection, 0) + (ROW_H - SPAN_H) / 2
        out += _span(span, scale, row_y, ref)
    for change in (c for c in timeline.assignments if c.lane == lane.key):
        x = scale.x(change.at)
        label = _short_parts(change)
        out.append(f"<g {_attrs(class_='assign', data_lane=ref, data_seq=change.seq)}>"
                   f"<path d='M{_n(x)} {_n(y + 3)} l4 5 l-4 5 l-4 -5 z' fill='#444'/>"
                   f"<text x='{_n(x + 6)}' y='{_n(y + 12)}' font-size='9' {FONT}>"
                   f"{escape(label)}</text><title>"
                   f"{escape('assignment: ' + partitions_text(change.partitions))}</title></g>")
    out.append("</g>")
    return out, height


def _short_parts(change: AssignmentChange) -> str:
    """A marker's label: the partitions alone when there is one topic (it is in the title)."""
    if len(change.partitions) == 1:
        (parts,) = change.partitions.values()
        text = "[" + ",".join(str(p) for p in parts) + "]"
        return text if len(text) <= 40 else text[:39] + "…"
    return partitions_text(change.partitions, 40)


def _rate(deliveries: Deliveries, scale: _Scale, y: float, lane_ref: str | None) -> list[str]:
    peak = max(deliveries.counts, default=0) or 1
    step = scale.width / max(len(deliveries.counts), 1)
    points = " ".join(
        f"{_n(LABEL_W + step * (i + 0.5))},{_n(y + RATE_H - 3 - (RATE_H - 8) * c / peak)}"
        for i, c in enumerate(deliveries.counts))
    label = f"{deliveries.name}: {deliveries.total} records"
    if deliveries.duplicate_total:
        label += f", {deliveries.duplicate_total} dup"
    if deliveries.cut:
        label += " (cut)"
    out = [f"<g {_attrs(class_='deliveries', data_source=deliveries.name, data_lane=lane_ref)}>",
           f"<text x='18' y='{_n(y + 16)}' font-size='10' fill='#2a5d8f' {FONT}>"
           f"{escape(label)}</text>",
           f"<polyline class='rate' points='{points}' fill='none' stroke='#2a5d8f' "
           "stroke-width='1.2'/>"]
    for i, dups in enumerate(deliveries.duplicates):
        if not dups:
            continue
        x = LABEL_W + step * (i + 0.5)
        out.append(f"<line class='dup' {_attrs(data_count=dups)} x1='{_n(x)}' x2='{_n(x)}' "
                   f"y1='{_n(y + 2)}' y2='{_n(y + RATE_H - 2)}' stroke='#d62728' "
                   f"stroke-width='1.5'><title>{dups} duplicate record(s)</title></line>")
    out.append("</g>")
    return out


def _placed(timeline: Timeline) -> Iterable[Lane | Deliveries]:
    """Lanes in order, each followed by the records its member delivered; unmatched
    harness members at the end."""
    anchored = {d.anchor: d for d in timeline.deliveries if d.anchor is not None}
    for lane in timeline.lanes:
        yield lane
        if lane.key in anchored:
            yield anchored[lane.key]
    yield from (d for d in timeline.deliveries if d.anchor is None)


def render_svg(timeline: Timeline, width: int = PLOT_W) -> str:
    scale = _Scale(timeline, float(width))
    by_lane: dict[str, list[Span]] = {}
    for span in timeline.spans:
        by_lane.setdefault(span.lane, []).append(span)
    refs = {lane.key: f"L{i}" for i, lane in enumerate(timeline.lanes)}
    body: list[str] = []
    y: float = TOP + AXIS_H + BAND_H + GAP
    for item in _placed(timeline):
        if isinstance(item, Lane):
            drawn, height = _lane(item, refs[item.key], timeline, scale, y,
                                  by_lane.get(item.key, []))
            body += drawn
            y += height + GAP
        else:
            body += _rate(item, scale, y, refs.get(item.anchor or ""))
            y += RATE_H + GAP
    if not timeline.lanes and not timeline.deliveries:
        body.append(f"<text x='{LABEL_W}' y='{_n(y + 14)}' font-size='12' {FONT} "
                    f"class='empty'>no coordination events of group "
                    f"{escape(timeline.group)}</text>")
        y += 24
    total_h = y + 8
    total_w = LABEL_W + width + RIGHT
    top = TOP + AXIS_H
    parts = [
        "<?xml version='1.0' encoding='UTF-8'?>",
        f"<svg xmlns='http://www.w3.org/2000/svg' class='kcp-timeline' "
        f"{_attrs(data_group=timeline.group)} width='{total_w}' height='{_n(total_h)}' "
        f"viewBox='0 0 {total_w} {_n(total_h)}'>",
        f"<rect x='0' y='0' width='{total_w}' height='{_n(total_h)}' fill='white'/>",
        *_header(timeline, width),
        *_bands(scale, timeline, top, total_h - top - 4),
        *_axis(scale, timeline, TOP, total_h - TOP - 4),
        *body,
        "</svg>",
    ]
    return "\n".join(parts) + "\n"
