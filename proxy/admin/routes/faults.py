"""Fault rules over HTTP: create, read, replace, patch, toggle, delete, clear, export.

Shaped after Toxiproxy's API (a collection of named things you POST to and address by id), with
the engine as the only store: every route is a thin call into `FaultEngine`, whose errors become
404 (unknown id), 409 (duplicate id) and 422 (invalid rule, with what to fix).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Response, status

from kafka_chaos_proxy.faults.model import FaultRule
from kafka_chaos_proxy.proxy.admin.context import AdminContext, get_ctx
from kafka_chaos_proxy.proxy.admin.guard import require_json_post
from kafka_chaos_proxy.proxy.admin.schemas import ApiError, Cleared, RuleOut

router = APIRouter(prefix="/faults", tags=["faults"], dependencies=[Depends(require_json_post)])

Ctx = Annotated[AdminContext, Depends(get_ctx)]
RuleId = Annotated[str, "fault rule id"]

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ApiError, "description": "No rule with that id."}
}

_BAD_BODY: dict[int | str, dict[str, Any]] = {
    400: {"model": ApiError, "description": "The body is not parseable JSON."}
}

_DUPLICATE: dict[int | str, dict[str, Any]] = {
    409: {"model": ApiError, "description": "A rule with that id exists."}
}

_EXPORT_MEDIA = {"yaml": "application/yaml", "json": "application/json"}


def _rule(ctx: AdminContext, rule_id: str) -> dict[str, Any]:
    return ctx.engine.rule_json(rule_id)


@router.get("", summary="List every rule with its stats", response_model=list[RuleOut])
async def list_rules(ctx: Ctx) -> list[dict[str, Any]]:
    return ctx.engine.list_json()


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Add a rule",
    response_model=RuleOut,
    responses=_DUPLICATE | _BAD_BODY,
)
async def add_rule(ctx: Ctx, rule: FaultRule) -> dict[str, Any]:
    added = ctx.engine.add(rule)
    assert added.id is not None  # the engine assigns one
    return _rule(ctx, added.id)


@router.delete("", summary="Delete every rule", response_model=Cleared)
async def clear_rules(ctx: Ctx) -> Cleared:
    return Cleared(removed=ctx.engine.clear())


@router.get(
    "/export",
    summary="Every rule as a rule file (YAML or JSON) that `run --faults` loads",
    response_class=Response,
    responses={200: {"content": {"application/yaml": {}, "application/json": {}}}},
)
async def export_rules(
    ctx: Ctx, format: Annotated[Literal["yaml", "json"], Query()] = "yaml"
) -> Response:
    return Response(content=ctx.engine.export(format), media_type=_EXPORT_MEDIA[format])


@router.get("/{rule_id}", summary="One rule", response_model=RuleOut, responses=_NOT_FOUND)
async def get_rule(ctx: Ctx, rule_id: RuleId) -> dict[str, Any]:
    return _rule(ctx, rule_id)


@router.put(
    "/{rule_id}",
    summary="Replace a rule (its stats restart)",
    response_model=RuleOut,
    responses=_NOT_FOUND | _BAD_BODY,
)
async def replace_rule(ctx: Ctx, rule_id: RuleId, rule: FaultRule) -> dict[str, Any]:
    ctx.engine.replace(rule_id, rule)
    return _rule(ctx, rule_id)


@router.patch(
    "/{rule_id}",
    summary="Change some fields of a rule (nested objects merge)",
    response_model=RuleOut,
    responses=_NOT_FOUND | _BAD_BODY,
)
async def patch_rule(
    ctx: Ctx,
    rule_id: RuleId,
    changes: Annotated[
        dict[str, Any],
        Body(examples=[{"enabled": False}, {"dosage": {"probability": 0.5}}]),
    ],
) -> dict[str, Any]:
    ctx.engine.patch(rule_id, changes)
    return _rule(ctx, rule_id)


@router.delete(
    "/{rule_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a rule",
    response_class=Response,
    responses=_NOT_FOUND,
)
async def delete_rule(ctx: Ctx, rule_id: RuleId) -> Response:
    ctx.engine.remove(rule_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{rule_id}/enable",
    summary="Enable a rule",
    response_model=RuleOut,
    responses=_NOT_FOUND,
)
async def enable_rule(ctx: Ctx, rule_id: RuleId) -> dict[str, Any]:
    ctx.engine.set_enabled(rule_id, True)
    return _rule(ctx, rule_id)


@router.post(
    "/{rule_id}/disable",
    summary="Disable a rule (kept, with its stats)",
    response_model=RuleOut,
    responses=_NOT_FOUND,
)
async def disable_rule(ctx: Ctx, rule_id: RuleId) -> dict[str, Any]:
    ctx.engine.set_enabled(rule_id, False)
    return _rule(ctx, rule_id)
