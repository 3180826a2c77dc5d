"""`lab.play.play`, the loop of `scenario run` and of the Python API's `run_scenario`, against
a real admin API fed coordination exchanges (tests/support/live_admin.py): rules installed
before `on_started`, a step fired by a proxy event, the rules removed at the end, catalog
names resolved, mistakes reported as `ScenarioProblem`."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from kafka_chaos_proxy.faults.decision import ActionKind, Decision
from kafka_chaos_proxy.lab.play import play, resolve
from kafka_chaos_proxy.proxy.api import ScenarioProblem, ScenarioResult
from kafka_chaos_proxy.proxy.cli import app
from kafka_chaos_proxy.proxy.client import AdminClient
from tests.support.live_admin import LiveAdmin, heartbeat

SCENARIO = {
    "name": "play-test", "version": 1, "description": "a rule, then a step on its injection",
    "steps": [
        {"description": "the fault", "add": [{
            "id": "play-test-1", "match": {"apis": ["Heartbeat"]},
            "action": {"type": "error", "error": "NOT_COORDINATOR"},
            "dosage": {"max_injections": 1}}]},
        {"description": "after the fault", "on": {"api": "Heartbeat", "injected": True},
         "produce": 5},
    ],
}


@pytest.fixture
def live() -> Iterator[LiveAdmin]:
    admin = LiveAdmin()
    try:
        yield admin
    finally:
        admin.close()


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "play-test.yaml"
    path.write_text(yaml.safe_dump(SCENARIO))
    return path


def test_a_step_fires_on_the_proxy_event_and_the_rules_go_at_the_end(
        live: LiveAdmin, scenario_file: Path) -> None:
    started = threading.Event()
    results: list[ScenarioResult] = []
    lines: list[str] = []
    with AdminClient(live.url) as admin:
        player = threading.Thread(target=lambda: results.append(play(
            scenario_file, admin, duration_s=30, log=lines.append, on_started=started.set)))
        player.start()
        assert started.wait(10)
        assert [r["id"] for r in admin.rules()] == ["play-test-1"]  # before any client
        live.observe(dataclasses.replace(
            heartbeat("g", "m-1", error=16), outcome="error_injected",
            decision=Decision(ActionKind.ERROR, "play-test-1", error_code=16)))
        player.join(30)
        assert not player.is_alive()
        assert admin.rules() == []
    (result,) = results
    assert [s.description for s in result.fired] == ["the fault", "after the fault"]
    assert result.pending == [] and not result.stopped
    assert "proxy event seq 1" in result.steps[1].reason
    assert any("skipped: produce 5" in line for line in lines)
    assert "2 of 2 steps fired" in str(result)


def test_a_stop_ends_the_play_and_says_what_did_not_fire(live: LiveAdmin,
                                                         scenario_file: Path) -> None:
    stop = threading.Event()
    stop.set()
    with AdminClient(live.url) as admin:
        result = play(scenario_file, admin, duration_s=30, stop=stop, keep_rules=True)
        assert [r["id"] for r in admin.rules()] == ["play-test-1"]  # kept, as asked
    assert result.stopped and [s.index for s in result.pending] == [1]


def test_catalog_names_resolve_and_unknown_ones_say_what_is_known() -> None:
    assert resolve("syncgroup-not-coordinator").name == "syncgroup-not-coordinator"
    with pytest.raises(ScenarioProblem, match=r"known: .*syncgroup-not-coordinator"):
        resolve("no-such-scenario")
    with pytest.raises(ScenarioProblem, match="not a catalog name"):
        resolve("./missing/file.yaml")


def test_an_invalid_file_is_a_scenario_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**SCENARIO, "version": 0}))
    with pytest.raises(ScenarioProblem, match="version"):
        resolve(bad)


def test_scenario_run_plays_through_the_same_loop(live: LiveAdmin, scenario_file: Path) -> None:
    result = CliRunner().invoke(app, ["scenario", "run", str(scenario_file), "--admin-url",
                                      live.url, "--duration", "0.5"])
    assert result.exit_code == 0, result.output
    assert "step 0 fired (before start): the fault" in result.output
    assert "steps not fired: ['after the fault']" in result.output
    with AdminClient(live.url) as admin:
        assert admin.rules() == []


def test_scenario_run_says_what_is_wrong(live: LiveAdmin, scenario_file: Path,
                                         tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**SCENARIO, "version": 0}))
    invalid = CliRunner().invoke(app, ["scenario", "run", str(bad), "--admin-url", live.url])
    assert invalid.exit_code == 2 and "version" in invalid.output
    nobody = CliRunner().invoke(app, ["scenario", "run", str(scenario_file), "--admin-url",
                                      "http://127.0.0.1:1"])
    assert nobody.exit_code == 2 and "no proxy answers at http://127.0.0.1:1" in nobody.output
