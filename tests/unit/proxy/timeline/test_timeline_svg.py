"""The SVG of a timeline: well-formed whatever the events say, self-contained, and laid out so
that each span sits in its member's lane at its time (checked by element positions)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from kafka_chaos_proxy.proxy.timeline import (
    build_timeline,
    read_harness,
    read_json_lines,
    render_svg,
)

EVIDENCE = Path(__file__).resolve().parents[3] / "fixtures" / "evidence"
JAVA_RESET = EVIDENCE / "java-classic-coordinator-reset-mid-rebalance-1"
NS = {"s": "http://www.w3.org/2000/svg"}


def _svg(run_dir: Path, **kwargs: Any) -> ET.Element:
    events = list(read_json_lines(run_dir / "proxy-events.jsonl.gz"))
    group = json.loads((run_dir / "result.json").read_text())["group"]
    harness = read_harness(sorted(run_dir.glob("m*.jsonl.gz")))
    return ET.fromstring(render_svg(build_timeline(events, group, harness, **kwargs)))


def _f(el: ET.Element, name: str) -> float:
    return float(el.attrib[name])


def test_spans_sit_in_their_lane_in_time_order() -> None:
    root = _svg(JAVA_RESET)
    lanes = root.findall(".//s:g[@class='lane']", NS)
    assert len(lanes) == 2
    extents = {}
    for lane in lanes:
        bg = lane.find("s:rect[@class='lane-bg']", NS)
        assert bg is not None
        extents[lane.attrib["data-lane"]] = (_f(bg, "y"), _f(bg, "y") + _f(bg, "height"))
        for span in lane.findall("s:rect", NS):
            if "span" not in span.attrib.get("class", ""):
                continue
            assert span.attrib["data-lane"] == lane.attrib["data-lane"]
            top, bottom = extents[lane.attrib["data-lane"]]
            assert top <= _f(span, "y") and _f(span, "y") + _f(span, "height") <= bottom
    (l0, l1) = sorted(extents.values())
    assert l0[1] <= l1[0]  # lanes do not overlap
    spans = root.findall(".//s:rect[@data-seq]", NS)
    by_seq = {int(s.attrib["data-seq"]): s for s in spans}
    closed = [s for s in spans if s.attrib["data-outcome"] == "closed"]
    assert [s.attrib["data-api"] for s in closed] == ["SyncGroup"]
    assert closed[0].attrib["data-rule"] == "coordinator-reset-mid-rebalance-1"
    # the reset SyncGroup of member 0 comes after its JoinGroup of the same generation
    join = next(s for s in spans if s.attrib["data-api"] == "JoinGroup"
                and s.attrib["data-lane"] == closed[0].attrib["data-lane"]
                and s.attrib.get("data-generation") == closed[0].attrib["data-generation"])
    assert _f(join, "x") < _f(closed[0], "x")
    assert by_seq[1].find("s:title", NS) is not None
    assert root.findall(".//s:path[@class='rule-mark']", NS)
    assert len(root.findall(".//s:rect[@class='gen']", NS)) == 3
    assert len(root.findall(".//s:g[@class='deliveries']", NS)) == 2


def test_cut_is_said_in_the_picture() -> None:
    root = _svg(JAVA_RESET, max_events=5)
    note = root.find(".//s:text[@class='cut']", NS)
    assert note is not None and note.text is not None
    assert re.search(r"cut: showing the first 5 of \d+ exchanges", note.text)
    assert len(root.findall(".//s:rect[@data-seq]", NS)) == 5


def test_hostile_text_stays_text_and_nothing_links_out() -> None:
    group = "g<script>alert(1)</script>&\"'"
    events = [{"seq": 1, "ts": 10.0, "api": "JoinGroup", "group": group, "connection": 1,
               "client_id": "<img src=x onerror=alert(1)>", "member_id": "m'\"<>",
               "generation": 1, "latency_ms": 1.0, "outcome": "ok", "error": None,
               "fault": {"rule": "r<1>", "action": "error"}, "version": 9,
               "assignment": None, "subscription": ["<t>"]}]
    text = render_svg(build_timeline(events, group))
    root = ET.fromstring(text)  # well-formed
    assert root.attrib["data-group"] == group
    assert "<script" not in text and "<img" not in text
    assert re.findall(r"https?://[^'\"]+", text) == ["http://www.w3.org/2000/svg"]


def test_empty_group_draws_a_sentence() -> None:
    root = ET.fromstring(render_svg(build_timeline([], "nobody")))
    empty = root.find(".//s:text[@class='empty']", NS)
    assert empty is not None and "nobody" in (empty.text or "")
