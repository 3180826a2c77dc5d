"""The hold registry: a hold ends once, by its until, a release or its timeout, and a closed
connection's holds are forgotten without calling back."""

from __future__ import annotations

import asyncio

import pytest

from kafka_chaos_proxy.faults.actions.hold import HoldPlan
from kafka_chaos_proxy.faults.decision import Side
from kafka_chaos_proxy.faults.triggers import EventPattern, compile_pattern
from kafka_chaos_proxy.proxy.holds import HoldRegistry, UnknownHoldError


def plan(until: dict[str, object] | None = None, count: int = 1, timeout_s: float = 5.0,
         on_timeout: str = "release") -> HoldPlan:
    pattern = compile_pattern(EventPattern.model_validate(until)) if until else None
    return HoldPlan(Side.REQUEST, pattern, count, timeout_s, on_timeout,  # type: ignore[arg-type]
                    None)


class Calls:
    def __init__(self) -> None:
        self.log: list[str] = []

    def resume(self) -> None:
        self.log.append("resume")

    def expire(self) -> None:
        self.log.append("expire")


def park(registry: HoldRegistry, calls: Calls, hold_plan: HoldPlan, connection: int = 1,
         correlation_id: int = 7) -> int | None:
    hold = registry.park(rule_id="r", connection=connection, api="OffsetCommit",
                         correlation_id=correlation_id, plan=hold_plan, resume=calls.resume,
                         expire=calls.expire)
    return None if hold is None else hold.id


async def test_until_counts_events_after_the_hold_began_and_not_its_own_request() -> None:
    registry, calls = HoldRegistry(), Calls()
    park(registry, calls, plan({"api": "JoinGroup", "phase": "request"}, count=2))
    own = {"phase": "request", "api": "JoinGroup", "connection": 1, "correlation_id": 7}
    registry.notify(own)
    registry.notify({**own, "connection": 2})
    assert calls.log == [] and registry.list()[0]["seen"] == 1
    registry.notify({**own, "connection": 3})
    assert calls.log == ["resume"] and len(registry) == 0 and registry.ended["until"] == 1
    registry.notify({**own, "connection": 4})  # ended once
    assert calls.log == ["resume"]


async def test_a_timeout_expires_or_releases_as_on_timeout_says() -> None:
    registry, calls = HoldRegistry(), Calls()
    park(registry, calls, plan(timeout_s=0.01, on_timeout="drop"))
    park(registry, calls, plan(timeout_s=0.02, on_timeout="release"), correlation_id=8)
    await asyncio.sleep(0.1)
    assert calls.log == ["expire", "resume"] and registry.ended["timeout"] == 2


async def test_release_by_id_or_by_rule_and_unknown_ids() -> None:
    registry, calls = HoldRegistry(), Calls()
    first = park(registry, calls, plan())
    park(registry, calls, plan(), correlation_id=8)
    assert first is not None
    registry.release(first)
    with pytest.raises(UnknownHoldError, match="it may have ended already"):
        registry.release(first)
    assert [h.correlation_id for h in registry.release_rule("r")] == [8]
    assert calls.log == ["resume", "resume"] and registry.ended["released"] == 2


async def test_a_closed_connection_forgets_its_holds_and_the_limit_is_kept() -> None:
    registry, calls = HoldRegistry(max_holds=2), Calls()
    park(registry, calls, plan(timeout_s=0.01))
    park(registry, calls, plan(), connection=2)
    assert park(registry, calls, plan(), connection=3) is None  # over the limit: at once
    assert calls.log == ["expire"]
    registry.connection_closed(1)
    await asyncio.sleep(0.05)
    assert calls.log == ["expire"] and len(registry) == 1  # no timeout after the close
    assert registry.ended["closed"] == 1
