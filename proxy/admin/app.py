"""Build the admin FastAPI application around an `AdminContext`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from kafka_chaos_proxy.proxy.admin import errors
from kafka_chaos_proxy.proxy.admin.auth import OPEN_PATHS, BearerAuthMiddleware
from kafka_chaos_proxy.proxy.admin.context import AdminContext
from kafka_chaos_proxy.proxy.admin.guard import AdminGuardMiddleware
from kafka_chaos_proxy.proxy.admin.routes import events, faults, groups, holds, system, ui
from kafka_chaos_proxy.proxy.admin.schemas import ApiError

DESCRIPTION = (
    "Manage fault rules, inspect consumer groups and the coordination event log of a "
    "running kafka-chaos-proxy, and scrape its metrics."
)


# What the front door (`proxy.admin.guard`) may answer on any operation.
GUARD_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"model": ApiError, "description": "Host or Origin not allowed"},
    413: {"model": ApiError, "description": "Request body too large"},
    415: {"model": ApiError, "description": "POST without Content-Type: application/json"},
}


def create_app(ctx: AdminContext) -> FastAPI:
    app = FastAPI(
        title="kafka-chaos-proxy admin API",
        version="1",
        description=DESCRIPTION,
        responses=GUARD_RESPONSES,
        # /docs comes from routes.ui with the vendored Swagger UI (no CDN); no ReDoc.
        docs_url=None,
        redoc_url=None,
    )
    app.state.ctx = ctx
    errors.install(app)
    for module in (faults, holds, groups, events, system, ui):
        app.include_router(module.router)
    if ctx.token:
        app.add_middleware(BearerAuthMiddleware, token=ctx.token)
        _document_bearer(app)
    # Added last, so it runs first: a refused Host or Origin never reaches the token check.
    app.add_middleware(AdminGuardMiddleware, hosts=ctx.allowed_hosts,
                       max_body_bytes=ctx.max_body_bytes)
    return app


def _document_bearer(app: FastAPI) -> None:
    """Say in the OpenAPI document that every operation but the open ones needs the token."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = {
            "type": "http",
            "scheme": "bearer",
        }
        schema["security"] = [{"bearer": []}]
        for path in OPEN_PATHS:
            for operation in schema.get("paths", {}).get(path, {}).values():
                operation["security"] = []
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
