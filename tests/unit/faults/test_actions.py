"""The action registry: every action is one module, and everything that lists actions (the
rule model's union, ACTION_TYPES, the engine, the schema) reads the same registry.

The tests iterate the registry, so an action added later is covered by adding its module.
"""

from __future__ import annotations

import hashlib
import random
import sys
import textwrap
import typing
from pathlib import Path
from typing import Any, Literal

import pytest

from kafka_chaos_proxy.faults import model as faults_model
from kafka_chaos_proxy.faults.actions import (
    ACTIONS,
    ActionModel,
    ActionSpec,
    DecideContext,
    _discover,
    _order,
)
from kafka_chaos_proxy.faults.actions.close import CloseAction
from kafka_chaos_proxy.faults.actions.delay import DelayAction
from kafka_chaos_proxy.faults.actions.drop_request import DropRequestAction
from kafka_chaos_proxy.faults.actions.drop_response import DropResponseAction
from kafka_chaos_proxy.faults.actions.error import ErrorAction
from kafka_chaos_proxy.faults.actions.error_after_forward import ErrorAfterForwardAction
from kafka_chaos_proxy.faults.actions.throttle import ThrottleAction
from kafka_chaos_proxy.faults.decision import ActionKind, CloseMode, CloseWhen, Decision, Side
from kafka_chaos_proxy.faults.distributions import draw_delay_ms
from kafka_chaos_proxy.faults.engine import FaultEngine
from kafka_chaos_proxy.faults.model import ACTION_TYPES, Action, FaultRule
from tests.support.fault_fakes import FakeView

ANY = {"any": True}  # a rule that names nothing else to match says so

SPECS = list(ACTIONS.values())


def _noop() -> None:
    pass


def _context(seed: int = 7) -> DecideContext:
    return DecideContext(rule_id="r9", rng=random.Random(seed), on_applied=_noop)


# ------------------------------------------------------------------ the registry


def test_the_built_in_actions_in_their_historical_order() -> None:
    # Messages ("allowed: ...") list ACTION_TYPES in this order; it predates the registry.
    # Actions without an ActionKind member (hold) follow, alphabetically.
    assert ACTION_TYPES == (
        "error", "error_after_forward", "drop_request", "drop_response", "delay", "close",
        "throttle", "hold",
    )  # fmt: skip
    assert set(ACTIONS) >= {kind.value for kind in ActionKind} - {"forward"}


def test_registry_and_action_union_agree() -> None:
    union, info = typing.get_args(Action)
    assert info.discriminator == "type"
    assert typing.get_args(union) == tuple(spec.model for spec in SPECS)
    assert tuple(ACTIONS) == ACTION_TYPES
    schema = FaultRule.model_json_schema()["properties"]["action"]
    refs = [f"#/$defs/{spec.model.__name__}" for spec in SPECS]
    assert [item["$ref"] for item in schema["oneOf"]] == refs
    assert schema["discriminator"]["mapping"] == dict(zip(ACTIONS, refs, strict=True))


def test_faults_model_still_exports_the_action_models() -> None:
    moved = {
        "ErrorAction": ErrorAction,
        "ErrorAfterForwardAction": ErrorAfterForwardAction,
        "DropRequestAction": DropRequestAction,
        "DropResponseAction": DropResponseAction,
        "DelayAction": DelayAction,
        "CloseAction": CloseAction,
        "ThrottleAction": ThrottleAction,
    }
    for name, cls in moved.items():
        assert getattr(faults_model, name) is cls
        assert name in faults_model.__all__
    assert {spec.model for spec in SPECS} >= set(moved.values())


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.kind)
def test_every_action_round_trips_and_decides_its_kind(spec: ActionSpec[Any]) -> None:
    action = spec.model.model_validate(spec.example)
    assert isinstance(action, ActionModel)
    dumped = action.model_dump(mode="json")
    assert next(iter(dumped)) == "type"  # `type` leads every serialized action
    assert spec.model.model_validate(dumped) == action
    rule = FaultRule.model_validate({"match": ANY, "id": "r9", "action": spec.example})
    assert type(rule.action) is spec.model
    assert FaultRule.model_validate(rule.to_json()) == rule
    decision = spec.decide(action, _context())
    assert isinstance(decision, Decision)
    assert decision.action == spec.kind and decision.is_fault
    assert decision.rule_id == "r9" and decision.on_applied is _noop


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.kind)
def test_the_engine_decides_through_the_registry(spec: ActionSpec[Any]) -> None:
    engine = FaultEngine(seed=3)
    engine.add({"match": ANY, "id": "a", "action": spec.example})
    decision = engine.on_request(FakeView(api_key=12))
    assert decision.action == spec.kind and decision.rule_id == "a"
    assert decision.on_applied is not None
    decision.on_applied()
    assert engine.stats("a").injected == 1


def test_built_in_decisions_carry_the_action_fields() -> None:
    def decide(data: dict[str, Any]) -> Decision:
        spec = ACTIONS[data["type"]]
        return spec.decide(spec.model.model_validate(data), _context())

    assert decide({"type": "error", "error": "NOT_COORDINATOR"}) == Decision(
        ActionKind.ERROR, "r9", error_code=16
    )
    assert decide({"type": "error_after_forward", "error": 27}) == Decision(
        ActionKind.ERROR_AFTER_FORWARD, "r9", error_code=27
    )
    assert decide({"type": "drop_request", "close_after_ms": 1500}) == Decision(
        ActionKind.DROP_REQUEST, "r9", close_after_s=1.5
    )
    assert decide({"type": "drop_response"}) == Decision(ActionKind.DROP_RESPONSE, "r9")
    assert decide({"type": "close", "when": "after", "mode": "reset"}) == Decision(
        ActionKind.CLOSE, "r9", close_when=CloseWhen.AFTER, close_mode=CloseMode.RESET
    )
    assert decide({"type": "throttle", "bytes_per_s": 10}) == Decision(
        ActionKind.THROTTLE, "r9", throttle_bytes_per_s=10
    )
    delay = {"type": "delay", "side": "response", "fixed_ms": 100, "jitter_ms": 40,
             "distribution": "normal"}  # fmt: skip
    expected_ms = draw_delay_ms(random.Random(7), 100, 40, "normal")
    assert decide(delay) == Decision(
        ActionKind.DELAY, "r9", side=Side.RESPONSE, delay_s=expected_ms / 1000.0
    )
    # Built-in kinds are the enum members themselves, so the data plane's `is` checks hold.
    assert decide({"type": "drop_response"}).action is ActionKind.DROP_RESPONSE


def _replay(seed: int) -> list[tuple[Any, ...]]:
    engine = FaultEngine(seed=seed)
    for api, action, probability in [
        ("Heartbeat", {"type": "delay", "fixed_ms": 100, "jitter_ms": 80,
                       "distribution": "exponential"}, 0.5),
        ("SyncGroup", {"type": "delay", "side": "response", "fixed_ms": 30, "jitter_ms": 20,
                       "distribution": "normal"}, 0.7),
        ("JoinGroup", {"type": "error", "error": "REBALANCE_IN_PROGRESS"}, 0.3),
        ("OffsetCommit", {"type": "error_after_forward", "error": 25}, 0.4),
        ("Fetch", {"type": "drop_response", "close_after_ms": 1500}, 0.2),
        ("Metadata", {"type": "close", "when": "after", "mode": "reset"}, 0.25),
        ("Produce", {"type": "throttle", "bytes_per_s": 4096}, 0.6),
    ]:  # fmt: skip
        engine.add({"match": {"apis": [api]}, "action": action,
                    "dosage": {"probability": probability}})  # fmt: skip
    # Catch-alls name their APIs: a rule without any spares Metadata and FindCoordinator now.
    every = {"apis": [12, 14, 11, 8, 1, 3, 0, 2, 10]}
    engine.add({"match": every, "action": {"type": "delay", "fixed_ms": 50, "jitter_ms": 50},
                "dosage": {"probability": 0.5}})  # fmt: skip
    engine.add({"match": every, "action": {"type": "drop_request"}})
    out = []
    for key in [12, 14, 11, 8, 1, 3, 0, 2, 10] * 40:
        d = engine.on_request(FakeView(api_key=key))
        out.append((str(d.action), d.rule_id, d.error_code, str(d.side), repr(d.delay_s),
                    str(d.close_when), str(d.close_mode), repr(d.close_after_s),
                    d.throttle_bytes_per_s))  # fmt: skip
    return out


def test_seeded_runs_replay_the_decisions_of_before_the_registry() -> None:
    # The digest was computed with the engine's former isinstance chain: the same seed still
    # gives the same probability draws, the same delays, in the same order.
    runs = [_replay(seed) for seed in (1, 42, 2026)]
    # Each action of before the registry happened (hold came later and has no draws).
    assert {row[0] for run in runs for row in run} == set(ACTION_TYPES) - {"hold"}
    digest = hashlib.sha256(repr(runs).encode()).hexdigest()
    assert digest == "b0bbfbff36a445a3399aaa5ae5b7efd20191a318418f2d3aa84ee6e6411e3b58"


# ------------------------------------------------------------------ declaring an action


class _Zap(ActionModel):
    type: Literal["zap"]


def _zap(action: _Zap, ctx: DecideContext) -> Decision:
    return Decision("zap", ctx.rule_id, plan={"volts": 3}, on_applied=ctx.on_applied)


def test_a_spec_must_match_its_model_and_example() -> None:
    spec = ActionSpec(kind="zap", model=_Zap, decide=_zap, example={"type": "zap"})
    decision = spec.decide(_Zap(type="zap"), _context())
    assert decision.action == "zap" and decision.is_fault and decision.plan == {"volts": 3}
    with pytest.raises(TypeError, match=r"_Zap.type must be Literal\['zip'\]"):
        ActionSpec(kind="zip", model=_Zap, decide=_zap, example={"type": "zip"})
    with pytest.raises(TypeError, match="example of action 'zap' must have type 'zap'"):
        ActionSpec(kind="zap", model=_Zap, decide=_zap, example={"type": "zip"})


def test_a_plain_string_forward_is_no_fault() -> None:
    assert not Decision("forward").is_fault
    assert Decision(ActionKind.ERROR).is_fault


_ZAP_MODULE = '''
from typing import Literal
from kafka_chaos_proxy.faults.actions import ActionModel, ActionSpec
from kafka_chaos_proxy.faults.decision import Decision

class ZapAction(ActionModel):
    type: Literal["{kind}"]

ACTION = ActionSpec(kind="{kind}", model=ZapAction, example={{"type": "{kind}"}},
                    decide=lambda action, ctx: Decision("{kind}", ctx.rule_id))
'''


def _package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str,
             files: dict[str, str]) -> Path:  # fmt: skip
    root = tmp_path / name
    root.mkdir()
    (root / "__init__.py").write_text("")
    for file, text in files.items():
        (root / file).write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path))
    for module in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
        monkeypatch.delitem(sys.modules, module)
    return root


def test_discovery_finds_a_new_module_and_skips_helpers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _package(tmp_path, monkeypatch, "more_actions", {
        "zap.py": _ZAP_MODULE.format(kind="zap"),
        "buzz.py": _ZAP_MODULE.format(kind="buzz"),
        "_helpers.py": "X = 1\n",
    })  # fmt: skip
    found = _discover([str(root)], "more_actions")
    assert list(found) == ["buzz", "zap"]
    assert found["zap"].decide(found["zap"].model(type="zap"), _context()).action == "zap"


@pytest.mark.parametrize(
    ("files", "message"),
    [({"zap.py": "X = 1\n"}, "more_actions.zap must define ACTION = ActionSpec"),
     ({"zap.py": _ZAP_MODULE.format(kind="buzz")}, "registers action 'buzz'; an action's module "
      "is named after its kind")],
)  # fmt: skip
def test_discovery_rejects_a_module_that_breaks_the_convention(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str], message: str
) -> None:
    root = _package(tmp_path, monkeypatch, "more_actions", files)
    with pytest.raises(TypeError, match=message):
        _discover([str(root)], "more_actions")


def test_order_puts_built_ins_first_then_the_rest_alphabetically() -> None:
    kinds = ["zap", "throttle", "apple", "error", "delay"]
    assert sorted(kinds, key=_order) == ["error", "delay", "throttle", "apple", "zap"]
