"""Fault actions, one module each, and the registry that finds them.

To add an action, write these two files: ``faults/actions/<kind>.py`` (model + decide) and
``proxy/pipeline/executors/<kind>.py`` (how the data plane carries it out).

* ``faults/actions/<kind>.py``: a pydantic model deriving from `ActionModel` (import it,
  `ActionSpec` and `DecideContext` from ``faults.actions._base``, as the built-in actions do)
  with ``type: Literal["<kind>"]``, its fields and validators (their messages are the UI: name
  the field, say what to write instead); a ``decide(action, ctx)`` returning
  ``ctx.decision("<kind>", plan=...)``, the `faults.decision.Decision` that carries it out
  (draw anything random from ``ctx.rng``; what the data plane needs beyond the shared fields
  travels in ``plan``); and ``ACTION = ActionSpec("<kind>", Model, decide, example)``, the
  example being one valid action as a user writes it.
* ``proxy/pipeline/executors/<kind>.py``: a subclass of ``executors.base.Executor`` with
  ``kind = "<kind>"`` and the hooks it needs, ``on_request`` (the request has arrived) and/or
  ``on_response`` (the broker answered), acting only through the `FaultTarget` interface; the
  module ends with ``register(TheExecutor())``.

Nothing else changes: the rule model's `Action` union and `ACTION_TYPES`, the engine, the admin
API's schema and the CLI's ``faults add --action <kind> --set key=value`` all read this
registry. The module name must equal the kind; modules starting with "_" are helpers, not
actions.

Order: the built-in kinds in `ActionKind` order (the order messages and docs list them in),
then any other kind alphabetically.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from kafka_chaos_proxy.faults.actions._base import ActionModel, ActionSpec, DecideContext
from kafka_chaos_proxy.faults.decision import ActionKind

__all__ = ["ACTIONS", "ActionModel", "ActionSpec", "DecideContext", "spec_for"]

_BUILTIN_ORDER = tuple(kind.value for kind in ActionKind)


def _order(kind: str) -> tuple[int, str]:
    if kind in _BUILTIN_ORDER:
        return _BUILTIN_ORDER.index(kind), ""
    return len(_BUILTIN_ORDER), kind


def _discover(path: Iterable[str], package: str) -> dict[str, ActionSpec[Any]]:
    """Import every action module of `package` (found on `path`) and collect its `ACTION`."""
    found: dict[str, ActionSpec[Any]] = {}
    for info in pkgutil.iter_modules(path):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        spec = getattr(module, "ACTION", None)
        if not isinstance(spec, ActionSpec):
            raise TypeError(f"{module.__name__} must define ACTION = ActionSpec(...)")
        if spec.kind != info.name:
            raise TypeError(
                f"{module.__name__} registers action {spec.kind!r}; an action's module is "
                f"named after its kind ({package}.{spec.kind})"
            )
        found[spec.kind] = spec
    return {kind: found[kind] for kind in sorted(found, key=_order)}


# kind -> spec, in the order described above; read-only so no caller re-registers at runtime
# (the rule model's union is built once, at import).
ACTIONS: Mapping[str, ActionSpec[Any]] = MappingProxyType(_discover(__path__, __name__))


def spec_for(kind: str) -> ActionSpec[Any]:
    """The registered action `kind` (KeyError for an unknown kind: validation rules them out)."""
    return ACTIONS[kind]
