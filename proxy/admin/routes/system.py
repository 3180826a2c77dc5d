"""The running proxy: connections, brokers, Prometheus metrics and health."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from kafka_chaos_proxy.proxy import metrics
from kafka_chaos_proxy.proxy.admin.context import AdminContext, get_ctx
from kafka_chaos_proxy.proxy.admin.schemas import BrokerInfo, ConnectionInfo, Health

router = APIRouter()

Ctx = Annotated[AdminContext, Depends(get_ctx)]


def _as_is(items: list[dict[str, Any]]) -> JSONResponse:
    """The data plane owns these shapes; the models document them, and the integration tests
    check the real ones against the models, so a drift never turns into a 500 here."""
    return JSONResponse(items)


@router.get(
    "/healthz", tags=["system"], summary="Liveness; never needs a token", response_model=Health
)
async def healthz() -> Health:
    return Health()


@router.get(
    "/connections",
    tags=["system"],
    summary="Client connections open now",
    response_model=list[ConnectionInfo],
)
async def connections(ctx: Ctx) -> JSONResponse:
    return _as_is(ctx.proxy.list_connections() if ctx.proxy is not None else [])


@router.get(
    "/brokers",
    tags=["system"],
    summary="Brokers known and the proxy listener of each",
    response_model=list[BrokerInfo],
)
async def brokers(ctx: Ctx) -> JSONResponse:
    return _as_is(ctx.proxy.list_brokers() if ctx.proxy is not None else [])


@router.get(
    "/metrics",
    tags=["system"],
    summary="Prometheus metrics (text exposition format)",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
async def prometheus_metrics(ctx: Ctx) -> Response:
    # Sessions expire lazily; a scrape is a read, so kcp_group_members is current when seen.
    ctx.groups.expire()
    return Response(content=generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)
