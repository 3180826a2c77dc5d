"""`events.wait` / `events.list` against a real admin API fed coordination exchanges
(tests/support/live_admin.py): waiting reads forward from a baseline, so an event that
happened before the wait call is found; one before the baseline is not; a timeout says what
did happen."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from kafka_chaos_proxy.faults.decision import ActionKind, Decision
from kafka_chaos_proxy.proxy.api import ChaosProxy, EventMatch, EventTimeout
from tests.support.live_admin import LiveAdmin, heartbeat


@pytest.fixture
def live() -> Iterator[LiveAdmin]:
    admin = LiveAdmin()
    try:
        yield admin
    finally:
        admin.close()


@pytest.fixture
def chaos(live: LiveAdmin) -> Iterator[ChaosProxy]:
    with ChaosProxy.attach(live.url) as chaos:
        yield chaos


def test_wait_finds_an_event_that_happened_before_the_wait_call(live: LiveAdmin,
                                                                chaos: ChaosProxy) -> None:
    live.observe(heartbeat("orders", "m-1", error=27))  # REBALANCE_IN_PROGRESS
    event = chaos.events.wait(api="heartbeat", group="orders", error="REBALANCE_IN_PROGRESS",
                              timeout=5)
    assert (event["member_id"], event["error"]) == ("m-1", "REBALANCE_IN_PROGRESS")


def test_events_before_the_baseline_are_not_this_handles(live: LiveAdmin,
                                                          chaos: ChaosProxy) -> None:
    live.observe(heartbeat("orders", "old"))
    assert chaos.events.mark() == chaos.events.baseline > 0
    live.observe(heartbeat("orders", "new"))
    assert chaos.events.wait(group="orders", timeout=5)["member_id"] == "new"
    assert [e["member_id"] for e in chaos.events.list()] == ["new"]
    assert [e["member_id"] for e in chaos.events.list(since=0)] == ["old", "new"]
    assert [e["member_id"] for e in chaos.view().events.list()] == []


def test_injected_and_rule_are_checked_on_the_client_side(live: LiveAdmin,
                                                           chaos: ChaosProxy) -> None:
    faulted = dataclasses.replace(
        heartbeat("orders", "m-2", error=16),
        decision=Decision(ActionKind.ERROR, "r9", error_code=16), outcome="error_injected")
    live.observe(heartbeat("orders", "m-1"), faulted)
    assert chaos.events.wait(group="orders", injected=True, timeout=5)["member_id"] == "m-2"
    assert chaos.events.wait(rule="r9", timeout=5)["fault"]["rule"] == "r9"
    assert [e["member_id"] for e in chaos.events.list(injected=False)] == ["m-1"]
    assert [e["member_id"] for e in chaos.events.list(error="NONE")] == ["m-1"]
    assert [e["member_id"] for e in chaos.events.list(where=lambda e: e["member_id"] == "m-2",
                                                      outcome="error_injected")] == ["m-2"]


def test_a_timeout_says_what_did_happen(live: LiveAdmin, chaos: ChaosProxy) -> None:
    live.observe(heartbeat("orders", "m-1"), heartbeat("other", "m-9"))
    with pytest.raises(EventTimeout) as info:
        chaos.events.wait(api="SyncGroup", group="orders", injected=True, timeout=0.3)
    message = str(info.value)
    assert message.startswith("no SyncGroup event of group orders with injected=True within "
                              "0.3 s")
    assert "the last 1 events of group orders:" in message
    assert "Heartbeatv4 group=orders member=m-1" in message and "m-9" not in message
    assert [e["member_id"] for e in info.value.seen] == ["m-1"]
    assert isinstance(info.value, TimeoutError)


def test_a_timeout_with_nothing_at_all_says_so(chaos: ChaosProxy) -> None:
    with pytest.raises(EventTimeout, match="no events of the proxy after seq 0 at all"):
        chaos.events.wait(api="JoinGroup", timeout=0.1)


def test_an_unknown_filter_is_a_type_error(chaos: ChaosProxy) -> None:
    with pytest.raises(TypeError, match="gruop"):
        chaos.events.list(gruop="orders")  # type: ignore[call-arg]


def test_the_match_reads_api_names_and_keys_as_the_server_does() -> None:
    event = {"api": "SyncGroup", "api_key": 14, "group": "g", "generation": 2,
             "fault": {"rule": "a", "rules": ["a", "b"], "action": "sequence"}}
    assert EventMatch(api="syncgroup").matches(event)
    assert EventMatch(api="14", group="g", generation=2, rule="b").matches(event)
    assert not EventMatch(api="JoinGroup").matches(event)
    assert not EventMatch(generation=3).matches(event)
    assert EventMatch(api="SyncGroup", group="g", injected=True).describe() == (
        "SyncGroup event of group g with injected=True")
