"""The rule index narrows, never decides: with it, every request gets exactly the decision a
walk over all rules in order would give (first match wins, `chain` lets later rules act),
whatever the mix of APIs, groups, catch-all rules, removals and replacements."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.faults.engine import FaultEngine
from kafka_chaos_proxy.faults.model import FaultRule
from tests.support.fault_fakes import FakeView

APIS = ["SyncGroup", "Heartbeat", "JoinGroup", "Produce", "Fetch", "OffsetFetch",
        "DescribeGroups", "Metadata"]
GROUP_APIS = ["SyncGroup", "Heartbeat", "JoinGroup", "OffsetFetch"]
GROUPS = ["g1", "g2", "g3"]
UNKNOWN_API_KEY = 32000  # no such API: only rules that name no API may match it

rule_specs = st.fixed_dictionaries({
    "apis": st.one_of(st.none(), st.lists(st.sampled_from(APIS), min_size=1, max_size=3,
                                          unique=True)),
    "group": st.one_of(st.none(), st.sampled_from(GROUPS)),
    "client": st.one_of(st.none(), st.sampled_from(
        ["c1", "c*", "c1x*", "*1", "x?", "[cx]1", "cc*", "c1x", "ü*"])),
    "chain": st.booleans(),
    "enabled": st.booleans(),
})


def rule_of(spec: dict[str, Any]) -> dict[str, Any] | None:
    match: dict[str, Any] = {}
    if spec["group"] is not None:
        match["group_id"] = spec["group"]
        if spec["apis"] is not None:
            apis = [a for a in spec["apis"] if a in GROUP_APIS]
            if not apis:
                return None
            match["apis"] = apis
    elif spec["apis"] is not None:
        match["apis"] = spec["apis"]
    if spec["client"] is not None:
        match["client_id"] = spec["client"]
    if not match:
        match = {"any": True}
    return {"match": match, "action": {"type": "error", "error": "NOT_COORDINATOR"},
            "chain": spec["chain"], "enabled": spec["enabled"]}


def request_of(api: str | None, groups: list[str], client: str) -> FakeView:
    if api is None:
        return FakeView(api_key=UNKNOWN_API_KEY, client_id=client, decoded=None)
    body: dict[str, Any] = {"group_id": groups[0] if groups else "other"}
    if api == "OffsetFetch":  # v8+: a batch of groups
        body = {"groups": [{"group_id": g} for g in groups]}
    return FakeView(api_key=codec.api_key_of(api), client_id=client, decoded=body)


def walked(engine: FaultEngine, view: FakeView) -> list[str]:
    """The rule ids a walk over every rule in order would let act."""
    acting: list[str] = []
    for rule in engine.list():
        entry = engine._entries[rule.id or ""]
        if rule.enabled and entry.compiled.matches(view):
            acting.append(rule.id or "")
            if not rule.chain:
                break
    return acting


def decided(engine: FaultEngine, view: FakeView) -> list[str]:
    decision = engine.on_request(view)
    if decision.rule_id is None:
        return []
    if decision.plan:
        return [step.rule_id for step in decision.plan]  # type: ignore[union-attr]
    return [decision.rule_id]


@settings(max_examples=300, deadline=None)
@given(specs=st.lists(rule_specs, max_size=12),
       removed=st.lists(st.integers(0, 11), max_size=4),
       replaced=st.lists(st.tuples(st.integers(0, 11), rule_specs), max_size=3),
       requests=st.lists(st.tuples(st.one_of(st.none(), st.sampled_from(APIS)),
                                   st.lists(st.sampled_from([*GROUPS, "g9"]), max_size=3),
                                   st.sampled_from(["c1", "c2", "x", "c1xy", "", "üb"])),
                         min_size=1, max_size=8))
def test_indexed_decisions_equal_a_walk_over_every_rule(
        specs: list[dict[str, Any]], removed: list[int],
        replaced: list[tuple[int, dict[str, Any]]],
        requests: list[tuple[str | None, list[str], str]]) -> None:
    engine = FaultEngine(seed=1)
    ids = [engine.add(rule).id for rule in map(rule_of, specs) if rule is not None]
    for i, spec in replaced:
        rule = rule_of(spec)
        if i < len(ids) and rule is not None:
            engine.replace(ids[i] or "", FaultRule.model_validate(rule))
    for i in removed:
        if i < len(ids) and ids[i] is not None:
            engine.remove(ids[i] or "")
            ids[i] = None
    for api, groups, client in requests:
        view = request_of(api, groups, client)
        assert decided(engine, view) == walked(engine, view)
        # Quiet keys are what the data plane forwards without asking: never one a rule
        # (enabled or not) could match for that client, nor for an unknown client.
        quiet = engine.quiet_api_keys(client)
        assert engine.quiet_api_keys(None) <= quiet
        if view.api_key in quiet:
            every = [e for e in engine._entries.values() if e.compiled.matches(view)]
            assert every == [], f"{api} from {client!r} is quiet, yet rules match it"


def test_a_produce_tries_none_of_the_rules_aimed_at_groups() -> None:
    """What the index is for: rules for other APIs are not even looked at (no body decoded,
    no match tested) when a Produce passes."""
    engine = FaultEngine()
    for n in range(500):
        engine.add({"match": {"apis": ["SyncGroup"], "group_id": f"g{n}"},
                    "action": {"type": "error", "error": "NOT_COORDINATOR"}})
    produce = codec.api_key_of("Produce")
    assert engine._index.candidates(FakeView(api_key=produce)) == []
    heartbeat = FakeView(api_key=codec.api_key_of("SyncGroup"), decoded={"group_id": "g7"})
    (only,) = engine._index.candidates(heartbeat)
    assert only.rule.match.group_id == "g7"
    assert engine.on_request(heartbeat).rule_id == only.rule.id


def test_catch_all_rules_still_spare_bootstrap_apis() -> None:
    engine = FaultEngine()
    engine.add({"match": {"any": True}, "action": {"type": "error", "error": "NOT_COORDINATOR"}})
    assert engine._index.candidates(FakeView(api_key=codec.api_key_of("Metadata"))) == []
    assert len(engine._index.candidates(FakeView(api_key=codec.api_key_of("Fetch")))) == 1


def test_rules_for_other_clients_leave_a_clients_produce_alone() -> None:
    """A rule per client id glob, as a test suite aims faults at one application: a Produce
    from another client tries none of them, and its API is quiet for that client only."""
    engine = FaultEngine()
    for n in range(300):
        engine.add({"match": {"apis": ["Produce", "Fetch"], "client_id": f"app-{n:03d}-*"},
                    "action": {"type": "delay", "fixed_ms": 1000}})
    produce = codec.api_key_of("Produce")
    assert engine._index.candidates(FakeView(api_key=produce, client_id="rdkafka")) == []
    (only,) = engine._index.candidates(FakeView(api_key=produce, client_id="app-007-x"))
    assert only.rule.match.client_id == "app-007-*"
    assert produce in engine.quiet_api_keys("rdkafka")
    assert produce not in engine.quiet_api_keys("app-007-x")
    assert produce not in engine.quiet_api_keys(None)
    assert engine.quiet_api_keys("rdkafka") is engine.quiet_api_keys("rdkafka")
