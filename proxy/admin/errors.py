"""Error responses that tell the caller what to fix.

FastAPI's default 422 is a list of pydantic error objects; we keep that list (so generic
clients still parse it) and add `message`: one line per problem, "field.path: what is wrong",
with pydantic's "Value error, " prefix removed because our validators already phrase the fix;
and `problems`: the same, as {"field", "message"} pairs for programs. Field paths and wording
come from `faults.model`, which rule files and the Python API's local check use too.
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
from kafka_chaos_proxy.faults.model import field_path, problem_message
from kafka_chaos_proxy.proxy.holds import UnknownHoldError

_LOCATION_PREFIXES = ("body", "query", "path", "header")


def _field(loc: Iterable[Any]) -> str:
    """A body field as the caller wrote it (`faults.model.field_path`; "" for the body as a
    whole), or "<kind> parameter <name>" for a query, path or header parameter."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in _LOCATION_PREFIXES:
        kind, parts = parts[0], parts[1:]
        if kind != "body" and parts:
            return f"{kind} parameter {'.'.join(parts)}"
    return field_path(parts)


def problems(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """{"field", "message"} per problem: what a program (the Python API's `RuleRejected`)
    reads to say which field to fix. The same pairs as a local check of the rule with
    `faults.model.validation_problems` gives."""
    return [{"field": _field(err.get("loc", ())),
             "message": problem_message(err.get("msg", "invalid"))} for err in errors]


def _validation_payload(errors: list[Any]) -> dict[str, Any]:
    detail = [
        {k: v for k, v in err.items() if k in ("loc", "msg", "type", "input")} for err in errors
    ]
    found = problems(errors)
    return {
        "detail": jsonable_encoder(detail, custom_encoder={bytes: repr}),
        "message": "; ".join(f"{p['field'] or 'request body'}: {p['message']}" for p in found),
        "problems": found,
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
