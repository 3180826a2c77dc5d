"""`error`: answer with a synthesized error response; the broker never sees the request."""

from __future__ import annotations

from typing import ClassVar, Literal

from faults.actions._base import ActionSpec
from faults.actions._shared import ErrorActionBase, decide_error
from faults.decision import ActionKind


class ErrorAction(ErrorActionBase):
    """Answer with a synthesized error response; the broker never sees the request."""

    _what: ClassVar[str] = "action of type 'error'"
    type: Literal["error"]


ACTION = ActionSpec(ActionKind.ERROR, ErrorAction, decide_error,
                    {"type": "error", "error": "NOT_COORDINATOR"})
