"""The pieces every action module uses: its model's base class and the spec it registers.

Private to the package (the registry skips modules whose name starts with "_"); action modules
import from here, never from `faults.model`, which imports the registry to build its union of
actions.
"""

from __future__ import annotations

import random
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from kafka_chaos_proxy.faults.decision import Decision
from kafka_chaos_proxy.faults.model_base import StrictModel


class ActionModel(StrictModel):
    """Base of every action's model: strict like the rest of a rule, and tagged by `type`."""

    _what: ClassVar[str] = "action"
    # Declared here so that `type` comes first in every serialized action; each subclass
    # narrows it to its own literal (the discriminator).
    type: str


@dataclass(frozen=True, slots=True)
class DecideContext:
    """What the engine hands an action's `decide`, besides the action itself.

    `rng` is the engine's one seeded generator: draw from it (and only from it, and the same
    number of times for the same rule) so that a seeded run replays identically. `on_applied`
    goes into the Decision unchanged; the data plane calls it once the fault really happened.
    """

    rule_id: str | None
    rng: random.Random
    on_applied: Callable[[], None]

    def decision(self, kind: str, **fields: Any) -> Decision:
        """This rule's Decision of `kind`, with the action's own fields."""
        return Decision(kind, self.rule_id, on_applied=self.on_applied, **fields)


M = TypeVar("M", bound=ActionModel)


@dataclass(frozen=True, slots=True)
class ActionSpec(Generic[M]):
    """One action as the registry knows it: its `type`, its model, and how it becomes a Decision.

    `decide` runs once per request the rule hits (after the dosage admitted it), on the data
    plane's event loop: it must be quick and must not block. `example` is one valid action as
    a user writes it: the CLI's help shows it and the tests round-trip every action through it.
    """

    kind: str
    model: type[M]
    decide: Callable[[M, DecideContext], Decision]
    example: Mapping[str, Any]

    def __post_init__(self) -> None:
        # A spec whose kind differs from its model's `type` literal would register a model the
        # discriminated union can never select; say so at import time, not on the first rule.
        kind = str(self.kind)
        object.__setattr__(self, "kind", kind)
        field = self.model.model_fields.get("type")
        literal = typing.get_args(field.annotation) if field is not None else ()
        if literal != (kind,):
            raise TypeError(
                f"{self.model.__name__}.type must be Literal[{kind!r}] to register as action "
                f"{kind!r}, got {field.annotation if field is not None else None!r}"
            )
        if self.example.get("type") != kind:
            raise TypeError(f"the example of action {kind!r} must have type {kind!r}")
