"""Reading values out of decoded Kafka messages (the codec's dicts) without trusting them.

A decoded request or response is whatever a client or broker sent: a field the spec calls an
int32 array may be missing, None, or (from a hostile peer) the wrong shape. The event log and
the Fetch session tracker read such fields with these, so a strange frame yields "no value"
instead of an exception on the data path. Imports nothing of ours.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def int_or_none(value: Any) -> int | None:
    """An int (never a bool, which is an int to Python), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def dict_items(value: Any) -> list[Mapping[str, Any]]:
    """The mapping items of a list (a decoded array of structs); anything else: none."""
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]
