"""The driver hands the new step keys to the host in a fixed order, and one failing action
does not keep the others from happening; the cell passes per-member settings to harnesses and
does not end a run while continuous production or a topology action is under way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kafka_chaos_proxy.lab.matrix import cell as cell_module
from kafka_chaos_proxy.lab.matrix.cell import CellRun, RunRequest, member_flags
from kafka_chaos_proxy.lab.matrix.clients import CLIENTS
from kafka_chaos_proxy.lab.matrix.driver import ScenarioDriver
from kafka_chaos_proxy.lab.scenario import parse_scenario


class Host:
    def __init__(self, fail: str | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fail = fail

    def _do(self, *call: Any) -> None:
        self.calls.append(call)
        if call[0] == self.fail:
            raise RuntimeError(f"{call[0]} refused")

    def add_rule(self, rule: dict[str, Any]) -> dict[str, Any]:
        self._do("add", rule["id"])
        return rule

    def remove_rule(self, rule_id: str, missing_ok: bool = False) -> None:
        self._do("remove", rule_id)

    def produce(self, count: int) -> None:
        self._do("produce", count)

    def start_members(self, count: int) -> None:
        self._do("start", count)

    def stop_members(self, indexes: list[int]) -> None:
        self._do("stop", indexes)

    def kill_members(self, indexes: list[int]) -> None:
        self._do("kill", indexes)

    def pause_members(self, indexes: list[int], ms: int) -> None:
        self._do("pause", indexes, ms)

    def resume_members(self, indexes: list[int]) -> None:
        self._do("resume", indexes)

    def produce_rate(self, records_per_s: float, duration_s: float) -> None:
        self._do("produce_rate", records_per_s, duration_s)

    def move_coordinator(self, step: int) -> None:
        self._do("move_coordinator", step)

    def stop_broker(self, step: int, node: str | int, mode: str) -> None:
        self._do("stop_broker", step, node, mode)

    def restart_broker(self, step: int, node: str | int) -> None:
        self._do("restart_broker", step, node)


RULE = {"id": "r1", "match": {"apis": ["Heartbeat"]},
        "action": {"type": "error", "error": "NOT_COORDINATOR"}}
SCENARIO = parse_scenario({
    "name": "d", "version": 1, "description": "d",
    "setup": {"brokers": 3, "members": {"count": 3}},
    "steps": [
        {"on": {"harness_event": "assigned", "member": 1}, "after_s": 2,
         "move_coordinator": True, "produce_rate": {"records_per_s": 20, "duration_s": 30},
         "add": [RULE]},
        {"at": 12, "stop_broker": {"node": "coordinator", "mode": "kill"},
         "kill_members": [2], "pause_members": {"members": [0], "ms": 3000}},
        {"at": 20, "restart_broker": {"node": "stopped"}, "resume_members": [0]},
    ],
})


def test_new_keys_fire_in_order_with_the_step_index() -> None:
    host = Host()
    d = ScenarioDriver(SCENARIO, host, host)
    d.install_initial(0.0)
    d.begin(0.0)
    assigned = {"event": "assigned", "partitions": {"t": [0]}}
    d.on_harness_event(1, assigned, 1.0)
    d.tick(2.5)
    assert host.calls == []  # after_s not over yet
    d.tick(3.0)
    assert host.calls == [("add", "r1"), ("produce_rate", 20, 30), ("move_coordinator", 0)]
    d.tick(12.0)
    assert host.calls[3:] == [("kill", [2]), ("pause", [0], 3000),
                              ("stop_broker", 1, "coordinator", "kill")]
    d.tick(20.0)
    assert host.calls[6:] == [("resume", [0]), ("restart_broker", 2, "stopped")]
    assert d.pending() == []


def test_a_failing_action_is_recorded_and_the_others_still_happen() -> None:
    host = Host(fail="kill")
    d = ScenarioDriver(SCENARIO, host, host)
    d.begin(0.0)
    d.tick(12.0)
    assert [c[0] for c in host.calls] == ["kill", "pause", "stop_broker"]
    report = d.report()[1]
    assert report["error"] == "kill_members: kill refused"


def test_member_flags_apply_the_overrides() -> None:
    scenario = parse_scenario({
        "name": "o", "version": 1, "description": "o",
        "setup": {"members": {"count": 3, "session_timeout_ms": 10000, "overrides": {
            1: {"session_timeout_ms": 45000, "heartbeat_interval_ms": 3000, "commit": "manual",
                "group_instance_id": "fixed-id", "sarama_return_errors": True}}}}})

    def flags(i: int) -> dict[str, str]:
        argv = member_flags(scenario, i, bootstrap="b:1", topic="t", group="g",
                            client_prefix="p", protocol="classic")
        return dict(zip(argv[::2], argv[1::2], strict=True))

    zero, one = flags(0), flags(1)
    assert zero["--session-timeout-ms"] == "10000" and zero["--commit"] == "auto"
    assert "--instance-id" not in zero and "--return-errors" not in zero
    assert (one["--session-timeout-ms"], one["--heartbeat-interval-ms"], one["--commit"]) == \
        ("45000", "3000", "manual")
    assert one["--instance-id"] == "fixed-id" and one["--return-errors"] == "true"
    static = parse_scenario({"name": "s", "version": 1, "description": "s",
                             "setup": {"members": {"count": 2, "membership": "static",
                                                   "overrides": {1: {"group_instance_id":
                                                                     None}}}}})
    argv0 = member_flags(static, 0, bootstrap="b:1", topic="t", group="g", client_prefix="p",
                         protocol="classic")
    argv1 = member_flags(static, 1, bootstrap="b:1", topic="t", group="g", client_prefix="p",
                         protocol="classic")
    assert argv0[argv0.index("--instance-id") + 1] == "p-i0"
    assert "--instance-id" not in argv1


def test_kafka_go_cannot_run_a_scenario_with_a_static_override() -> None:
    scenario = parse_scenario({"name": "s", "version": 1, "description": "s",
                               "setup": {"members": {"count": 2, "overrides": {
                                   0: {"group_instance_id": "a"}}}}})
    assert CLIENTS["kafka-go"].protocol_for_scenario(scenario) is None
    assert CLIENTS["sarama"].protocol_for_scenario(scenario) == "classic"


class FakeProducer:
    def __init__(self, bootstrap: str, topic: str) -> None:
        self.delivered: dict[Any, int] = {}
        self.failures: list[str] = []

    def expected(self) -> set[Any]:
        return set()


class BusyRate:
    records_per_s = 5.0

    def __init__(self) -> None:
        self.running = True

    def busy(self) -> bool:
        return self.running


def test_a_run_does_not_end_while_production_or_a_failover_is_under_way(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(cell_module, "SequenceProducer", FakeProducer)
    req = RunRequest(client=CLIENTS["kafka-python"], scenario=SCENARIO, run=1,
                     protocol="classic", kafka_bootstrap="127.0.0.1:1", artifacts=tmp_path,
                     seed=1)
    run = CellRun(req)
    assert run.topology is not None  # the scenario changes the topology
    driver = ScenarioDriver(SCENARIO, Host(), Host())
    for state in driver.states:
        state.fired_at = 1.0  # nothing left to fire
    rate = BusyRate()
    run.rates.append(rate)  # type: ignore[arg-type]
    assert run._stop_reason(driver, set(), elapsed=5, idle=10) is None
    rate.running = False
    assert run._stop_reason(driver, set(), elapsed=5, idle=10) == ""
    run.topology._pending = 1  # an action still under way
    assert run._stop_reason(driver, set(), elapsed=5, idle=10) is None
    assert str(run._stop_reason(driver, set(), elapsed=5, idle=60)).startswith(
        "steps pending and nothing happening")
    run.topology._pending = 0
    run.topology.close()
