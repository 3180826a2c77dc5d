"""Fault execution: one module per action kind, found through a registry keyed by the kind.

Recipe: an action's executor is one module in this package. It subclasses `base.Executor`,
sets `kind` to the action's string (an `ActionKind` member, or a plain string for an action
that has none), implements `on_request` and, if the action touches responses, `on_response`,
and registers an instance with `register(...)` when imported. This package imports every
module in it on its own first import (`pkgutil.iter_modules`), so adding an action needs no
edit anywhere else in the proxy.

Executors act on the connection only through `base.FaultTarget`. The connection looks an
executor up only when a decision is a fault (`decision.action is not ActionKind.FORWARD`): the
pass-through path never touches the registry.
"""

from __future__ import annotations

import importlib
import pkgutil

from kafka_chaos_proxy.proxy.pipeline.executors.base import (
    EXECUTORS,
    Executor,
    FaultTarget,
    executor_for,
    register,
)

__all__ = ["EXECUTORS", "Executor", "FaultTarget", "executor_for", "register"]


def _discover() -> None:
    for info in pkgutil.iter_modules(__path__):
        if info.name != "base":
            importlib.import_module(f"{__name__}.{info.name}")


_discover()
