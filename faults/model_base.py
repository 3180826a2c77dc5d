"""What every user-facing model in `faults` shares: strictness, and the wording of mistakes.

The rule model (`faults.model`) and each action (`faults.actions.*`) are validated by pydantic,
and their messages are the project's UI. Keeping the strict base class and the message helpers
here, below both, lets an action module be written without importing the rule model (which
imports the actions to build its union of them).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, WithJsonSchema, model_validator

from kafka_chaos_proxy.faults.distributions import MAX_DELAY_MS
from kafka_chaos_proxy.faults.names import show

# A rule id: usable in a URL path segment as it is. Rules and the triggers naming them share it.
RULE_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")

# JSON-schema hints only: the validators enforce these ranges with messages that say what to
# write instead, so the schema documents them without pydantic's generic wording winning.
NAME_OR_NUMBER = WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "integer"}]})
MS_RANGE: dict[str, Any] = {"minimum": 0, "maximum": MAX_DELAY_MS}


def unknown_field_message(field: str, allowed: Iterable[str], what: str) -> str:
    """One line naming the unknown field, the likely intended one, and every allowed one."""
    allowed = sorted(allowed)
    close = difflib.get_close_matches(field, allowed, n=1, cutoff=0.6)
    did_you_mean = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown field {show(field)} in {what}; {did_you_mean}allowed: {', '.join(allowed)}"


class StrictModel(BaseModel):
    """Strict, immutable: a typo in a field name is an error, never a silently ignored key.

    `_what` names the object in messages ("match", "action of type 'delay'", ...).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    _what: ClassVar[str] = "rule"

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_fields(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            for key in data:
                if key not in cls.model_fields:
                    raise ValueError(unknown_field_message(str(key), cls.model_fields, cls._what))
        return data


def non_negative_ms(value: int | None, field: str) -> int | None:
    """A millisecond count in 0..MAX_DELAY_MS, or None; otherwise a message naming `field`."""
    if value is None:
        return None
    if value < 0:
        raise ValueError(f"{field} must be >= 0 milliseconds, got {value}")
    if value > MAX_DELAY_MS:
        raise ValueError(f"{field} must be at most {MAX_DELAY_MS} ms (one hour), got {value}")
    return value
