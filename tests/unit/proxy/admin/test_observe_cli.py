"""`events tail` and `groups` against a real admin server (uvicorn on 127.0.0.1, port 0)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from kafka_chaos_proxy.proxy.cli import observe_cmd
from kafka_chaos_proxy.proxy.control_plane import (
    ControlPlane,
    ControlPlaneOptions,
    build_control_plane,
)
from kafka_chaos_proxy.proxy.exchange import Exchange


class _NoProxy:
    def list_connections(self) -> list[dict[str, Any]]:
        return []

    def list_brokers(self) -> list[dict[str, Any]]:
        return []


def _heartbeat(group: str, member: str, error: int = 0) -> Exchange:
    return Exchange(
        connection_id=2,
        client_host="127.0.0.1",
        broker_node=1,
        client_id="cli-test",
        api_key=12,
        api_version=4,
        correlation_id=1,
        request_body={"group_id": group, "generation_id": 5, "member_id": member},
        response_body={"error_code": error},
        started_at=1_700_000_000.0,
        latency_s=0.003,
        upstream_latency_s=0.002,
    )


class LiveAdmin:
    """A control plane serving its admin API from an event loop in a background thread."""

    def __init__(self, token: str | None = None, port: int = 0) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.cp: ControlPlane = build_control_plane(
            ControlPlaneOptions(admin_port=port, admin_token=token)
        )
        self.call(self.cp.start(_NoProxy()))
        assert self.cp.admin_url is not None
        self.url: str = self.cp.admin_url

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def observe(self, *exchanges: Exchange) -> None:
        async def run() -> None:
            for ex in exchanges:
                for observer in self.cp.observers:
                    observer.observe(ex)

        self.call(run())

    def close(self) -> None:
        self.call(self.cp.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture
def live() -> Iterator[LiveAdmin]:
    admin = LiveAdmin()
    try:
        yield admin
    finally:
        admin.close()


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    observe_cmd.register(app)
    return app


def test_events_tail_compact_and_json(live: LiveAdmin, cli: typer.Typer) -> None:
    live.observe(_heartbeat("g1", "m-1"), _heartbeat("g2", "m-2"), _heartbeat("g1", "m-3", 27))
    runner = CliRunner()
    args = ["events", "tail", "--admin-url", live.url, "--since", "0", "--group", "g1"]
    result = runner.invoke(cli, [*args, "--limit", "2"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 2
    assert "Heartbeatv4 group=g1 member=m-1 gen=5 -> OK" in lines[0]
    assert "member=m-3" in lines[1] and "-> REBALANCE_IN_PROGRESS" in lines[1]

    result = runner.invoke(cli, [*args, "--limit", "1", "--json", "--api", "Heartbeat"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["seq"] == 1


def test_groups_table_detail_and_json(live: LiveAdmin, cli: typer.Typer) -> None:
    live.observe(_heartbeat("g1", "m-1"), _heartbeat("g1", "m-2"))
    runner = CliRunner()
    result = runner.invoke(cli, ["groups", "--admin-url", live.url])
    assert result.exit_code == 0, result.output
    header, row = result.output.strip().splitlines()
    assert header.split()[:3] == ["GROUP", "KIND", "STATE"]
    assert row.split()[:4] == ["g1", "classic", "stable", "5"]

    result = runner.invoke(cli, ["groups", "g1", "--admin-url", live.url])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("group g1 (classic): stable, generation 5")
    assert "m-1" in result.output and "cli-test" in result.output

    result = runner.invoke(cli, ["groups", "g1", "--json", "--admin-url", live.url])
    assert json.loads(result.output)["member_count"] == 2

    result = runner.invoke(cli, ["groups", "nope", "--admin-url", live.url])
    assert result.exit_code == 2 and "'nope'" in result.output


def test_token_and_unreachable(cli: typer.Typer) -> None:
    admin = LiveAdmin(token="t0k")
    try:
        runner = CliRunner()
        result = runner.invoke(cli, ["groups", "--admin-url", admin.url])
        assert result.exit_code == 2 and "401" in result.output
        result = runner.invoke(cli, ["groups", "--admin-url", admin.url, "--token", "t0k"])
        assert result.exit_code == 0 and "no groups" in result.output
        url = admin.url
    finally:
        admin.close()
    result = CliRunner().invoke(cli, ["groups", "--admin-url", url])
    assert result.exit_code == 1 and "cannot reach" in result.output
    result = CliRunner().invoke(cli, ["events", "tail", "--admin-url", url, "--limit", "1"])
    assert result.exit_code == 1 and "cannot reach" in result.output


def test_escape_sequences_from_clients_never_reach_the_terminal(live: LiveAdmin,
                                                                cli: typer.Typer) -> None:
    evil = "g\x1b]0;pwned\x07\x1b[2J\x9b31m"
    live.observe(_heartbeat(evil, "m\x1b[1A-1"))
    runner = CliRunner()
    outputs = [
        runner.invoke(cli, ["events", "tail", "--admin-url", live.url, "--since", "0",
                            "--limit", "1"]).output,
        runner.invoke(cli, ["events", "tail", "--admin-url", live.url, "--since", "0",
                            "--limit", "1", "--json"]).output,
        runner.invoke(cli, ["groups", "--admin-url", live.url]).output,
    ]
    for output in outputs:
        assert not any(ch in output for ch in "\x1b\x07\x9b"), output
    assert "group=g\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m" in outputs[0]
    assert json.loads(outputs[1])["group"] == evil  # JSON keeps the value, escaped


class _Background:
    """A CLI invocation on a thread, for commands that run until something else happens."""

    def __init__(self, cli: typer.Typer, args: list[str]) -> None:
        self.result: Any = None
        self.thread = threading.Thread(target=self._run, args=(cli, args), daemon=True)
        self.thread.start()

    def _run(self, cli: typer.Typer, args: list[str]) -> None:
        self.result = CliRunner().invoke(cli, args)

    def wait(self, timeout_s: float = 20.0) -> Any:
        self.thread.join(timeout_s)
        assert not self.thread.is_alive(), "the command did not end"
        return self.result


def test_tail_starts_with_the_recent_events_of_its_filter(live: LiveAdmin,
                                                          cli: typer.Typer) -> None:
    live.observe(_heartbeat("g1", "m-1"), _heartbeat("g2", "m-2"), _heartbeat("g1", "m-3"))
    runner = CliRunner()
    result = runner.invoke(cli, ["events", "tail", "--admin-url", live.url, "-g", "g1",
                                 "--limit", "2"])
    assert result.exit_code == 0, result.output
    assert ["member=m-1" in result.output, "member=m-3" in result.output] == [True, True]
    result = runner.invoke(cli, ["events", "tail", "--admin-url", live.url, "--last", "1",
                                 "--limit", "1", "--json"])
    assert json.loads(result.output)["member_id"] == "m-3"
    result = runner.invoke(cli, ["events", "tail", "--admin-url", live.url, "--since", "x"])
    assert result.exit_code == 2 and "--since" in result.output


def test_tail_since_now_shows_only_new_events(live: LiveAdmin, cli: typer.Typer) -> None:
    live.observe(_heartbeat("g1", "m-old"))
    tail = _Background(cli, ["events", "tail", "--admin-url", live.url, "--since", "now",
                             "--limit", "1"])
    time.sleep(1.0)
    live.observe(_heartbeat("g1", "m-new"))
    result = tail.wait()
    assert result.exit_code == 0, result.output
    assert "m-new" in result.output and "m-old" not in result.output


def test_tail_reconnects_to_a_proxy_that_comes_back(cli: typer.Typer,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(observe_cmd, "RECONNECT_DELAYS_S", (0.1,) * 100)
    first = LiveAdmin()
    port = int(first.url.rsplit(":", 1)[1])
    first.observe(_heartbeat("g1", "m-1"), _heartbeat("g1", "m-2"))
    tail = _Background(cli, ["events", "tail", "--admin-url", first.url, "--limit", "4"])
    time.sleep(1.0)
    first.close()  # the proxy goes away...
    time.sleep(0.5)
    second = LiveAdmin(port=port)  # ...and a new one comes up where it was
    try:
        time.sleep(1.0)
        second.observe(_heartbeat("g1", "m-3"), _heartbeat("g1", "m-4"))
        result = tail.wait()
    finally:
        second.close()
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if "Heartbeat" in line]
    assert [line.split("member=")[1].split()[0] for line in lines] == [
        "m-1", "m-2", "m-3", "m-4"]  # each once, in order
    assert f"proxy at {first.url} went away; reconnecting..." in result.stderr
    assert result.stderr.count("went away") == 1


def test_tail_gives_up_on_a_proxy_that_stays_away(cli: typer.Typer,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(observe_cmd, "RECONNECT_DELAYS_S", (0.05, 0.05))
    admin = LiveAdmin()
    tail = _Background(cli, ["events", "tail", "--admin-url", admin.url])
    time.sleep(1.0)
    admin.close()
    result = tail.wait()
    assert result.exit_code == 1
    assert "went away" in result.stderr and "did not come back" in result.stderr


def test_a_fetch_sample_line_shows_what_is_fetched_and_no_answer() -> None:
    from kafka_chaos_proxy.proxy.cli.observe_cmd import compact

    line = compact({"seq": 12, "time": "2025-01-02T03:04:05.678+00:00", "api": "Fetch",
                    "version": 12, "group": None, "partitions": {"t": [0, 2]}, "fetches": 4,
                    "outcome": "observed", "latency_ms": None, "error": None})
    assert line == "    12 03:04:05.678 Fetchv12 fetching={t:[0, 2]} fetches=4 (sample)"
