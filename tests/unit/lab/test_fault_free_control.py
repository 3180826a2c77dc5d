"""The fault-free control: run once per client and protocol when a run fails without its fault,
cached, seeded from a resumed matrix, and never turning the run into not_exercised."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kafka_chaos_proxy.lab.matrix.cell import RunRequest
from kafka_chaos_proxy.lab.matrix.clients import CLIENTS
from kafka_chaos_proxy.lab.matrix.control import FaultFreeControl, control_summary, needs_control

KPY = CLIENTS["kafka-python"]


def result(verdict: str, scenario: str = "s1", protocol: str = "classic") -> dict[str, Any]:
    return {"client": "kafka-python", "scenario": scenario, "run": 1, "protocol": protocol,
            "verdict": verdict}


def baseline(verdict: str) -> dict[str, Any]:
    reasons = {"fail": [{"name": "no_loss", "status": "fail",
                         "reason": "90 of 90 records never consumed"}],
               "pass": [{"name": "no_loss", "status": "pass", "reason": "all 90 consumed"}]}
    return {"scenario": "baseline-no-fault", "scenario_version": 2, "protocol": "classic",
            "verdict": verdict, "expectations": reasons.get(verdict, [])}


def test_only_a_failure_without_a_fault_needs_the_control() -> None:
    assert needs_control(result("fails_without_fault"))
    for verdict in ("pass", "fail", "undecided", "not_exercised", "infra_error"):
        assert not needs_control(result(verdict))


def test_the_control_runs_once_per_client_and_protocol() -> None:
    calls: list[tuple[str, str]] = []

    def run(spec: Any, protocol: str) -> dict[str, Any]:
        calls.append((spec.name, protocol))
        return control_summary(baseline("fail"), f"{spec.name}/baseline-no-fault/control")

    controls = FaultFreeControl(run, log=lambda m: None)
    first, second = result("fails_without_fault"), result("fails_without_fault", "s2")
    other = result("fails_without_fault", "s3", protocol="consumer")
    passed = result("pass")
    for r in (first, second, other, passed):
        controls.attach(r, KPY)
    assert calls == [("kafka-python", "classic"), ("kafka-python", "consumer")]
    assert first["control"] == second["control"]
    assert first["verdict"] == "fails_without_fault"  # the run keeps its verdict
    assert first["control"]["fails_without_any_fault"] is True
    assert first["control"]["reasons"] == ["90 of 90 records never consumed"]
    assert "control" not in passed


def test_a_passing_control_says_the_client_works_without_a_fault() -> None:
    summary = control_summary(baseline("pass"), "e")
    assert (summary["verdict"], summary["fails_without_any_fault"]) == ("pass", False)


def test_a_control_that_cannot_run_says_nothing_either_way() -> None:
    def run(spec: Any, protocol: str) -> dict[str, Any]:
        raise RuntimeError("the 1-broker cluster did not start")

    controls = FaultFreeControl(run, log=lambda m: None)
    r = result("fails_without_fault")
    controls.attach(r, KPY)
    assert r["control"]["verdict"] == "infra_error"
    assert r["control"]["fails_without_any_fault"] is False
    assert r["control"]["reasons"] == ["RuntimeError: the 1-broker cluster did not start"]


def test_a_resumed_matrix_reuses_the_controls_it_already_ran() -> None:
    def run(spec: Any, protocol: str) -> dict[str, Any]:
        raise AssertionError("must not run again")

    controls = FaultFreeControl(run, log=lambda m: None)
    earlier = {**result("fails_without_fault"), "control": control_summary(baseline("pass"), "e")}
    controls.seed([earlier, result("pass")])
    fresh = result("fails_without_fault", "s9")
    controls.attach(fresh, KPY)
    assert fresh["control"]["verdict"] == "pass"


def test_the_matrix_runs_the_control_once_and_records_it(tmp_path: Path) -> None:
    """Through the matrix loop, with scripted runs: two runs of `a` fail without their fault;
    the client's baseline-no-fault (from the catalog: not among the matrix's scenarios) runs
    once, beside the evidence, and both runs carry its verdict."""
    from tests.support.matrix_fakes import FakeRuns, options, results, run, scenario

    verdicts = {"a": "fails_without_fault", "baseline-no-fault": "fail"}

    class Judged(FakeRuns):
        def __init__(self) -> None:
            super().__init__()
            self.dirs: list[Path] = []

        def __call__(self, req: RunRequest) -> dict[str, Any]:
            out = super().__call__(req)
            out["verdict"] = verdicts.get(req.scenario.name, "pass")
            out["expectations"] = [{"name": "no_loss", "status": "fail",
                                    "reason": f"{req.scenario.name}: 60 of 60 never consumed"}]
            self.dirs.append(req.artifacts)
            return out

    fake = Judged()
    opts = options(tmp_path, ["aiokafka"], [scenario("a")], runs=2)
    summary = run(opts, fake)

    assert fake.calls == [("aiokafka", "a", 1), ("aiokafka", "baseline-no-fault", 0),
                          ("aiokafka", "a", 2)]
    assert fake.dirs[1] == opts.artifacts / "aiokafka" / "baseline-no-fault" / "control-classic"
    first, second = results(opts.artifacts)
    assert first["verdict"] == second["verdict"] == "fails_without_fault"
    assert first["control"] == second["control"]
    assert first["control"]["fails_without_any_fault"] is True
    assert first["control"]["reasons"] == ["baseline-no-fault: 60 of 60 never consumed"]
    written = json.loads((opts.artifacts / "aiokafka" / "a" / "1" / "result.json").read_text())
    assert written["control"] == first["control"]
    [cell] = summary["cells"]
    assert cell["verdict"] == "fails_without_fault" and cell["control"]["verdict"] == "fail"
