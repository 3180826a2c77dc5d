"""The admin API's UI routes: the page and its files open without the token (they hold no
data), the timeline SVG behind it, /docs served from the vendored Swagger UI, nothing off-site.
"""

from __future__ import annotations

import re
from dataclasses import replace
from importlib import resources
from typing import Any

import httpx

from kafka_chaos_proxy.proxy.admin import AdminContext, create_app
from kafka_chaos_proxy.proxy.admin.routes import ui

AUTH = {"Authorization": "Bearer s3cret"}


def _event(seq: int, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"ts": 100.0 + seq, "api": "JoinGroup", "version": 9, "group": "g1",
                            "connection": 3, "client_id": "c-m0", "member_id": "c-m0-1",
                            "broker": 1, "generation": 1, "latency_ms": 4.0, "outcome": "ok",
                            "error": None, "fault": None}
    base.update(fields)
    return base


def _client(ctx: AdminContext) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(replace(ctx, token="s3cret")))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1")


async def test_page_and_static_files_need_no_token_and_load_only_their_own(
        ctx: AdminContext) -> None:
    async with _client(ctx) as c:
        page = await c.get("/ui")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        refs = re.findall(r"(?:src|href)=\"([^\"]+)\"", page.text)
        assert "/ui/static/ui.js" in refs and "/ui/static/ui.css" in refs
        assert all(r.startswith(("/", "#", "data:")) for r in refs), refs
        for name, kind in (("ui.js", "text/javascript"), ("ui.css", "text/css"),
                           ("swagger/swagger-ui-bundle.js", "text/javascript"),
                           ("swagger/swagger-ui.css", "text/css"),
                           ("swagger/favicon-32x32.png", "image/png")):
            r = await c.get(f"/ui/static/{name}")
            assert r.status_code == 200, name
            assert r.headers["content-type"].startswith(kind), name
        assert (await c.get("/ui/static/nope.js")).status_code == 404
        # no dot segments through the open prefix, even though routing would not resolve them
        assert (await c.get("/ui/static/%2e%2e/faults")).status_code == 401
        assert (await c.get("/ui/timeline/g1.svg")).status_code == 401


async def test_timeline_svg_of_a_group_from_the_event_ring(ctx: AdminContext) -> None:
    ctx.events.record(_event(1))
    ctx.events.record(_event(2, api="SyncGroup", outcome="error_injected",
                             error="NOT_COORDINATOR",
                             fault={"rule": "sync-nc", "action": "error"}))
    ctx.events.record(_event(3, group="other"))
    async with _client(ctx) as c:
        r = await c.get("/ui/timeline/g1.svg", headers=AUTH)
        assert r.status_code == 200 and r.headers["content-type"] == "image/svg+xml"
        assert r.text.count('class="span ') == 2
        assert 'data-rule="sync-nc"' in r.text and 'data-outcome="injected"' in r.text
        cut = await c.get("/ui/timeline/g1.svg", params={"max_events": 1}, headers=AUTH)
        assert "cut: showing the last 1 of 2 exchanges" in cut.text
        bad = await c.get("/ui/timeline/g1.svg", params={"max_events": 0}, headers=AUTH)
        assert bad.status_code == 422
        ctx.events.record(_event(4, group="team/orders"))
        slash = await c.get("/ui/timeline/team%2Forders.svg", headers=AUTH)
        assert slash.status_code == 200 and slash.text.count('class="span ') == 1


async def test_docs_use_the_vendored_swagger_ui(ctx: AdminContext) -> None:
    async with _client(ctx) as c:
        assert (await c.get("/docs")).status_code == 401  # the document is behind the token
        r = await c.get("/docs", headers=AUTH)
        assert r.status_code == 200
        assert "/ui/static/swagger/swagger-ui-bundle.js" in r.text
        assert "/ui/static/swagger/swagger-ui.css" in r.text
        assert re.findall(r"https?://", r.text) == []
        assert '"validatorUrl": null' in r.text
        assert (await c.get("/redoc", headers=AUTH)).status_code == 404
        paths = (await c.get("/openapi.json", headers=AUTH)).json()["paths"]
        assert not [p for p in paths if p.startswith(("/ui", "/docs"))]


def test_swagger_ui_ships_with_its_licence() -> None:
    swagger = resources.files("kafka_chaos_proxy.proxy.admin") / "static" / "swagger"
    assert "Apache License" in (swagger / "LICENSE").read_text()
    assert "SmartBear" in (swagger / "NOTICE").read_text()
    assert "sourceMappingURL" not in (swagger / "swagger-ui.css").read_text()
    assert set(ui._STATIC) >= {"ui.html", "ui.js", "ui.css", "swagger/swagger-ui-bundle.js"}
