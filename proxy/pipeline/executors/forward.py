"""FORWARD: no fault. Registered so that every action kind has an executor.

The connection's fast path (`decision.action is ActionKind.FORWARD`) never asks for it; a
decision whose action is the plain string "forward" lands here and is passed through.
"""

from __future__ import annotations

from kafka_chaos_proxy.faults.decision import ActionKind
from kafka_chaos_proxy.proxy.pipeline.executors.base import Executor, register


class Forward(Executor):
    kind = ActionKind.FORWARD


register(Forward())
