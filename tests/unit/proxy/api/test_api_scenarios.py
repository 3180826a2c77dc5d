"""`ChaosProxy.run_scenario` / `start_scenario` reach the lab's player through the
`kafka_chaos_proxy.scenarios` entry point (the product never imports lab) and report which
steps fired; checked against a real admin API fed coordination exchanges."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kafka_chaos_proxy.faults.decision import ActionKind, Decision
from kafka_chaos_proxy.proxy.api import ChaosProxy, ScenarioProblem
from kafka_chaos_proxy.proxy.api.scenarios import player
from tests.support.live_admin import LiveAdmin, heartbeat

SCENARIO = {
    "name": "api-test", "version": 1, "description": "one rule, one step on its injection",
    "steps": [
        {"description": "the fault", "add": [{
            "id": "api-test-1", "match": {"apis": ["Heartbeat"]},
            "action": {"type": "error", "error": "NOT_COORDINATOR"}}]},
        {"description": "after it", "on": {"api": "Heartbeat", "injected": True},
         "produce": 1},
    ],
}


@pytest.fixture
def chaos() -> Iterator[tuple[LiveAdmin, ChaosProxy]]:
    live = LiveAdmin()
    try:
        with ChaosProxy.attach(live.url) as chaos:
            yield live, chaos
    finally:
        live.close()


def test_the_player_is_found_by_entry_point() -> None:
    assert player().__module__ == "kafka_chaos_proxy.lab.play"


def test_a_background_scenario_has_its_rules_in_place_when_started(
        chaos: tuple[LiveAdmin, ChaosProxy], tmp_path: Path) -> None:
    live, proxy = chaos
    path = tmp_path / "api-test.yaml"
    path.write_text(yaml.safe_dump(SCENARIO))
    run = proxy.start_scenario(path, duration_s=30)
    assert [r["id"] for r in proxy.rules()] == ["api-test-1"]
    live.observe(dataclasses.replace(
        heartbeat("g", "m-1", error=16), outcome="error_injected",
        decision=Decision(ActionKind.ERROR, "api-test-1", error_code=16)))
    result = run.wait(30)
    assert run.done and [s.index for s in result.fired] == [0, 1]
    assert proxy.rules() == []
    assert any("skipped: produce 1" in line for line in run.log)


def test_stopping_a_scenario_removes_its_rules(chaos: tuple[LiveAdmin, ChaosProxy]) -> None:
    _, proxy = chaos
    run = proxy.start_scenario("syncgroup-not-coordinator", duration_s=60)
    assert [r["id"] for r in proxy.rules()] == ["syncgroup-not-coordinator-1"]
    result = run.stop()
    assert result.stopped and result.scenario == "syncgroup-not-coordinator"
    assert [s.fired for s in result.steps] == [True, False]
    assert proxy.rules() == []


def test_an_unknown_scenario_fails_the_start(chaos: tuple[LiveAdmin, ChaosProxy]) -> None:
    _, proxy = chaos
    with pytest.raises(ScenarioProblem, match="no scenario 'nope'"):
        proxy.run_scenario("nope")
