"""Delay draws: reproducible from a seed, statistically the advertised shape, always bounded.

The statistical checks use many draws and loose bounds (several standard errors), so they are
deterministic for the fixed seeds used here and would still pass for almost any other seed.
"""

from __future__ import annotations

import random
import statistics

import pytest

from kafka_chaos_proxy.faults.distributions import (
    DISTRIBUTIONS,
    MAX_DELAY_MS,
    TAIL_CAP,
    Distribution,
    draw_delay_ms,
)

N = 20_000


def draws(seed: int, fixed: float, jitter: float, dist: Distribution, n: int = N) -> list[float]:
    rng = random.Random(seed)
    return [draw_delay_ms(rng, fixed, jitter, dist) for _ in range(n)]


@pytest.mark.parametrize("dist", DISTRIBUTIONS)
def test_same_seed_same_delays(dist: Distribution) -> None:
    assert draws(7, 100, 50, dist, 200) == draws(7, 100, 50, dist, 200)
    assert draws(7, 100, 50, dist, 200) != draws(8, 100, 50, dist, 200)


def test_no_jitter_is_exact_and_consumes_no_randomness() -> None:
    rng = random.Random(1)
    assert draw_delay_ms(rng, 250, 0, "normal") == 250.0
    assert rng.random() == random.Random(1).random()


def test_uniform_is_centred_on_fixed_within_plus_minus_jitter() -> None:
    values = draws(1, 100, 50, "uniform")
    assert min(values) >= 50 and max(values) <= 150
    assert abs(statistics.fmean(values) - 100) < 1.0  # stderr of the mean ~ 0.2
    assert abs(statistics.pstdev(values) - 50 / 3**0.5) < 1.0


def test_normal_has_mean_fixed_and_sd_jitter() -> None:
    values = draws(2, 500, 40, "normal")
    assert abs(statistics.fmean(values) - 500) < 2.0  # stderr ~ 0.3
    assert abs(statistics.pstdev(values) - 40) < 2.0


def test_exponential_adds_a_tail_with_mean_jitter() -> None:
    values = draws(3, 200, 300, "exponential")
    assert min(values) >= 200
    assert abs(statistics.fmean(values) - 500) < 15.0  # stderr ~ 2
    # Median of an exponential is mean * ln 2.
    assert abs(statistics.median(values) - (200 + 300 * 0.6931)) < 15.0


@pytest.mark.parametrize("dist", DISTRIBUTIONS)
def test_draws_are_clipped_at_zero_and_at_the_tail_cap(dist: Distribution) -> None:
    values = draws(4, 10, 1000, dist, 5000)
    assert min(values) >= 0.0
    assert max(values) <= 10 + TAIL_CAP * 1000


def test_never_longer_than_the_global_maximum() -> None:
    values = draws(5, MAX_DELAY_MS, MAX_DELAY_MS, "exponential", 100)
    assert max(values) <= MAX_DELAY_MS


def test_unknown_distribution_names_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="uniform, normal, exponential"):
        draw_delay_ms(random.Random(0), 1, 1, "pareto")  # type: ignore[arg-type]
