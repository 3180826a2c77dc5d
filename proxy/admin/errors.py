"""Error responses that tell the caller what to fix.

FastAPI's default 422 is a list of pydantic error objects; we keep that list (so generic
clients still parse it) and add `message`: one line per problem, "field.path: what is wrong",
with pydantic's "Value error, " prefix removed because our validators already phrase the fix.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from kafka_chaos_proxy.faults.engine import (
    DuplicateRuleError,
    RuleLimitError,
    TriggerError,
    UnknownRuleError,
)
from kafka_chaos_proxy.faults.model import ACTION_TYPES
from kafka_chaos_proxy.proxy.holds import UnknownHoldError

_LOCATION_PREFIXES = ("body", "query", "path", "header")


def _where(loc: Iterable[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in _LOCATION_PREFIXES:
        kind, parts = parts[0], parts[1:]
        if kind != "body" and parts:
            return f"{kind} parameter {'.'.join(parts)}"
    # Discriminated unions put the tag into the path (action.delay.fixed_ms): the caller wrote
    # action.fixed_ms, so say that.
    if len(parts) >= 2 and parts[0] == "action" and parts[1] in ACTION_TYPES:
        del parts[1]
    return ".".join(parts) or "request body"


def readable(errors: Iterable[Mapping[str, Any]]) -> str:
    lines = []
    for err in errors:
        msg = str(err.get("msg", "invalid"))
        msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
        lines.append(f"{_where(err.get('loc', ()))}: {msg}")
    return "; ".join(lines)


def _validation_payload(errors: list[Any]) -> dict[str, Any]:
    detail = [
        {k: v for k, v in err.items() if k in ("loc", "msg", "type", "input")} for err in errors
    ]
    return {
        "detail": jsonable_encoder(detail, custom_encoder={bytes: repr}),
        "message": readable(errors),
    }


async def _on_request_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(status_code=422, content=_validation_payload(list(exc.errors())))


async def _on_model_validation(request: Request, exc: Exception) -> JSONResponse:
    """A rule that failed validation after parsing (PATCH merges, file loads)."""
    assert isinstance(exc, ValidationError)
    errors = [dict(e) for e in exc.errors()]
    return JSONResponse(status_code=422, content=_validation_payload(errors))


async def _on_unknown_rule(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=404, content={"detail": str(exc)})


async def _on_unknown_hold(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=404, content={"detail": str(exc)})


async def _on_duplicate_rule(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=409, content={"detail": str(exc)})


async def _on_trigger_error(request: Request, exc: Exception) -> JSONResponse:
    """A rule set whose triggers cannot work: shaped like a validation error of the body,
    with the field to fix (``when.after.rule``) as its location."""
    assert isinstance(exc, TriggerError)
    message = str(exc).removeprefix(f"{exc.field}: ")
    errors = [{"loc": ["body", *exc.field.split(".")], "msg": message, "type": "value_error"}]
    return JSONResponse(status_code=422, content=_validation_payload(errors))


async def _on_value_error(request: Request, exc: Exception) -> JSONResponse:
    """Engine-level rejections (e.g. a patch that names an unknown field) are the caller's."""
    return JSONResponse(status_code=422, content={"detail": str(exc), "message": str(exc)})


def _allowed_methods(app: FastAPI, path: str) -> set[str]:
    """Methods the OpenAPI document lists for the path template that matches `path`."""
    for template, operations in app.openapi().get("paths", {}).items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            methods = {m.upper() for m in operations}
            if "GET" in methods:
                methods.add("HEAD")
            return methods
    return set()


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's 405 names only the methods of the first route on the path; FastAPI has a
    route per method, so list them all, as `Allow` must."""
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        allowed = _allowed_methods(request.app, request.url.path)
        if allowed:
            headers["Allow"] = ", ".join(sorted(allowed))
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)


def install(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(RequestValidationError, _on_request_validation)
    app.add_exception_handler(ValidationError, _on_model_validation)
    app.add_exception_handler(UnknownRuleError, _on_unknown_rule)
    app.add_exception_handler(UnknownHoldError, _on_unknown_hold)
    app.add_exception_handler(DuplicateRuleError, _on_duplicate_rule)
    app.add_exception_handler(RuleLimitError, _on_duplicate_rule)  # 409 too: the set is full
    app.add_exception_handler(TriggerError, _on_trigger_error)
    app.add_exception_handler(ValueError, _on_value_error)
