"""Delay jitter drawn from a named distribution.

Draws come from the engine's seeded `random.Random`, never the global one, so a seed plus a
request sequence replays the same delays: a flaky rebalance race found once can be rerun.

The shapes follow what network emulators (netem, toxiproxy) taught users to expect:
* ``uniform``: fixed ± jitter, evenly spread (mean = fixed).
* ``normal``: mean fixed, standard deviation jitter.
* ``exponential``: fixed + an exponential tail with mean jitter: mostly fast, sometimes very slow.
Results are clipped to [0, fixed + TAIL_CAP * jitter] and to MAX_DELAY_MS, because an unbounded
tail would turn a "slow coordinator" rule into a "dead coordinator" one by accident.
"""

from __future__ import annotations

import random
from typing import Literal

Distribution = Literal["uniform", "normal", "exponential"]
DISTRIBUTIONS: tuple[Distribution, ...] = ("uniform", "normal", "exponential")

# Longest delay ever returned (one hour), whatever the parameters.
MAX_DELAY_MS = 3_600_000
# Draws further than this many jitters above the fixed part are clipped (exponential: e^-10).
TAIL_CAP = 10.0


def draw_delay_ms(
    rng: random.Random, fixed_ms: float, jitter_ms: float, distribution: Distribution
) -> float:
    """One delay in milliseconds; no randomness is consumed when there is no jitter."""
    if jitter_ms <= 0:
        return float(min(max(fixed_ms, 0.0), MAX_DELAY_MS))
    if distribution == "uniform":
        value = fixed_ms + rng.uniform(-jitter_ms, jitter_ms)
    elif distribution == "normal":
        value = rng.gauss(fixed_ms, jitter_ms)
    elif distribution == "exponential":
        value = fixed_ms + rng.expovariate(1.0 / jitter_ms)
    else:
        raise ValueError(
            f"unknown distribution {distribution!r}; allowed: {', '.join(DISTRIBUTIONS)}"
        )
    upper = min(fixed_ms + TAIL_CAP * jitter_ms, MAX_DELAY_MS)
    return min(max(value, 0.0), upper)
