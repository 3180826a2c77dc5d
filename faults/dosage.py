"""How much of a rule's matching traffic actually gets the fault.

Checks run in a fixed order (window, skip_first, max_injections, probability) and the
probability draw comes last, from the engine's seeded RNG, and only when p < 1: so the random
stream, and with it every later delay, depends only on the seed and the requests that reached
that point — the property that makes a seeded run reproducible.

`max_injections` caps the decisions *handed out*, not the ones the data plane later confirms
through `Decision.on_applied`: confirmations arrive after the fact (a delayed response, say), and
counting only those would let a burst of concurrent requests overshoot "exactly once".
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from kafka_chaos_proxy.faults.model import Dosage


@dataclass
class DosageState:
    """Per-rule counters; reset whenever the rule is (re-)activated."""

    activated_at: float  # engine clock, seconds
    eligible: int = 0  # matches seen inside the active window
    issued: int = 0  # faults handed out


def in_window(dosage: Dosage, state: DosageState, now: float) -> bool:
    """Whether `now` falls in [start_after, start_after + active_for) since activation."""
    elapsed_ms = (now - state.activated_at) * 1000.0
    if elapsed_ms < dosage.start_after_ms:
        return False
    return dosage.active_for_ms is None or elapsed_ms < dosage.start_after_ms + dosage.active_for_ms


def admit(dosage: Dosage, state: DosageState, now: float, rng: random.Random) -> bool:
    """Called for each request the rule matched; True = inject the fault this time."""
    if not in_window(dosage, state, now):
        return False
    state.eligible += 1
    if state.eligible <= dosage.skip_first:
        return False
    if dosage.max_injections is not None and state.issued >= dosage.max_injections:
        return False
    if dosage.probability < 1.0 and (
        dosage.probability <= 0.0 or rng.random() >= dosage.probability
    ):
        return False
    state.issued += 1
    return True
