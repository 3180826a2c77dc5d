"""Step firing from recorded event streams: before start, timed, proxy- and harness-triggered."""

from __future__ import annotations

from typing import Any

from kafka_chaos_proxy.lab.matrix.driver import ScenarioDriver
from kafka_chaos_proxy.lab.scenario import parse_scenario


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def add_rule(self, rule: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("add", rule["id"]))
        return rule

    def remove_rule(self, rule_id: str, missing_ok: bool = False) -> None:
        self.calls.append(("remove", rule_id))

    def produce(self, count: int) -> None:
        self.calls.append(("produce", count))

    def start_members(self, count: int) -> None:
        self.calls.append(("start", count))

    def stop_members(self, indexes: list[int]) -> None:
        self.calls.append(("stop", indexes))


RULE = {"id": "r1", "match": {"apis": ["SyncGroup"], "generation_id": 2},
        "action": {"type": "error", "error": "NOT_COORDINATOR"}}
SCENARIO = parse_scenario({
    "name": "d", "version": 1, "description": "d", "setup": {"members": {"count": 2}},
    "steps": [
        {"add": [RULE]},
        {"on": {"api": "SyncGroup", "generation_id": 2, "injected": True}, "produce": 5},
        {"on": {"harness_event": "assigned", "member": 1, "count": 1}, "after_s": 2,
         "remove": ["r1"]},
        {"at": 10, "stop_members": [0]},
    ],
})


def driver() -> tuple[ScenarioDriver, Recorder]:
    rec = Recorder()
    return ScenarioDriver(SCENARIO, rec, rec), rec


def test_steps_fire_on_their_triggers_in_event_order() -> None:
    d, rec = driver()
    d.install_initial(0.0)
    assert rec.calls == [("add", "r1")]
    d.begin(1.0)
    d.on_proxy_event({"seq": 1, "api": "SyncGroup", "generation": 1, "fault": None}, 2.0)
    d.on_proxy_event({"seq": 2, "api": "SyncGroup", "generation": 2, "fault": None}, 2.0)
    assert rec.calls == [("add", "r1")]  # neither matches (wrong generation / not injected)
    d.on_proxy_event({"seq": 3, "api": "SyncGroup", "generation": 2,
                      "fault": {"rule": "r1"}}, 3.0)
    assert rec.calls[-1] == ("produce", 5)
    # an empty assignment does not count; member 0's does not either
    d.on_harness_event(1, {"event": "assigned", "partitions": {}}, 4.0)
    d.on_harness_event(0, {"event": "assigned", "partitions": {"t": [0]}}, 4.0)
    d.on_harness_event(1, {"event": "assigned", "partitions": {"t": [1]}}, 5.0)
    d.tick(6.9)
    assert ("remove", "r1") not in rec.calls  # after_s: 2 s after the trigger
    d.tick(7.0)
    assert rec.calls[-1] == ("remove", "r1")
    assert d.pending() == ["step 3"]
    d.tick(11.0)
    assert rec.calls[-1] == ("stop", [0])
    assert d.pending() == []
    assert [s["fired_at"] for s in d.report()] == [0.0, 3.0, 7.0, 11.0]


def test_a_failing_action_is_recorded_and_later_steps_still_run() -> None:
    class Broken(Recorder):
        def add_rule(self, rule: dict[str, Any]) -> dict[str, Any]:
            raise RuntimeError("422 bad rule")

    rec = Broken()
    d = ScenarioDriver(SCENARIO, rec, rec)
    d.install_initial(0.0)
    assert d.report()[0]["error"] == "add r1: 422 bad rule"
    d.begin(0.0)
    d.tick(10.0)
    assert rec.calls[-1] == ("stop", [0])


def test_rules_of_a_proxy_triggered_step_are_armed_inside_the_proxy() -> None:
    class Keep(Recorder):
        rules: list[dict[str, Any]] = []

        def add_rule(self, rule: dict[str, Any]) -> dict[str, Any]:
            self.rules.append(rule)
            return super().add_rule(rule)

    scenario = parse_scenario({
        "name": "c", "version": 1, "description": "c",
        "steps": [
            {"add": [RULE]},
            {"on": {"api": "SyncGroup", "injected": True, "occurrence": 2},
             "add": [{"id": "r2", "match": {"apis": ["Heartbeat"]},
                      "action": {"type": "error", "error": "NOT_COORDINATOR"}}],
             "produce": 5},
        ],
    })
    rec = Keep()
    d = ScenarioDriver(scenario, rec, rec)
    d.install_initial(0.0)
    # Both rules go in before the members start; r2 waits for its event in the proxy.
    assert [r["id"] for r in rec.rules] == ["r1", "r2"]
    assert rec.rules[1]["when"] == {"after": {"api": "SyncGroup", "injected": True},
                                    "count": 2}
    d.begin(1.0)
    for seq in (1, 2):
        d.on_proxy_event({"seq": seq, "api": "SyncGroup", "fault": {"rule": "r1"}}, 2.0)
    # The step's other actions still fire from the event stream; its rule is not added twice.
    assert rec.calls[-1] == ("produce", 5) and rec.calls.count(("add", "r2")) == 1


def test_a_step_releases_the_holds_of_a_rule() -> None:
    class Releasing(Recorder):
        def release_rule_holds(self, rule_id: str) -> dict[str, Any]:
            self.calls.append(("release", rule_id))
            return {"released": 1, "holds": []}

    hold = {"id": "h", "match": {"apis": ["OffsetCommit"]},
            "action": {"type": "hold", "timeout_ms": 10000}}
    scenario = parse_scenario({
        "name": "r", "version": 1, "description": "r",
        "steps": [{"add": [hold]}, {"on": {"harness_event": "assigned"}, "release": ["h"]}],
    })
    rec = Releasing()
    d = ScenarioDriver(scenario, rec, rec)
    d.install_initial(0.0)
    d.begin(0.0)
    d.on_harness_event(0, {"event": "assigned", "partitions": {"t": [0]}}, 1.0)
    assert rec.calls == [("add", "h"), ("release", "h")]


def test_fetch_samples_never_count_toward_an_api_trigger() -> None:
    from kafka_chaos_proxy.lab.matrix.driver import proxy_event_matches
    from kafka_chaos_proxy.lab.scenario import Trigger

    trigger = Trigger(api="Fetch")
    assert proxy_event_matches(trigger, {"api": "Fetch", "outcome": "ok"})
    assert not proxy_event_matches(trigger, {"api": "Fetch", "outcome": "observed",
                                             "partitions": {"t": [0]}})
