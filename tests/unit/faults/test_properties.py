"""Property tests: any valid rule survives JSON, YAML and the admin API's echo unchanged, and
rules without body fields never make the data plane decode."""

from __future__ import annotations

import json
import os
import string
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.faults.body_fields import BODY_FIELDS
from kafka_chaos_proxy.faults.engine import FaultEngine
from kafka_chaos_proxy.faults.loader import dump_rules, load_rules_text
from kafka_chaos_proxy.faults.match import compile_match
from kafka_chaos_proxy.faults.model import RULE_ID_PATTERN, FaultRule
from kafka_chaos_proxy.faults.names import api_keys, api_names
from tests.support.fault_fakes import FakeView

ANY = {"any": True}  # a rule that names nothing else to match says so

# More examples for a bug hunt: KCP_HYPOTHESIS_EXAMPLES=2000 pytest tests/unit/faults
EXAMPLES = int(os.environ.get("KCP_HYPOTHESIS_EXAMPLES", "150"))
INT32 = st.integers(min_value=-(2**31), max_value=2**31 - 1)
# Text that YAML likes to reinterpret, next to arbitrary text.
TRICKY = st.sampled_from(
    ["yes", "no", "null", "~", "1", "0x1f", "1e3", ": x", "- a", "'q'", "", "\x85", "a\u2028"]
)
TEXT = st.one_of(TRICKY, st.text(max_size=20))
MS = st.integers(min_value=0, max_value=3_600_000)


@st.composite
def matches(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    apis = draw(
        st.none() | st.lists(st.sampled_from(sorted(api_names().values())), min_size=1, max_size=3)
    )
    if apis is not None:
        out["apis"] = draw(st.sampled_from([apis, [api_keys()[a] for a in apis]]))
        lo, hi = codec.supported_versions(api_keys()[apis[0]])
        if draw(st.booleans()):
            out["versions"] = draw(
                st.lists(st.integers(lo, hi), min_size=1, max_size=3, unique=True)
            )
    fitting = [f for f in BODY_FIELDS if apis is None or all(a in BODY_FIELDS[f] for a in apis)]
    chosen = draw(st.lists(st.sampled_from(fitting), unique=True, max_size=2)) if fitting else []
    for name in chosen:
        is_int = name in ("generation_id", "member_epoch")
        out[name] = draw(INT32 if is_int else TEXT)
    if draw(st.booleans()):
        out["client_id"] = draw(TEXT)
    if draw(st.booleans()):
        out["client_id_regex"] = draw(st.sampled_from(["^py-.*", "consumer$", r"\d+", "a|b"]))
    if draw(st.booleans()):
        out["broker"] = draw(st.integers(-1, 10))
    if draw(st.booleans()):
        out["connection"] = draw(st.integers(0, 10**6))
    return out or {"any": True}


ERRORS = st.sampled_from(["NOT_COORDINATOR", "REBALANCE_IN_PROGRESS", 25, "illegal_generation"])


@st.composite
def delays(draw: st.DrawFn) -> dict[str, Any]:
    fixed = draw(MS)
    jitter = draw(MS.filter(lambda j: j > 0) if fixed == 0 else MS)
    action: dict[str, Any] = {"type": "delay", "fixed_ms": fixed, "jitter_ms": jitter}
    if draw(st.booleans()):
        action["side"] = draw(st.sampled_from(["request", "response"]))
    if jitter > 0 and draw(st.booleans()):
        action["distribution"] = draw(st.sampled_from(["uniform", "normal", "exponential"]))
    return action


ACTIONS = st.one_of(
    st.fixed_dictionaries({"type": st.just("error"), "error": ERRORS}),
    st.fixed_dictionaries({"type": st.just("error_after_forward"), "error": ERRORS}),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["drop_request", "drop_response"])},
        optional={"close_after_ms": st.none() | MS},
    ),
    delays(),
    st.fixed_dictionaries(
        {"type": st.just("close")},
        optional={
            "when": st.sampled_from(["before", "after"]),
            "mode": st.sampled_from(["graceful", "reset"]),
        },
    ),
    st.fixed_dictionaries({"type": st.just("throttle"), "bytes_per_s": st.integers(1, 10**9)}),
)

DOSAGES = st.fixed_dictionaries(
    {},
    optional={
        "probability": st.floats(0.0, 1.0, allow_nan=False),
        "skip_first": st.integers(0, 10**6),
        "max_injections": st.none() | st.integers(1, 10**6),
        "start_after_ms": st.integers(0, 10**9),
        "active_for_ms": st.none() | st.integers(1, 10**9),
    },
)


@st.composite
def rules(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {"match": ANY, "action": draw(ACTIONS)}
    if draw(st.booleans()):
        out["id"] = draw(st.from_regex(RULE_ID_PATTERN, fullmatch=True))
    if draw(st.booleans()):
        out["description"] = draw(TEXT)
    if draw(st.booleans()):
        out["enabled"] = draw(st.booleans())
    out["match"] = draw(matches()) if draw(st.booleans()) else {"any": True}
    if draw(st.booleans()):
        out["dosage"] = draw(DOSAGES)
    return out


def unique_ids(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    out = []
    for item in items:
        if item.get("id") in seen:
            item = {k: v for k, v in item.items() if k != "id"}
        if "id" in item:
            seen.add(item["id"])
        out.append(item)
    return out


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.lists(rules(), max_size=4).map(unique_ids))
def test_rule_files_round_trip(data: list[dict[str, Any]]) -> None:
    parsed = [FaultRule.model_validate(item) for item in data]
    for fmt in ("yaml", "json"):
        assert load_rules_text(dump_rules(parsed, fmt), fmt) == parsed


@settings(max_examples=EXAMPLES, deadline=None)
@given(rules())
def test_api_echo_round_trips(data: dict[str, Any]) -> None:
    engine = FaultEngine()
    stored = engine.add(data)
    assert stored.id is not None
    echoed = json.loads(json.dumps(engine.rule_json(stored.id)))
    assert FaultRule.model_validate(echoed) == stored


@settings(max_examples=max(EXAMPLES // 3, 20), deadline=None)
@given(st.lists(rules(), max_size=4).map(unique_ids), st.integers(0, 2**32))
def test_engine_export_load_reproduces_rules_and_decisions(
    data: list[dict[str, Any]], seed: int
) -> None:
    first = FaultEngine(seed=seed, clock=lambda: 0.0)
    first.load(data)
    second = FaultEngine(seed=seed, clock=lambda: 0.0)
    second.load(load_rules_text(first.export("yaml"), "yaml"))
    assert second.list() == first.list()
    views = [FakeView(api_key=k, api_version=1, decoded={"group_id": "yes"}) for k in range(20)]
    assert [first.on_request(v) for v in views] == [second.on_request(v) for v in views]


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    matches(),
    st.sampled_from(sorted(api_names())),
    st.integers(0, 20),
    st.none() | st.text(string.printable, max_size=10),
)
def test_rules_without_body_fields_never_decode(
    match: dict[str, Any], api_key: int, version: int, client_id: str | None
) -> None:
    rule = FaultRule.model_validate({"match": match, "action": {"type": "close"}})
    compiled = compile_match(rule.match, api_keys())
    view = FakeView(api_key=api_key, api_version=version, client_id=client_id)
    compiled.matches(view)
    if not rule.match.body_fields():
        assert view.body_calls == 0
    else:
        assert view.body_calls <= 1


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    skip=st.integers(0, 5),
    cap=st.none() | st.integers(1, 5),
    probability=st.sampled_from([0.0, 0.3, 1.0]),
    confirm=st.booleans(),
    requests=st.lists(st.sampled_from(["SyncGroup", "Heartbeat", "Produce"]), max_size=40),
    seed=st.integers(0, 2**32),
)
def test_dosage_limits_hold_for_any_request_sequence(
    skip: int, cap: int | None, probability: float, confirm: bool, requests: list[str], seed: int
) -> None:
    engine = FaultEngine(seed=seed, clock=lambda: 0.0)
    dosage: dict[str, Any] = {"skip_first": skip, "probability": probability}
    if cap is not None:
        dosage["max_injections"] = cap
    engine.add({"id": "a", "match": {"apis": ["SyncGroup"]}, "action": {"type": "close"},
                "dosage": dosage})  # fmt: skip
    faults: list[bool] = []
    for name in requests:
        decision = engine.on_request(FakeView(api_key=api_keys()[name]))
        if name != "SyncGroup":
            assert not decision.is_fault
            continue
        faults.append(decision.is_fault)
        if confirm and decision.on_applied is not None:
            decision.on_applied()
    assert not any(faults[:skip])
    if cap is not None:
        assert sum(faults) <= cap
    if probability == 1.0:
        assert sum(faults) == min(max(len(faults) - skip, 0), cap if cap is not None else 10**9)
    if probability == 0.0:
        assert sum(faults) == 0
    stats = engine.stats("a")
    assert stats.matched == len(faults)
    assert stats.injected == (sum(faults) if confirm else 0)
