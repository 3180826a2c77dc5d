"""Error responses that tell the caller what to fix.

FastAPI's default 422 is a list of pydantic error objects; we keep that list (so generic
clients still parse it) and add `message`: one line per problem, "field.path: what is wrong",
with pydantic's "Value error, " prefix removed because our validators already phrase the fix.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from faults.engine import DuplicateRuleError, UnknownRuleError
from faults.model import ACTION_TYPES

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


async def _on_duplicate_rule(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=409, content={"detail": str(exc)})


async def _on_value_error(request: Request, exc: Exception) -> JSONResponse:
    """Engine-level rejections (e.g. a patch that names an unknown field) are the caller's."""
    return JSONResponse(status_code=422, content={"detail": str(exc), "message": str(exc)})


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_request_validation)
    app.add_exception_handler(ValidationError, _on_model_validation)
    app.add_exception_handler(UnknownRuleError, _on_unknown_rule)
    app.add_exception_handler(DuplicateRuleError, _on_duplicate_rule)
    app.add_exception_handler(ValueError, _on_value_error)
