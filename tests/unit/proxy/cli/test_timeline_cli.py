"""`kafka-chaos-proxy timeline` from a recorded run's files and from the admin API."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from kafka_chaos_proxy.proxy.cli import admin_client, app

RUN = (Path(__file__).resolve().parents[3] / "fixtures" / "evidence"
       / "kafka-python-coordinator-reset-mid-rebalance-2")
NS = {"s": "http://www.w3.org/2000/svg"}


def test_from_files_with_harness(tmp_path: Path) -> None:
    out = tmp_path / "race.svg"
    group = json.loads((RUN / "result.json").read_text())["group"]
    result = CliRunner().invoke(app, [
        "timeline", "--group", group, "--events", str(RUN / "proxy-events.jsonl.gz"),
        "--harness", str(RUN / "m0.jsonl.gz"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"group {group}, " in result.output
    root = ET.parse(out).getroot()
    assert root.attrib["data-group"] == group
    assert root.findall(".//s:rect[@data-outcome='closed']", NS)  # the reset SyncGroup
    assert root.find(".//s:g[@data-source='m0']", NS) is not None


def test_group_defaults_to_the_busiest_and_unknown_group_fails(tmp_path: Path) -> None:
    out = tmp_path / "race.svg"
    events = str(RUN / "proxy-events.jsonl.gz")
    ok = CliRunner().invoke(app, ["timeline", "--events", events, "-o", str(out)])
    assert ok.exit_code == 0 and out.exists()
    missing = CliRunner().invoke(app, ["timeline", "--events", events, "--group", "nope",
                                       "-o", str(tmp_path / "x.svg")])
    assert missing.exit_code == 2 and "no coordination events of group 'nope'" in missing.output
    assert not (tmp_path / "x.svg").exists()


def test_from_the_admin_api_pages_by_seq(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    events = [{"seq": i, "ts": 10.0 + i, "api": "Heartbeat", "group": "g", "connection": 1,
               "client_id": "c", "member_id": "c-1", "generation": 1, "latency_ms": 1.0,
               "outcome": "ok", "error": None, "fault": None} for i in range(1, 4)]
    asked: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/events"
        assert request.headers["authorization"] == "Bearer tok"
        params = dict(request.url.params)
        asked.append(params)
        since = int(params.get("since", 0))
        return httpx.Response(200, json=[e for e in events if e["seq"] > since][:2])

    monkeypatch.setattr(admin_client, "transport", httpx.MockTransport(handler))
    out = tmp_path / "live.svg"
    result = CliRunner().invoke(app, ["timeline", "--group", "g", "--admin-url",
                                      "http://127.0.0.1:1", "--token", "tok", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert [a["since"] for a in asked] == ["0", "2", "3"] and asked[0]["group"] == "g"
    assert len(ET.parse(out).getroot().findall(".//s:rect[@data-seq]", NS)) == 3
