"""Client-id patterns run by RE2: fnmatch's globs exactly, regexes without backtracking,
bounded in length, compiled when the rule is stored."""

from __future__ import annotations

import fnmatch
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from kafka_chaos_proxy.faults.engine import FaultEngine
from kafka_chaos_proxy.faults.model import FaultRule, describe_errors
from kafka_chaos_proxy.faults.patterns import (
    MAX_PATTERN_CHARS,
    PatternError,
    compile_glob,
    compile_regex,
)
from tests.support.fault_fakes import FakeView

GLOB_CHARS = "ab*?[]!-.\\^$"


@settings(max_examples=3000, deadline=None, derandomize=True)
@given(st.text(GLOB_CHARS, max_size=10), st.text("ab-.[]!^\\$", max_size=8))
def test_globs_mean_what_fnmatch_means(glob: str, text: str) -> None:
    assert bool(compile_glob(glob).fullmatch(text)) == fnmatch.fnmatchcase(text, glob)


def _cpu(pattern: str, subject: str, rounds: int = 200) -> float:
    compiled = compile_regex(pattern)
    start = time.process_time()
    for _ in range(rounds):
        compiled.search(subject)
    return time.process_time() - start


def test_a_catastrophic_regex_stays_linear() -> None:
    # `^(a+)+$` against a's and a final b: Python's re needs ~2**n steps (45 s at n=30).
    short = _cpu(r"^(a+)+$", "a" * 300 + "b")
    long = _cpu(r"^(a+)+$", "a" * 30_000 + "b")
    assert compile_regex(r"^(a+)+$").search("a" * 30 + "b") is None
    # 100 times the input: linear work takes ~100 times as long, exponential never ends.
    assert long < max(short, 1e-3) * 1000


@pytest.mark.parametrize("compile_", [compile_glob, compile_regex])
def test_patterns_are_bounded_in_length(compile_: object) -> None:
    compile_(  # type: ignore[operator]
        "a" * MAX_PATTERN_CHARS)
    with pytest.raises(PatternError, match=f"at most {MAX_PATTERN_CHARS}"):
        compile_("a" * (MAX_PATTERN_CHARS + 1))  # type: ignore[operator]


def test_rules_refuse_what_re2_cannot_run_and_name_the_field() -> None:
    for match, field, words in (
        ({"client_id_regex": "(?=x)y"}, "match.client_id_regex", "no lookaround"),
        ({"client_id_regex": "x" * 10_000_000}, "match.client_id_regex", "at most 256"),
        ({"client_id": "*" * 10_000_000}, "match.client_id", "at most 256"),
        ({"group_id": "g" * 2000}, "match.group_id", "at most 1024"),
    ):
        with pytest.raises(ValidationError) as info:
            FaultRule.model_validate({"match": match, "action": {"type": "close"}})
        (line,) = describe_errors(info.value)
        assert line.startswith(f"{field}: ") and words in line, line
        assert len(line) < 400  # the pattern itself is never echoed whole


def test_glob_and_regex_match_client_ids_on_the_data_path() -> None:
    engine = FaultEngine()
    engine.add({"match": {"apis": ["Heartbeat"], "client_id": "py-*-[0-9]"},
                "action": {"type": "close"}})
    engine.add({"match": {"apis": ["SyncGroup"], "client_id_regex": r"^(a+)+$"},
                "action": {"type": "close"}})
    assert engine.on_request(FakeView(api_key=12, client_id="py-app-7")).is_fault
    assert not engine.on_request(FakeView(api_key=12, client_id="py-app-x")).is_fault
    assert not engine.on_request(FakeView(api_key=14, client_id="a" * 40 + "b")).is_fault
    assert engine.on_request(FakeView(api_key=14, client_id="aaaa")).is_fault
