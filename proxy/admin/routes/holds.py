"""Holds over HTTP: list the requests and responses parked by `hold` rules, release them.

A release continues the exchange as if the hold's `until` had happened (the request is
forwarded, or handed to the next rule of a chain; the response is delivered). Thin over
`proxy.holds.HoldRegistry`; without a data plane there are no holds (an empty list, 404 on
release).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from kafka_chaos_proxy.proxy.admin.context import AdminContext, get_ctx
from kafka_chaos_proxy.proxy.admin.guard import require_json_post
from kafka_chaos_proxy.proxy.admin.schemas import ApiError
from kafka_chaos_proxy.proxy.holds import HoldRegistry

router = APIRouter(tags=["holds"], dependencies=[Depends(require_json_post)])

Ctx = Annotated[AdminContext, Depends(get_ctx)]

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ApiError, "description": "No hold with that id (it may have ended)."}
}


class HoldOut(BaseModel):
    id: int
    rule: str | None = None
    connection: int
    api: str | None = None
    correlation_id: int
    side: str
    held_ms: float = Field(description="How long it has been held so far.")
    timeout_ms: int
    on_timeout: str
    until: dict[str, Any] | None = Field(None, description="The event that ends it.")
    count: int
    seen: int = Field(description="Events of `until` seen since the hold began.")


class Released(BaseModel):
    released: int = Field(description="How many holds were released.")
    holds: list[HoldOut]


def _registry(ctx: AdminContext) -> HoldRegistry:
    return ctx.holds if ctx.holds is not None else HoldRegistry()


@router.get("/holds", summary="Parked requests and responses", response_model=list[HoldOut])
async def list_holds(ctx: Ctx) -> list[dict[str, Any]]:
    return _registry(ctx).list()


@router.post("/holds/{hold_id}/release", summary="Release one hold", response_model=HoldOut,
             responses=_NOT_FOUND)
async def release_hold(ctx: Ctx, hold_id: int) -> dict[str, Any]:
    return _registry(ctx).release(hold_id).to_json()


@router.post("/faults/{rule_id}/release", summary="Release every hold of one rule",
             response_model=Released, tags=["faults"])
async def release_rule_holds(ctx: Ctx, rule_id: str) -> dict[str, Any]:
    ctx.engine.get(rule_id)  # 404 for an unknown rule, like every /faults/{id} route
    released = _registry(ctx).release_rule(rule_id)
    return {"released": len(released), "holds": [h.to_json() for h in released]}


