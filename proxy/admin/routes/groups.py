"""Consumer groups as the proxy has seen them: generation, leader, members, assignments."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from kafka_chaos_proxy.proxy.admin.context import AdminContext, get_ctx
from kafka_chaos_proxy.proxy.admin.schemas import ApiError, GroupDetail, GroupSummary

router = APIRouter(prefix="/groups", tags=["groups"])

Ctx = Annotated[AdminContext, Depends(get_ctx)]


@router.get("", summary="Every group seen, newest state", response_model=list[GroupSummary])
async def list_groups(ctx: Ctx) -> list[dict[str, Any]]:
    return [group.summary() for group in ctx.groups.list()]


@router.get(
    "/{group_id}",
    summary="One group with its members, assignment and committed offsets",
    response_model=GroupDetail,
    responses={404: {"model": ApiError, "description": "The proxy has not seen that group."}},
)
async def get_group(ctx: Ctx, group_id: str) -> Any:
    group = ctx.groups.get(group_id)
    if group is None:
        return JSONResponse(
            status_code=404,
            content={"detail": f"no group {group_id!r} seen through this proxy"},
        )
    return group.detail()
