"""FORWARD: no fault. Registered so that every action kind has an executor.

The connection's fast path (`decision.action is ActionKind.FORWARD`) never asks for it; a
decision whose action is the plain string "forward" lands here and is passed through.
"""

from __future__ import annotations

from faults.decision import ActionKind
from proxy.pipeline.executors.base import Executor, register


class Forward(Executor):
    kind = ActionKind.FORWARD


register(Forward())
