"""The fault-free control: a run that failed an expectation although no fault fired says
something about the client, not about the fault, so the matrix runs that client's
`baseline-no-fault` once (per matrix, per client and group protocol, cached) to tell which.

- The run stays `fails_without_fault` whatever the control says: never `not_exercised` or
  `not_injected`, which would hide a failure.
- A control that fails means the client fails without any fault (the cell says so); one that
  passes means this scenario's set-up trips the client before its fault could fire (e.g. a
  start-up rejoin the rule's match did not foresee).
- A control that could not run (`infra_error`) or was not decided says nothing either way.

The decision and the cache are pure; running the baseline is the runner's (`run` callback).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from kafka_chaos_proxy.lab.matrix.clients import ClientSpec

CONTROL_SCENARIO = "baseline-no-fault"


def needs_control(result: dict[str, Any]) -> bool:
    """Did this run fail an expectation without any fault firing?"""
    return result.get("verdict") == "fails_without_fault"


def control_summary(control: dict[str, Any], evidence: str) -> dict[str, Any]:
    """What a run carries of its control (`result["control"]`); `evidence` is the control
    run's directory relative to the matrix's artifacts."""
    verdict = str(control.get("verdict") or "infra_error")
    reasons = [str(e.get("reason")) for e in control.get("expectations") or []
               if e.get("status") == "fail"]
    if verdict == "infra_error" and not reasons:
        reasons = [str(control.get("detail") or control.get("judge_error") or "")[:300]]
    return {"scenario": CONTROL_SCENARIO,
            "scenario_version": control.get("scenario_version"),
            "protocol": control.get("protocol"),
            "verdict": verdict,
            "fails_without_any_fault": verdict == "fail",
            "reasons": reasons[:3],
            "evidence": evidence}


class FaultFreeControl:
    """Runs the control when a result needs one, once per (client, protocol)."""

    def __init__(self, run: Callable[[ClientSpec, str], dict[str, Any]],
                 log: Callable[[str], None] = print) -> None:
        self.run = run
        self.log = log
        self.cache: dict[tuple[str, str], dict[str, Any]] = {}

    def seed(self, results: Iterable[dict[str, Any]]) -> None:
        """Controls already run (a resumed matrix): their summaries are in the results."""
        for result in results:
            control = result.get("control")
            if isinstance(control, dict) and control.get("protocol"):
                self.cache.setdefault((str(result["client"]), str(control["protocol"])),
                                      control)

    def attach(self, result: dict[str, Any], spec: ClientSpec) -> bool:
        """Give a run that failed without a fault its control (running it if need be); True
        if the result got one."""
        if not needs_control(result):
            return False
        key = (spec.name, str(result.get("protocol")))
        if key not in self.cache:
            self.log(f"{spec.name}: failed without a fault in {result.get('scenario')}; "
                     f"running {CONTROL_SCENARIO} ({key[1]}) as the fault-free control")
            try:
                self.cache[key] = self.run(spec, key[1])
            except Exception as exc:  # the control says nothing; the run keeps its verdict
                self.cache[key] = control_summary(
                    {"verdict": "infra_error", "protocol": key[1],
                     "detail": f"{type(exc).__name__}: {exc}"}, "")
            self.log(f"{spec.name}: fault-free control {self.cache[key]['verdict']}")
        result["control"] = self.cache[key]
        return True
