"""Exchanges for observers, and the error responses faults stand in for the broker's.

Only the coordination APIs are observed (`proxy.roles.COORDINATION_API_KEYS`, and only while
the server has observers). Their request body is decoded when the request arrives, the
broker's response body when it comes back (`_observe_broker_response`), and one `Exchange` goes
to every observer once the outcome is known (`end_exchange`). A synthesized error
(`synthesize_error`) is what such a client saw instead of the broker's answer.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.codec import api_label
from kafka_chaos_proxy.faults.decision import ActionKind
from kafka_chaos_proxy.proxy import metrics
from kafka_chaos_proxy.proxy.config import ProxyConfig
from kafka_chaos_proxy.proxy.exchange import Exchange
from kafka_chaos_proxy.proxy.pipeline.executors import executor_for
from kafka_chaos_proxy.proxy.pipeline.framing import with_size
from kafka_chaos_proxy.proxy.pipeline.host import ProxyHost
from kafka_chaos_proxy.proxy.pipeline.request_context import RequestContext

log = structlog.get_logger("kcp.connection")

_RESPONSE = codec.Direction.RESPONSE


class ExchangeBuilder:
    """Part of `Connection`: building exchanges and synthesized error responses."""

    # The connection facts used here (set by `ConnectionCore.__init__`). The server registers
    # `Connection`s; that it can is checked where they are made (`ClientSide`).
    server: ProxyHost[Any]
    loop: asyncio.AbstractEventLoop
    id: int
    client_host: str
    node_id: int
    open_exchanges: dict[int, RequestContext]
    config: ProxyConfig

    def end_exchange(self, ctx: RequestContext, outcome: str) -> None:
        if not ctx.exchange_wanted or self.open_exchanges.pop(id(ctx), None) is None:
            return
        now = self.loop.time()
        ex = Exchange(
            connection_id=self.id,
            client_host=self.client_host,
            broker_node=self.node_id,
            client_id=ctx.client_id,
            api_key=ctx.api_key,
            api_version=ctx.api_version,
            correlation_id=ctx.correlation_id,
            request_body=ctx.body() if ctx.observed else None,
            response_body=ctx.response_body if outcome in ("ok", "error_injected") else None,
            started_at=ctx.started_at,
            latency_s=now - ctx.started_mono,
            upstream_latency_s=(None if ctx.forwarded_at is None
                                else now - ctx.forwarded_at),
            outcome=outcome,
            decision=ctx.decision,
            principal=ctx.principal,
        )
        for observer in self.server.observers:
            try:
                observer.observe(ex)
            except Exception:
                log.exception("observer_failed", observer=type(observer).__name__)

    def _end_written(self, ctx: RequestContext) -> None:
        """An observed request's response has been written to the client."""
        action = ctx.decision.action
        if ctx.written_as is not None:
            self.end_exchange(ctx, ctx.written_as)
            return
        self.end_exchange(ctx, "ok" if action is ActionKind.FORWARD
                          else executor_for(action).written_outcome)

    def too_large_to_observe(self, ctx: RequestContext, size: int) -> None:
        """Leave a coordination frame over `max_observed_bytes` undecoded for observers (it
        is still forwarded and faulted): its exchange reaches them without bodies."""
        ctx.observed = False
        log.warning("not_observed", conn=self.id, api=api_label(ctx.api_key), bytes=size,
                    limit=self.config.max_observed_bytes)

    def _observe_broker_response(self, ctx: RequestContext, data: bytes) -> None:
        if not ctx.observed or len(data) > self.config.max_observed_bytes:
            if ctx.observed:
                self.too_large_to_observe(ctx, len(data))
            return
        try:
            _, hsize = codec.parse_response_header(memoryview(data)[4:], ctx.api_key,
                                                   ctx.api_version)
            body = codec.decode_body(ctx.api_key, ctx.api_version, _RESPONSE,
                                     memoryview(data)[4 + hsize:])
        except Exception as exc:
            log.warning("response_decode_failed", conn=self.id, api=api_label(ctx.api_key),
                        version=ctx.api_version, error=str(exc))
            return
        # Broker error codes are counted by the control plane's observer, from this body.
        ctx.response_body = body

    def synthesize_error(self, ctx: RequestContext, error_code: int | None) -> bytes | None:
        from kafka_chaos_proxy.codec.error_response import error_response

        code = -1 if error_code is None else error_code
        try:
            body = error_response(ctx.api_key, ctx.api_version, ctx.body() or {}, code)
            payload = (codec.encode_response_header(ctx.api_key, ctx.api_version,
                                                    ctx.correlation_id)
                       + codec.encode_body(ctx.api_key, ctx.api_version, _RESPONSE, body))
        except Exception:
            log.exception("error_synthesis_failed", conn=self.id, api=api_label(ctx.api_key),
                          version=ctx.api_version, error_code=code)
            return None
        metrics.injected_errors_total.labels(
            metrics.api_metric_label(ctx.api_key), metrics.error_metric_label(code)).inc()
        if ctx.exchange_wanted:
            ctx.response_body = body  # the outcome is set when it is written
        return with_size(payload)

