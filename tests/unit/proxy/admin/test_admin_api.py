"""The admin API end to end over ASGI: faults CRUD, groups, events, SSE, metrics, auth."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kafka_chaos_proxy.proxy.admin import AdminContext, create_app
from kafka_chaos_proxy.proxy.exchange import Exchange

ANY = {"any": True}  # a rule that names nothing else to match says so

# POST needs a JSON content type even without a body (see proxy.admin.guard).
JSON = {"Content-Type": "application/json"}

RULE = {
    "id": "sync-nc",
    "description": "coordinator moved during SyncGroup",
    "match": {"apis": ["SyncGroup"], "group_id": "g1"},
    "action": {"type": "error", "error": "NOT_COORDINATOR"},
    "dosage": {"max_injections": 1},
}


async def test_fault_crud(client: httpx.AsyncClient) -> None:
    r = await client.post("/faults", json=RULE)
    assert r.status_code == 201
    body = r.json()
    assert body["id"] == "sync-nc" and body["stats"] == {"matched": 0, "injected": 0}
    # The API shows every field of the action, defaults included.
    assert body["action"] == {"type": "error", "error": "NOT_COORDINATOR",
                              "broker_consistent": False}

    r = await client.post("/faults", json={"match": ANY, "action": {"type": "drop_response"}})
    assert r.status_code == 201
    generated = r.json()["id"]

    assert [rule["id"] for rule in (await client.get("/faults")).json()] == ["sync-nc", generated]
    assert (await client.get("/faults/sync-nc")).json()["match"]["group_id"] == "g1"

    r = await client.patch("/faults/sync-nc", json={"dosage": {"probability": 0.5}})
    assert r.status_code == 200 and r.json()["dosage"]["probability"] == 0.5
    assert r.json()["dosage"]["max_injections"] == 1  # merged, not replaced

    r = await client.post("/faults/sync-nc/disable", headers=JSON)
    assert r.status_code == 200 and r.json()["enabled"] is False
    r = await client.post("/faults/sync-nc/enable", headers=JSON)
    assert r.json()["enabled"] is True

    replacement = {**RULE, "action": {"type": "delay", "fixed_ms": 100, "jitter_ms": 50}}
    r = await client.put("/faults/sync-nc", json=replacement)
    assert r.status_code == 200 and r.json()["action"]["type"] == "delay"
    r = await client.put("/faults/sync-nc", json=r.json())  # what GET returns goes back as is
    assert r.status_code == 200

    r = await client.get("/faults/export", params={"format": "json"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert "sync-nc" in r.text
    r = await client.get("/faults/export")
    assert r.headers["content-type"].startswith("application/yaml") and "sync-nc" in r.text

    assert (await client.delete(f"/faults/{generated}")).status_code == 204
    assert (await client.delete("/faults")).json() == {"removed": 1}
    assert (await client.get("/faults")).json() == []


async def test_unknown_id_is_404_naming_it(client: httpx.AsyncClient) -> None:
    for method, path in (
        ("GET", "/faults/nope"),
        ("DELETE", "/faults/nope"),
        ("POST", "/faults/nope/enable"),
        ("POST", "/faults/nope/disable"),
    ):
        r = await client.request(method, path, headers=JSON)
        assert r.status_code == 404, (method, path)
        assert "'nope'" in r.json()["detail"]
    r = await client.patch("/faults/nope", json={"enabled": False})
    assert r.status_code == 404
    r = await client.put("/faults/nope", json=RULE | {"id": None})
    assert r.status_code == 404


async def test_duplicate_id_is_409(client: httpx.AsyncClient) -> None:
    assert (await client.post("/faults", json=RULE)).status_code == 201
    r = await client.post("/faults", json=RULE)
    assert r.status_code == 409 and "sync-nc" in r.json()["detail"]


@pytest.mark.parametrize(
    ("rule", "field", "hint"),
    [
        ({"match": ANY, "action": {"type": "eror"}}, "action",
         "allowed: error, error_after_forward"),
        (
            {"match": {"apis": ["SyncGrup"]}, "action": {"type": "drop_request"}},
            "match.apis",
            "did you mean 'SyncGroup'",
        ),
        ({"match": ANY, "action": {"type": "error", "error": "NOT_A_THING"}}, "action.error",
         "NOT_COORDINATOR"),
        (
            {"match": ANY, "action": {"type": "delay"}, "dosage": {"probability": 1.5}},
            "dosage.probability",
            "between 0.0 and 1.0",
        ),
        ({"action": {"type": "close"}, "mtach": {}}, "request body", "did you mean 'match'"),
        ({"match": ANY, "action": {"type": "close", "mode": "slam"}}, "action.mode", "graceful"),
    ],
)
async def test_invalid_rule_is_422_naming_field_and_allowed_values(
    client: httpx.AsyncClient, rule: dict[str, Any], field: str, hint: str
) -> None:
    r = await client.post("/faults", json=rule)
    assert r.status_code == 422
    message = r.json()["message"]
    assert message.startswith(f"{field}:") or f"; {field}:" in message, message
    assert hint in message, message
    assert isinstance(r.json()["detail"], list)


async def test_patch_and_put_validation(client: httpx.AsyncClient) -> None:
    await client.post("/faults", json=RULE)
    r = await client.patch("/faults/sync-nc", json={"dosage": {"probability": -1}})
    assert r.status_code == 422 and "dosage.probability" in r.json()["message"]
    r = await client.patch("/faults/sync-nc", json={"id": "other"})
    assert r.status_code == 422 and "id" in r.json()["message"]
    r = await client.put("/faults/sync-nc", json=RULE | {"id": "other"})
    assert r.status_code == 422
    r = await client.get("/faults/export", params={"format": "xml"})
    assert r.status_code == 422 and "format" in r.json()["message"]


def _exchange(api_key: int, request: dict[str, Any], response: dict[str, Any]) -> Exchange:
    return Exchange(
        connection_id=3,
        client_host="127.0.0.1",
        broker_node=1,
        client_id="app",
        api_key=api_key,
        api_version=4,
        correlation_id=1,
        request_body=request,
        response_body=response,
        started_at=1_700_000_000.0,
        latency_s=0.002,
        upstream_latency_s=0.001,
    )


def _heartbeat(group: str, member: str, error: int = 0) -> Exchange:
    return _exchange(
        12, {"group_id": group, "generation_id": 3, "member_id": member}, {"error_code": error}
    )


async def test_groups_and_events(ctx: AdminContext, client: httpx.AsyncClient) -> None:
    for ex in (_heartbeat("g1", "m-1"), _heartbeat("g1", "m-2", 27), _heartbeat("g2", "m-9")):
        for observer in (ctx.events, ctx.groups):
            observer.observe(ex)
    groups = (await client.get("/groups")).json()
    assert [g["group_id"] for g in groups] == ["g1", "g2"]
    g1 = (await client.get("/groups/g1")).json()
    assert g1["state"] == "rebalancing" and g1["member_count"] == 2
    assert {m["member_id"] for m in g1["members"]} == {"m-1", "m-2"}
    r = await client.get("/groups/none-such")
    assert r.status_code == 404 and "'none-such'" in r.json()["detail"]

    events = (await client.get("/events")).json()
    assert [e["seq"] for e in events] == [1, 2, 3]
    assert events[1]["error"] == "REBALANCE_IN_PROGRESS" and events[1]["api"] == "Heartbeat"
    assert len((await client.get("/events", params={"group": "g1"})).json()) == 2
    assert len((await client.get("/events", params={"member": "m-9"})).json()) == 1
    assert len((await client.get("/events", params={"api": "heartbeat"})).json()) == 3
    assert len((await client.get("/events", params={"api": "JoinGroup"})).json()) == 0
    page = (await client.get("/events", params={"since": 1, "limit": 1})).json()
    assert [e["seq"] for e in page] == [2]
    assert (await client.get("/events", params={"limit": 0})).status_code == 422


async def test_fetch_samples_reach_the_api_whole_and_stay_out_of_group_queries(
        ctx: AdminContext, client: httpx.AsyncClient) -> None:
    """`run --fetch-events`: the response model must carry a sample's own fields (a field it
    does not declare would be dropped on the way out), also when the log cut `partitions`."""
    from kafka_chaos_proxy.proxy.event_fields import fetch_event_fields
    from kafka_chaos_proxy.proxy.fetch_sessions import FetchSample

    def sample(partitions: dict[str, list[int]]) -> dict[str, Any]:
        return fetch_event_fields(FetchSample(
            at=1_700_000_000.0, connection_id=7, client_id="app-m0", client_host="127.0.0.1",
            broker_node=1, api_version=12, correlation_id=9, partitions=partitions, dropped=0,
            fetches=3, session_id=55, session_epoch=4))

    ctx.events.observe(_heartbeat("g1", "m-1"))
    ctx.events.record(sample({"t": [0, 2]}))
    ctx.events.max_event_bytes = 2_000
    ctx.events.record(sample({f"topic-{i}": list(range(20)) for i in range(50)}))
    got = (await client.get("/events", params={"api": "fetch"})).json()
    assert len(got) == 2
    first, cut = got
    assert (first["partitions"], first["fetches"], first["outcome"]) == (
        {"t": [0, 2]}, 3, "observed")
    assert (first["session_id"], first["session_epoch"], first["group"]) == (55, 4, None)
    assert cut["partitions"].endswith("truncated>") and "partitions" in cut["truncated"]
    assert cut["fetches"] == 3 and cut["client_id"] == "app-m0"  # kept: small, findable
    assert [e["api"] for e in (await client.get("/events", params={"group": "g1"})).json()] == [
        "Heartbeat"]


def _sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in text.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":")
        )
        if "data" in fields:
            out.append((fields["event"], json.loads(fields["data"])))
    return out


async def test_event_stream_replays_then_follows(
    ctx: AdminContext, client: httpx.AsyncClient
) -> None:
    ctx.events.observe(_heartbeat("g1", "m-1"))
    ctx.events.observe(_heartbeat("other", "m-1"))
    request = asyncio.create_task(
        client.get("/events/stream", params={"since": 0, "group": "g1", "limit": 3})
    )
    for _ in range(200):  # until the stream has subscribed; bounded
        if ctx.events.subscriber_count:
            break
        await asyncio.sleep(0.01)
    assert ctx.events.subscriber_count == 1
    ctx.events.observe(_heartbeat("other", "m-2"))
    ctx.events.observe(_heartbeat("g1", "m-2"))
    ctx.events.observe(_heartbeat("g1", "m-3"))
    r = await asyncio.wait_for(request, 10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    messages = _sse(r.text)
    assert [(kind, e["seq"], e["member_id"]) for kind, e in messages] == [
        ("coordination", 1, "m-1"),
        ("coordination", 4, "m-2"),
        ("coordination", 5, "m-3"),
    ]
    assert ctx.events.subscriber_count == 0


async def test_event_stream_reports_drops(ctx: AdminContext) -> None:
    from kafka_chaos_proxy.proxy.admin.sse import event_stream
    from kafka_chaos_proxy.proxy.events import EventFilter

    stream = event_stream(ctx.events, EventFilter(), limit=2, keepalive_s=0.05)
    assert await anext(stream) == b": connected\n\n"
    subscription = next(iter(ctx.events._subscribers))
    for i in range(1_005):  # more than the subscription queue holds
        ctx.events.observe(_heartbeat("g", f"m-{i}"))
    chunk = (await anext(stream)).decode()
    assert chunk.startswith("event: dropped") and subscription.dropped > 0
    await stream.aclose()


async def test_connections_brokers_health(client: httpx.AsyncClient) -> None:
    assert (await client.get("/connections")).json()[0]["id"] == 1
    assert (await client.get("/brokers")).json()[0]["node_id"] == 1
    assert (await client.get("/healthz")).json() == {"status": "ok"}


async def test_metrics_parse(ctx: AdminContext, client: httpx.AsyncClient) -> None:
    from kafka_chaos_proxy.proxy.observers import CoordinationMetrics

    CoordinationMetrics().observe(_heartbeat("g1", "m-1", 22))
    r = await client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    assert {"kcp_requests", "kcp_broker_errors", "kcp_group_rebalance_seconds"} <= set(families)
    errors = [
        s
        for s in families["kcp_broker_errors"].samples
        if s.labels == {"api": "Heartbeat", "error": "ILLEGAL_GENERATION"}
        and s.name.endswith("_total")
    ]
    assert errors and errors[0].value >= 1


async def test_openapi_documents_models(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    paths = doc["paths"]
    for path in (
        "/faults",
        "/faults/{rule_id}",
        "/faults/{rule_id}/enable",
        "/faults/{rule_id}/disable",
        "/faults/export",
        "/groups",
        "/groups/{group_id}",
        "/events",
        "/events/stream",
        "/connections",
        "/brokers",
        "/metrics",
        "/healthz",
    ):
        assert path in paths, path
    assert set(paths["/faults/{rule_id}"]) == {"get", "put", "patch", "delete"}
    schemas = doc["components"]["schemas"]
    assert {"RuleOut", "FaultRule", "Event", "GroupDetail", "GroupSummary"} <= set(schemas)


async def test_bearer_token(ctx: AdminContext) -> None:
    app = create_app(replace(ctx, token="s3cret"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
        assert (await c.get("/healthz")).status_code == 200
        for path in ("/faults", "/groups", "/events", "/metrics", "/openapi.json", "/brokers"):
            r = await c.get(path)
            assert r.status_code == 401, path
            assert r.headers["www-authenticate"].startswith("Bearer")
        r = await c.get("/faults", headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401 and "wrong" in r.json()["detail"]
        r = await c.post("/faults", json=RULE, headers={"Authorization": "Bearer s3cret"})
        assert r.status_code == 201
        doc = (await c.get("/openapi.json", headers={"Authorization": "Bearer s3cret"})).json()
        assert doc["security"] == [{"bearer": []}]
        assert doc["paths"]["/healthz"]["get"]["security"] == []


async def test_a_coordination_event_with_cut_fields_is_served_not_a_500(
        ctx: AdminContext, client: httpx.AsyncClient) -> None:
    """A SyncGroup of a large group is cut by the event log (its `assignments`, `members`,
    `offsets`... become notes naming their size); the response model must take those notes
    where it otherwise wants a map or a list, or the whole page answers 500."""
    ctx.events.max_event_bytes = 1_000
    members = [f"member-{i}-{'x' * 30}" for i in range(60)]
    ctx.events.record({
        "api": "SyncGroup", "api_key": 14, "version": 5, "group": "big", "member_id": members[0],
        "generation": 4, "outcome": "ok", "latency_ms": 1.5,
        "protocols": [f"assignor-{i}" for i in range(60)],
        "subscription": [f"topic-{i}" for i in range(60)],
        "members": [{"member_id": m, "subscription": ["t"]} for m in members],
        "assignments": {m: {"t": list(range(10))} for m in members},
        "assignment": {f"topic-{i}": list(range(20)) for i in range(20)},
        "offsets": {f"topic-{i}": {"0": {"offset": 1}} for i in range(60)},
    })
    r = await client.get("/events", params={"group": "big"})
    assert r.status_code == 200, r.text
    (event,) = r.json()
    assert event["latency_ms"] == 1.5  # small fields are never cut
    for field in ("members", "assignments", "offsets"):
        assert event[field].endswith("truncated>") and field in event["truncated"]


async def test_whole_number_parameters_take_digits_only(
        ctx: AdminContext, client: httpx.AsyncClient) -> None:
    """`since`, `limit`: integers in the OpenAPI document, so "0.0" or "1e3" is a 422 that
    says what to write, not a number parsed leniently."""
    ctx.events.observe(_heartbeat("g1", "m-1"))
    for bad in ("0.0", "1e3", "two"):
        r = await client.get("/events", params={"since": bad})
        assert r.status_code == 422 and "whole number" in r.text, (bad, r.text)
    assert (await client.get("/events", params={"limit": "5.0"})).status_code == 422
    assert [e["seq"] for e in (await client.get("/events", params={"since": "0"})).json()] == [1]
