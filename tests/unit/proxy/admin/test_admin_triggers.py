"""Triggers, chains and holds over HTTP: what a caller is refused (422 naming the field), what
a rule shows of its trigger and its realism, and the holds routes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx

from kafka_chaos_proxy.faults.actions.hold import HoldPlan
from kafka_chaos_proxy.faults.decision import Side
from kafka_chaos_proxy.proxy.admin import AdminContext, create_app
from kafka_chaos_proxy.proxy.holds import HoldRegistry

JSON = {"Content-Type": "application/json"}
HB = {"apis": ["Heartbeat"]}
ERR = {"type": "error", "error": "NOT_COORDINATOR"}


def park(registry: HoldRegistry, rule_id: str, released: list[str]) -> int:
    hold = registry.park(rule_id=rule_id, connection=1, api="Heartbeat", correlation_id=1,
                         plan=HoldPlan(Side.REQUEST, None, 1, 60.0, "release", None),
                         resume=lambda: released.append(rule_id), expire=lambda: None)
    assert hold is not None
    return hold.id


def fields(response: httpx.Response) -> list[str]:
    return [".".join(str(p) for p in e["loc"][1:]) for e in response.json()["detail"]]


async def test_bad_triggers_are_422_naming_the_field(client: httpx.AsyncClient) -> None:
    r = await client.post("/faults", json={"id": "b", "match": HB, "action": ERR,
                                           "when": {"after": {"rule": "nope"}}})
    assert r.status_code == 422 and fields(r) == ["when.after.rule"]
    assert "'nope', which does not exist" in r.json()["message"]
    r = await client.post("/faults", json={"match": HB, "action": {"type": "hold"}})
    assert r.status_code == 422 and "action.hold.timeout_ms" in fields(r)
    await client.post("/faults", json={"id": "a", "match": HB, "action": ERR})
    r = await client.patch("/faults/a", json={"when": {"after": {"rule": "a"}}})
    assert r.status_code == 422 and "cycle (a -> a)" in r.json()["message"]


async def test_a_rule_shows_its_trigger_and_warnings(client: httpx.AsyncClient) -> None:
    r = await client.post("/faults", json={
        "id": "t", "chain": True, "match": HB,
        "action": {"type": "error", "error": "COORDINATOR_LOAD_IN_PROGRESS"},
        "when": {"after": {"api": "JoinGroup", "phase": "request"}}})
    assert r.status_code == 201
    body = r.json()
    assert body["chain"] is True and body["when"]["after"]["api"] == "JoinGroup"
    assert body["trigger"] == {"armed": False, "disarmed": False, "trigger_events": 0}
    assert any("COORDINATOR_LOAD_IN_PROGRESS" in w for w in body["warnings"])
    r = await client.put("/faults/t", json=body)  # what GET returns goes back as it is
    assert r.status_code == 200


async def test_holds_are_listed_and_released(ctx: AdminContext) -> None:
    registry = HoldRegistry()
    app = create_app(replace(ctx, holds=registry))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://127.0.0.1") as client:
        await client.post("/faults", json={"id": "h", "match": HB,
                                           "action": {"type": "hold", "timeout_ms": 60000}})
        released: list[str] = []
        first = park(registry, "h", released)
        park(registry, "h", released)
        listed: list[dict[str, Any]] = (await client.get("/holds")).json()
        assert [h["id"] for h in listed] == [first, first + 1]
        assert listed[0]["rule"] == "h" and listed[0]["timeout_ms"] == 60000
        r = await client.post(f"/holds/{first}/release", headers=JSON)
        assert r.status_code == 200 and released == ["h"]
        r = await client.post(f"/holds/{first}/release", headers=JSON)
        assert r.status_code == 404 and "it may have ended already" in r.json()["detail"]
        r = await client.post("/faults/h/release", headers=JSON)
        assert r.json()["released"] == 1 and released == ["h", "h"]
        assert (await client.post("/faults/nope/release", headers=JSON)).status_code == 404
        assert (await client.get("/holds")).json() == []
