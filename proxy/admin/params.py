"""Query parameter types the admin API's routes share.

Why a whole-number type of its own: a query parameter arrives as text, and pydantic's lax
integer parsing takes "0.0" or "1e3" as a number, so `?since=0.0` answered 200 where the
OpenAPI document (type integer) promises a 422, and a client's mistake went unseen. Digits
only, an optional sign aside, is what "integer" means in a URL.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator

_DIGITS = re.compile(r"[+-]?[0-9]+")


def _digits_only(value: object) -> object:
    if isinstance(value, str) and not _DIGITS.fullmatch(value.strip()):
        raise ValueError(f"{value!r} is not a whole number: write it in digits, e.g. 42")
    return value


WholeNumber = Annotated[int, BeforeValidator(_digits_only)]
