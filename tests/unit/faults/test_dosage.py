"""Dosage: skip, cap, probability (seeded) and time windows (fake clock)."""

from __future__ import annotations

import random
from typing import Any

from kafka_chaos_proxy.faults.dosage import DosageState, admit, in_window
from kafka_chaos_proxy.faults.model import Dosage


def run(dosage: dict[str, Any], n: int, seed: int = 0) -> list[bool]:
    d = Dosage.model_validate(dosage)
    state = DosageState(activated_at=0.0)
    rng = random.Random(seed)
    return [admit(d, state, 0.0, rng) for _ in range(n)]


def test_default_admits_everything() -> None:
    assert run({}, 5) == [True] * 5


def test_skip_first() -> None:
    assert run({"skip_first": 2}, 5) == [False, False, True, True, True]


def test_max_injections() -> None:
    assert run({"max_injections": 2}, 5) == [True, True, False, False, False]


def test_skip_then_max() -> None:
    assert run({"skip_first": 1, "max_injections": 1}, 4) == [False, True, False, False]


def test_probability_zero_and_one() -> None:
    assert run({"probability": 0.0}, 50) == [False] * 50
    assert run({"probability": 1.0}, 50) == [True] * 50


def test_probability_is_reproducible_from_the_seed() -> None:
    a = run({"probability": 0.3}, 500, seed=11)
    assert a == run({"probability": 0.3}, 500, seed=11)
    assert a != run({"probability": 0.3}, 500, seed=12)
    assert 100 < sum(a) < 200  # mean 150, sd ~ 10


def test_probability_one_consumes_no_randomness() -> None:
    rng = random.Random(5)
    admit(Dosage(), DosageState(activated_at=0.0), 0.0, rng)
    assert rng.random() == random.Random(5).random()


def test_probability_with_max_counts_only_injections() -> None:
    got = run({"probability": 0.5, "max_injections": 3}, 200, seed=3)
    assert sum(got) == 3


def test_window_start_after_and_active_for() -> None:
    d = Dosage(start_after_ms=1000, active_for_ms=500)
    state = DosageState(activated_at=10.0)
    assert not in_window(d, state, 10.0)
    assert not in_window(d, state, 10.999)
    assert in_window(d, state, 11.0)
    assert in_window(d, state, 11.499)
    assert not in_window(d, state, 11.5)


def test_open_ended_window() -> None:
    d = Dosage(start_after_ms=100)
    state = DosageState(activated_at=0.0)
    assert not in_window(d, state, 0.05)
    assert in_window(d, state, 1e6)


def test_skip_counts_only_matches_inside_the_window() -> None:
    d = Dosage(start_after_ms=1000, skip_first=1)
    state = DosageState(activated_at=0.0)
    rng = random.Random(0)
    assert [admit(d, state, t, rng) for t in (0.0, 0.5, 0.9)] == [False, False, False]
    assert state.eligible == 0
    assert [admit(d, state, t, rng) for t in (1.0, 1.1)] == [False, True]
