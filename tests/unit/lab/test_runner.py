"""Run planning: stable seeds, round order, and findings-first reordering."""

from __future__ import annotations

from pathlib import Path

from kafka_chaos_proxy.lab.matrix.runner import MatrixOptions, _plan, findings_first, seed_for
from kafka_chaos_proxy.lab.matrix.selection import select
from kafka_chaos_proxy.lab.scenario import parse_scenario

A = parse_scenario({"name": "a", "version": 1, "description": "a"})
B = parse_scenario({"name": "b", "version": 1, "description": "b"})
K = parse_scenario({"name": "k", "version": 1, "description": "k",
                    "setup": {"members": {"protocol": "consumer"}}})


def opts(order: str) -> MatrixOptions:
    return MatrixOptions(clients=["aiokafka", "sarama"], scenarios=[A, B, K], runs=3,
                         out=Path("o"), artifacts=Path("a"), order=order, log=lambda m: None)


def test_round_order_and_protocol_gaps() -> None:
    plan = _plan(opts("round"))
    assert [(p[0].name, p[1].name, p[2]) for p in plan[:6]] == [
        ("aiokafka", "a", 1), ("sarama", "a", 1), ("aiokafka", "b", 1), ("sarama", "b", 1),
        ("aiokafka", "k", 1), ("sarama", "k", 1)]
    assert all(p[3] is None for p in plan if p[1].name == "k")  # neither speaks KIP-848


def test_findings_first_puts_cells_with_a_first_run_finding_ahead() -> None:
    plan = [p for p in _plan(opts("findings-first")) if p[2] > 1 and p[3] is not None]
    results = [{"client": "sarama", "scenario": "b", "run": 1, "outcome": "stalled"},
               {"client": "aiokafka", "scenario": "a", "run": 1, "outcome": "recovered"}]
    ordered = findings_first(plan, results)
    assert [(p[0].name, p[1].name, p[2]) for p in ordered[:2]] == [("sarama", "b", 2),
                                                                  ("sarama", "b", 3)]
    assert sorted(map(id, ordered)) == sorted(map(id, plan))


def test_seeds_are_stable_and_distinct() -> None:
    assert seed_for("sarama", "a", 1) == seed_for("sarama", "a", 1)
    assert seed_for("sarama", "a", 1) != seed_for("sarama", "a", 2)


def test_select_validates_names() -> None:
    assert select(["b,a"], ["a", "b"], "scenario") == ["b", "a"]
    assert select(None, ["a", "b"], "scenario") == ["a", "b"]
    try:
        select(["zz"], ["a"], "scenario")
    except ValueError as exc:
        assert "unknown scenario 'zz'" in str(exc)
    else:
        raise AssertionError("unknown name accepted")
