"""The engine: CRUD as the admin API uses it, and decisions as the data plane sees them."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from pydantic import ValidationError

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.faults.decision import (
    PASS,
    ActionKind,
    CloseMode,
    CloseWhen,
    Decision,
    FaultDecider,
    Side,
)
from kafka_chaos_proxy.faults.engine import (
    DuplicateRuleError,
    FaultEngine,
    RuleIdMismatchError,
    RuleStats,
    UnknownRuleError,
)
from kafka_chaos_proxy.faults.loader import load_rules_text
from kafka_chaos_proxy.faults.model import FaultRule
from tests.support.fault_fakes import FakeClock, FakeView

ANY = {"any": True}  # a rule that names nothing else to match says so

SYNC = codec.api_key_of("SyncGroup")
HEARTBEAT = codec.api_key_of("Heartbeat")
PRODUCE = codec.api_key_of("Produce")


def sync_error(**extra: Any) -> dict[str, Any]:
    return {
        "match": {"apis": ["SyncGroup"]},
        "action": {"type": "error", "error": "NOT_COORDINATOR"},
        **extra,
    }


def sync_view(**fields: Any) -> FakeView:
    return FakeView(api_key=SYNC, **fields)


# ------------------------------------------------------------------ CRUD


def test_engine_is_a_fault_decider() -> None:
    decider: FaultDecider = FaultEngine()
    assert decider.on_request(sync_view()) is PASS


def test_add_assigns_short_ids_in_order() -> None:
    engine = FaultEngine()
    first = engine.add(FaultRule.model_validate(sync_error()))
    second = engine.add(sync_error())
    assert (first.id, second.id) == ("r1", "r2")
    assert [r.id for r in engine.list()] == ["r1", "r2"]
    assert engine.get("r2") == second


def test_generated_ids_skip_taken_ones() -> None:
    engine = FaultEngine()
    engine.add(sync_error(id="r1"))
    engine.add(sync_error(id="r3"))
    assert [engine.add(sync_error()).id for _ in range(2)] == ["r2", "r4"]


def test_duplicate_id_is_rejected() -> None:
    engine = FaultEngine()
    engine.add(sync_error(id="a"))
    with pytest.raises(DuplicateRuleError, match="'a' exists already"):
        engine.add(sync_error(id="a"))
    assert isinstance(DuplicateRuleError("x"), ValueError)


def test_unknown_id() -> None:
    engine = FaultEngine()
    engine.add(sync_error(id="a"))
    for call in (
        lambda: engine.get("nope"),
        lambda: engine.remove("nope"),
        lambda: engine.stats("nope"),
        lambda: engine.set_enabled("nope", True),
        lambda: engine.patch("nope", {}),
        lambda: engine.replace("nope", sync_error()),
        lambda: engine.rule_json("nope"),
    ):
        with pytest.raises(UnknownRuleError) as info:
            call()
        assert isinstance(info.value, KeyError)
        assert info.value.args[0] == "nope"
        assert str(info.value) == "no fault rule with id 'nope' (rules: a)"


def test_replace_keeps_position_and_resets_stats() -> None:
    engine = FaultEngine()
    engine.add(sync_error(id="a"))
    engine.add(sync_error(id="b"))
    engine.on_request(sync_view())
    assert engine.stats("a").matched == 1
    new = engine.replace("a", {"match": ANY, "action": {"type": "drop_request"}})
    assert new.id == "a" and [r.id for r in engine.list()] == ["a", "b"]
    assert engine.stats("a") == RuleStats(0, 0)
    assert engine.on_request(FakeView(api_key=PRODUCE)).action is ActionKind.DROP_REQUEST


def test_replace_with_a_different_id_is_rejected() -> None:
    engine = FaultEngine()
    engine.add(sync_error(id="a"))
    with pytest.raises(RuleIdMismatchError, match="differs"):
        engine.replace("a", sync_error(id="b"))


def test_patch_merges_nested_fields_and_keeps_stats() -> None:
    engine = FaultEngine()
    engine.add(sync_error(id="a", dosage={"max_injections": 5, "skip_first": 1}))
    engine.on_request(sync_view())
    patched = engine.patch("a", {"dosage": {"probability": 0.5}, "description": "half"})
    assert patched.dosage.probability == 0.5
    assert patched.dosage.max_injections == 5 and patched.dosage.skip_first == 1
    assert patched.description == "half"
    assert engine.stats("a").matched == 1


def test_patch_null_resets_a_field_to_its_default() -> None:
    engine = FaultEngine()
    engine.add(sync_error(id="a", dosage={"max_injections": 5}))
    assert engine.patch("a", {"dosage": {"max_injections": None}}).dosage.max_injections is None


def test_patch_can_change_the_action_type() -> None:
    engine = FaultEngine()
    engine.add(sync_error(id="a"))
    patched = engine.patch("a", {"action": {"type": "delay", "fixed_ms": 10}})
    assert patched.action.type == "delay"
    patched = engine.patch("a", {"action": {"fixed_ms": 20}})
    assert patched.action.model_dump()["fixed_ms"] == 20


def test_patch_is_validated_and_leaves_the_rule_alone_on_error() -> None:
    engine = FaultEngine()
    before = engine.add(sync_error(id="a"))
    with pytest.raises(ValidationError, match="probability must be between"):
        engine.patch("a", {"dosage": {"probability": 3}})
    with pytest.raises(ValidationError, match="unknown field 'grup_id'"):
        engine.patch("a", {"match": {"grup_id": "g"}})
    with pytest.raises(RuleIdMismatchError):
        engine.patch("a", {"id": "b"})
    assert engine.get("a") == before
    assert engine.patch("a", {"id": "a"}) == before


def test_remove_and_clear() -> None:
    engine = FaultEngine()
    for _ in range(3):
        engine.add(sync_error())
    assert engine.remove("r2").id == "r2"
    assert [r.id for r in engine.list()] == ["r1", "r3"]
    assert engine.clear() == 2
    assert engine.list() == [] and engine.clear() == 0


def test_rule_json_is_the_rule_plus_stats() -> None:
    engine = FaultEngine()
    engine.add(sync_error(id="a"))
    body = engine.rule_json("a")
    assert body["id"] == "a"
    assert body["action"] == {"type": "error", "error": "NOT_COORDINATOR",
                              "broker_consistent": False}
    assert body["match"]["apis"] == ["SyncGroup"] and body["match"]["group_id"] is None
    assert body["dosage"]["probability"] == 1.0
    assert body["stats"] == {"matched": 0, "injected": 0}
    assert engine.list_json() == [body]


def test_export_and_load_round_trip() -> None:
    engine = FaultEngine()
    engine.add(sync_error(description="first"))
    engine.add({"match": ANY, "enabled": False, "action": {"type": "close", "mode": "reset"}})
    for fmt in ("yaml", "json"):
        other = FaultEngine()
        loaded = other.load(load_rules_text(engine.export(fmt), fmt))
        assert loaded == engine.list()


def test_load_is_all_or_nothing() -> None:
    engine = FaultEngine()
    engine.add(sync_error(id="a"))
    with pytest.raises(DuplicateRuleError):
        engine.load([sync_error(id="b"), sync_error(id="a")])
    with pytest.raises(DuplicateRuleError):
        engine.load([sync_error(id="c"), sync_error(id="c")])
    assert [r.id for r in engine.list()] == ["a"]


def test_load_replace() -> None:
    engine = FaultEngine()
    engine.add(sync_error(id="a"))
    loaded = engine.load([sync_error(id="a"), sync_error()], replace=True)
    assert [r.id for r in loaded] == ["a", "r1"]


# ------------------------------------------------------------------ decisions


def test_no_rules_pass_without_decoding() -> None:
    view = sync_view()
    assert FaultEngine().on_request(view) is PASS and view.body_calls == 0


def test_error_decision_and_stats() -> None:
    engine = FaultEngine()
    engine.add(sync_error(id="a"))
    decision = engine.on_request(sync_view())
    assert decision.action is ActionKind.ERROR
    assert decision.rule_id == "a" and decision.error_code == 16 and decision.is_fault
    assert engine.stats("a") == RuleStats(matched=1, injected=0)
    assert decision.on_applied is not None
    decision.on_applied()
    decision.on_applied()  # confirmed twice, counted once
    assert engine.stats("a") == RuleStats(matched=1, injected=1)
    assert engine.on_request(FakeView(api_key=PRODUCE)) is PASS


@pytest.mark.parametrize(
    ("action", "expected"),
    [({"type": "error_after_forward", "error": "REBALANCE_IN_PROGRESS"},
      {"action": ActionKind.ERROR_AFTER_FORWARD, "error_code": 27}),
     ({"type": "drop_request"}, {"action": ActionKind.DROP_REQUEST, "close_after_s": None}),
     ({"type": "drop_response", "close_after_ms": 5000},
      {"action": ActionKind.DROP_RESPONSE, "close_after_s": 5.0}),
     ({"type": "delay", "side": "response", "fixed_ms": 250},
      {"action": ActionKind.DELAY, "side": Side.RESPONSE, "delay_s": 0.25}),
     ({"type": "close", "when": "after", "mode": "reset"},
      {"action": ActionKind.CLOSE, "close_when": CloseWhen.AFTER, "close_mode": CloseMode.RESET}),
     ({"type": "close"},
      {"action": ActionKind.CLOSE, "close_when": CloseWhen.BEFORE,
       "close_mode": CloseMode.GRACEFUL}),
     ({"type": "throttle", "bytes_per_s": 1000},
      {"action": ActionKind.THROTTLE, "throttle_bytes_per_s": 1000})],
)  # fmt: skip
def test_each_action_becomes_its_decision(action: dict[str, Any], expected: dict[str, Any]) -> None:
    engine = FaultEngine()
    engine.add({"match": ANY, "action": action})
    decision = engine.on_request(sync_view())
    for name, value in expected.items():
        assert getattr(decision, name) == value, name


def test_first_matching_rule_wins_in_insertion_order() -> None:
    engine = FaultEngine()
    engine.add({"match": {"apis": ["Heartbeat"]}, "action": {"type": "drop_request"}})
    engine.add(sync_error(id="sync"))
    engine.add({"match": ANY, "action": {"type": "close"}, "id": "catch-all"})
    assert engine.on_request(sync_view()).rule_id == "sync"
    assert engine.on_request(FakeView(api_key=HEARTBEAT)).rule_id == "r1"
    assert engine.on_request(FakeView(api_key=PRODUCE)).rule_id == "catch-all"


def test_a_dosed_out_rule_lets_later_rules_decide() -> None:
    engine = FaultEngine()
    engine.add(sync_error(id="once", dosage={"max_injections": 1}))
    engine.add({"match": ANY, "id": "then", "action": {"type": "drop_response"}})
    assert [engine.on_request(sync_view()).rule_id for _ in range(3)] == ["once", "then", "then"]
    assert engine.stats("once").matched == 3


def test_disabled_rules_neither_match_nor_count() -> None:
    engine = FaultEngine()
    engine.add(sync_error(id="a", enabled=False))
    assert engine.on_request(sync_view()) is PASS
    assert engine.stats("a").matched == 0
    assert engine.set_enabled("a", True).enabled
    assert engine.on_request(sync_view()).rule_id == "a"
    assert not engine.set_enabled("a", False).enabled
    assert engine.on_request(sync_view()) is PASS


def test_max_injections_counts_decisions_not_yet_confirmed() -> None:
    engine = FaultEngine()
    engine.add(sync_error(id="a", dosage={"max_injections": 1}))
    first = engine.on_request(sync_view())
    assert first.is_fault
    assert engine.on_request(sync_view()) is PASS  # first not confirmed yet: still exhausted


def test_skip_first_then_inject() -> None:
    engine = FaultEngine()
    engine.add(sync_error(dosage={"skip_first": 2, "max_injections": 1}))
    got = [engine.on_request(sync_view()).is_fault for _ in range(5)]
    assert got == [False, False, True, False, False]


def test_windows_count_from_add_and_restart_on_enable(clock: FakeClock) -> None:
    engine = FaultEngine(clock=clock)
    engine.add(sync_error(id="a", dosage={"start_after_ms": 1000, "active_for_ms": 2000}))
    assert not engine.on_request(sync_view()).is_fault
    clock.advance_ms(1000)
    assert engine.on_request(sync_view()).is_fault
    clock.advance_ms(1999)
    assert engine.on_request(sync_view()).is_fault
    clock.advance_ms(1)
    assert not engine.on_request(sync_view()).is_fault
    engine.set_enabled("a", False)
    engine.set_enabled("a", True)  # a fresh activation: the window starts again
    assert not engine.on_request(sync_view()).is_fault
    clock.advance_ms(1000)
    assert engine.on_request(sync_view()).is_fault


def test_enable_on_an_enabled_rule_changes_nothing(clock: FakeClock) -> None:
    engine = FaultEngine(clock=clock)
    engine.add(sync_error(id="a", dosage={"max_injections": 1}))
    assert engine.on_request(sync_view()).is_fault
    engine.set_enabled("a", True)
    assert not engine.on_request(sync_view()).is_fault


def test_re_enable_restarts_skip_and_max_but_not_stats() -> None:
    engine = FaultEngine()
    engine.add(sync_error(id="a", dosage={"max_injections": 1}))
    engine.on_request(sync_view()).on_applied()  # type: ignore[misc]
    engine.set_enabled("a", False)
    engine.set_enabled("a", True)
    assert engine.on_request(sync_view()).is_fault
    assert engine.stats("a") == RuleStats(matched=2, injected=1)


def seeded_run(seed: int) -> list[Decision]:
    engine = FaultEngine(seed=seed)
    engine.add(
        {
            "match": {"apis": ["Heartbeat"]},
            "action": {"type": "delay", "fixed_ms": 100, "jitter_ms": 80,
                       "distribution": "exponential"},
            "dosage": {"probability": 0.5},
        }
    )  # fmt: skip
    engine.add({"match": ANY, "action": {"type": "delay", "fixed_ms": 50, "jitter_ms": 50}})
    keys = [HEARTBEAT, SYNC, PRODUCE, HEARTBEAT] * 25
    return [engine.on_request(FakeView(api_key=key)) for key in keys]


def test_same_seed_same_decisions() -> None:
    a, b = seeded_run(42), seeded_run(42)
    assert [(d.rule_id, d.delay_s) for d in a] == [(d.rule_id, d.delay_s) for d in b]
    assert [(d.rule_id, d.delay_s) for d in a] != [(d.rule_id, d.delay_s) for d in seeded_run(43)]
    assert len({d.delay_s for d in a}) > 50  # jitter really varies


def test_observers_see_confirmed_injections() -> None:
    engine = FaultEngine()
    seen: list[tuple[str | None, ActionKind]] = []
    engine.on_injected.append(lambda rule, decision: seen.append((rule.id, decision.action)))
    engine.add(sync_error(id="a"))
    decision = engine.on_request(sync_view())
    assert seen == []
    assert decision.on_applied is not None
    decision.on_applied()
    assert seen == [("a", ActionKind.ERROR)]


def test_a_failing_observer_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    engine = FaultEngine()
    seen: list[str] = []

    def broken(rule: FaultRule, decision: Decision) -> None:
        raise RuntimeError("metrics are down")

    engine.on_injected.extend([broken, lambda rule, decision: seen.append("second")])
    engine.add(sync_error(id="a"))
    decision = engine.on_request(sync_view())
    assert decision.on_applied is not None
    with caplog.at_level(logging.ERROR, logger="kafka_chaos_proxy.faults.engine"):
        decision.on_applied()
    assert seen == ["second"]
    assert engine.stats("a").injected == 1
    assert "observer failed for rule a" in caplog.text


def test_body_rules_decode_once_per_request_at_most() -> None:
    engine = FaultEngine()
    engine.add({"match": {"group_id": "g1"}, "action": {"type": "drop_request"}})
    engine.add({"match": {"member_id": "m9"}, "action": {"type": "drop_request"}})
    view = sync_view(decoded={"group_id": "g0", "member_id": "m0"})
    assert engine.on_request(view) is PASS
    # The view caches the decode in the real data plane; the engine may ask once per rule.
    assert view.body_calls == 2
    produce = FakeView(api_key=PRODUCE)
    assert engine.on_request(produce) is PASS and produce.body_calls == 0


def test_the_rule_count_is_bounded_and_load_is_all_or_nothing() -> None:
    from kafka_chaos_proxy.faults.engine import RuleLimitError

    engine = FaultEngine(max_rules=3)
    for i in range(3):
        engine.add({"id": f"r{i}", "match": ANY, "action": {"type": "close"}})
    with pytest.raises(RuleLimitError, match="at most 3 rules"):
        engine.add({"match": ANY, "action": {"type": "close"}})
    engine.remove("r0")
    with pytest.raises(RuleLimitError):
        engine.load([{"match": ANY, "action": {"type": "close"}}] * 2)
    assert len(engine.list()) == 2
    engine.load([{"match": ANY, "action": {"type": "close"}}] * 3, replace=True)
    assert len(engine.list()) == 3
