"""The admin API's front door: Host and Origin, JSON-only POSTs, body size, the token scheme.

Each test is one of the attacks measured against the admin plane, replayed in-process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from kafka_chaos_proxy.proxy.admin import AdminContext, create_app
from kafka_chaos_proxy.proxy.admin.guard import allowed_hosts

RULE = {"id": "r1", "match": {"apis": ["SyncGroup"]},
        "action": {"type": "error", "error": "NOT_COORDINATOR"}}
JSON = {"Content-Type": "application/json"}


async def _client(ctx: AdminContext, base: str = "http://127.0.0.1") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(ctx)), base_url=base)


@pytest.fixture
async def local(ctx: AdminContext) -> AsyncIterator[httpx.AsyncClient]:
    async with await _client(ctx) as c:
        assert (await c.post("/faults", json=RULE)).status_code == 201
        yield c


async def test_dns_rebinding_host_is_refused(ctx: AdminContext,
                                             local: httpx.AsyncClient) -> None:
    r = await local.get("/faults", headers={"Host": "attacker.example"})
    assert r.status_code == 403 and "'attacker.example' is not allowed" in r.json()["detail"]
    for host in ("localhost:9190", "127.0.0.1", "[::1]:9190"):
        assert (await local.get("/faults", headers={"Host": host})).status_code == 200


async def test_cross_origin_simple_post_changes_nothing(ctx: AdminContext,
                                                        local: httpx.AsyncClient) -> None:
    # The browser's "simple" request: text/plain body, foreign Origin, no preflight.
    r = await local.post("/faults/r1/disable", content=b"x",
                         headers={"Content-Type": "text/plain",
                                  "Origin": "https://attacker.example"})
    assert r.status_code == 403 and "Origin" in r.json()["detail"]
    # Same request without an Origin (curl without the header): refused for its content type.
    r = await local.post("/faults/r1/disable", content=b"x", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and "Content-Type: application/json" in r.json()["detail"]
    assert ctx.engine.get("r1").enabled is True
    r = await local.post("/faults/r1/disable", headers={**JSON, "Origin": "http://localhost:9190"})
    assert r.status_code == 200 and ctx.engine.get("r1").enabled is False


async def test_wrong_method_is_still_405(local: httpx.AsyncClient) -> None:
    assert (await local.post("/groups", headers={"Content-Type": "text/plain"})).status_code == 405


async def test_oversized_bodies_are_refused_before_parsing(ctx: AdminContext,
                                                           local: httpx.AsyncClient) -> None:
    big = {**RULE, "id": "big", "description": "x" * (2 * 1024 * 1024)}
    r = await local.post("/faults", json=big)
    assert r.status_code == 413 and "over 1048576 bytes" in r.json()["detail"]

    async def chunks() -> AsyncIterator[bytes]:  # no content-length: counted while read
        for _ in range(40):
            yield b" " * 65536

    r = await local.put("/faults/r1", content=chunks(), headers=JSON)
    assert r.status_code == 413
    assert [rule.id for rule in ctx.engine.list()] == ["r1"]


async def test_configured_hosts_and_any_host(ctx: AdminContext) -> None:
    named = replace(ctx, allowed_hosts=allowed_hosts(["kcp.internal"], "10.1.2.3"))
    async with await _client(named, "http://kcp.internal") as c:
        assert (await c.get("/faults")).status_code == 200
        assert (await c.get("/faults", headers={"Host": "10.1.2.3:9190"})).status_code == 200
        assert (await c.get("/faults", headers={"Host": "other"})).status_code == 403
    anyone = replace(ctx, allowed_hosts=allowed_hosts(["*"]))
    async with await _client(anyone, "http://whatever.example") as c:
        assert (await c.get("/faults")).status_code == 200


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
async def test_bearer_scheme_is_case_insensitive(ctx: AdminContext, scheme: str) -> None:
    async with await _client(replace(ctx, token="tok")) as c:

        async def status(header: str) -> int:
            return (await c.get("/faults", headers={"Authorization": header})).status_code

        assert await status(f"{scheme} tok") == 200
        assert await status(f"{scheme} nope") == 401
        assert await status("Basic tok") == 401
        assert (await c.get("/healthz")).status_code == 200


async def test_a_full_rule_set_is_409_saying_what_to_do(ctx: AdminContext) -> None:
    from kafka_chaos_proxy.faults.engine import FaultEngine

    async with await _client(replace(ctx, engine=FaultEngine(max_rules=1))) as c:
        assert (await c.post("/faults", json=RULE)).status_code == 201
        r = await c.post("/faults", json={**RULE, "id": "r2"})
        assert r.status_code == 409 and "at most 1 rules (--max-rules)" in r.json()["detail"]
        r = await c.post("/faults", json={"action": {"type": "close"}})
        assert r.status_code == 422 and "a rule needs a match" in r.text
