"""`ProxyServer`: listeners, the broker address map and the live connections, wired together.

It is the one object the pipeline asks about the outside world (where is node N, what is my
listener for it, who decides faults, who observes exchanges): the pipeline's
`proxy.pipeline.host.ProxyHost`, satisfied structurally (the pipeline never imports this
module). It is also the `ProxyInfo` the admin API lists connections and brokers from.
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
import time
from collections.abc import Callable, Iterable
from typing import Any

import structlog

from kafka_chaos_proxy.faults.decision import FaultDecider
from kafka_chaos_proxy.proxy.address_map import AddressMap
from kafka_chaos_proxy.proxy.capture import FrameCapture
from kafka_chaos_proxy.proxy.config import ProxyConfig
from kafka_chaos_proxy.proxy.discovery import DiscoveryError, fetch_brokers
from kafka_chaos_proxy.proxy.event_fields import fetch_event_fields
from kafka_chaos_proxy.proxy.exchange import ExchangeObserver
from kafka_chaos_proxy.proxy.fetch_sessions import FetchSample, TopicNames
from kafka_chaos_proxy.proxy.listeners import BOOTSTRAP_NODE, ListenerSet, ProtocolFactory
from kafka_chaos_proxy.proxy.pipeline import limits
from kafka_chaos_proxy.proxy.pipeline.connection import ClientSide, Connection
from kafka_chaos_proxy.proxy.pipeline.host import FetchSink, TriggerHooks
from kafka_chaos_proxy.proxy.sasl_login import SaslLoginError
from kafka_chaos_proxy.proxy.tls import errors as tls_errors
from kafka_chaos_proxy.proxy.tls.contexts import listener_context, upstream_context
from kafka_chaos_proxy.proxy.transforms import Transform, build_transforms

# Where Fetch sample events go: the fields of one event (`EventLog.record`).
EventSink = Callable[[dict[str, Any]], object]

log = structlog.get_logger("kcp.server")

_NO_KEYS: frozenset[int] = frozenset()


class ProxyServer:
    def __init__(self, config: ProxyConfig, decider: FaultDecider | None = None,
                 observers: Iterable[ExchangeObserver] = (),
                 triggers: TriggerHooks | None = None,
                 fetch_event_sink: EventSink | None = None) -> None:
        self.config = config
        self.decider = decider
        self.observers: list[ExchangeObserver] = list(observers)
        # In-proxy triggers and holds (`proxy.trigger_feed.TriggerFeed`, also among the
        # observers); None: rules with `when` never arm on events and holds time out at once.
        self.triggers = triggers
        # Fetch sample events (`config.fetch_events`) go to `fetch_event_sink` (the event
        # log's `record`); with the option off no connection decodes a Fetch request.
        self._fetch_events = fetch_event_sink
        self.fetch_sink: FetchSink | None = (
            self._record_fetch if config.fetch_events and fetch_event_sink is not None
            else None)
        self.topic_names = TopicNames()
        # A decider that can name the API keys no rule matches (the fault engine) lets the
        # pipeline forward those without a decision; others (a wrapper counting every
        # request by client id, a test's recorder) see every request.
        self._quiet_api_keys: Callable[[str | None], frozenset[int]] | None = getattr(
            decider, "quiet_api_keys", None)
        self.address_map = AddressMap()
        self.listeners = ListenerSet(config.listen_host, self._factory,
                                     config.max_brokers, config.listen_backlog)
        self.connections: dict[int, Connection] = {}
        self.response_transforms: dict[int, Transform] = build_transforms(self.route)
        self._ids = itertools.count(1)
        self.admission = limits.Admission(config)
        self.started_at: float | None = None
        self._stopping = False
        self._sweep_handle: asyncio.TimerHandle | None = None
        self.capture: FrameCapture | None = None  # `run --capture`, opened by `start`
        # TLS contexts, built once (a bad file raises `TlsConfigError` here, before any
        # listener exists); None: that side is plaintext.
        self._client_tls = (listener_context(config.listener_tls)
                            if config.listener_tls is not None else None)
        self._upstream_tls = (upstream_context(config.upstream_tls)
                              if config.upstream_tls is not None else None)

    @property
    def client_tls(self) -> ssl.SSLContext | None:
        return self._client_tls

    @property
    def upstream_tls(self) -> ssl.SSLContext | None:
        return self._upstream_tls

    # -- wiring for the pipeline

    def _factory(self, node_id: int) -> ProtocolFactory:
        capture = self.capture
        if capture is None:
            return lambda: ClientSide(self, node_id)

        def capturing() -> ClientSide:
            # Resolved once per connection, so a proxy that does not capture pays nothing.
            side = ClientSide(self, node_id)
            side.conn.capture = capture
            return side

        return capturing

    def _record_fetch(self, sample: FetchSample) -> None:
        assert self._fetch_events is not None
        self._fetch_events(fetch_event_fields(sample))

    def quiet_api_keys(self, client_id: str | None) -> frozenset[int]:
        quiet = self._quiet_api_keys
        return _NO_KEYS if quiet is None else quiet(client_id)

    def next_connection_id(self) -> int:
        return next(self._ids)

    def register(self, conn: Connection) -> tuple[str, str] | None:
        refusal = self.admission.admit(conn.client_host)
        if refusal == limits.MAX_CONNECTIONS:
            return refusal, (f"{self.admission.open} connections open (max_connections "
                             f"{self.config.max_connections})")
        if refusal == limits.FD_LIMIT:
            return refusal, (f"{self.admission.open} connections open: the open-files limit "
                             f"(ulimit -n) leaves room for {self.admission.fd_cap}")
        if refusal is not None:
            return refusal, (f"{self.admission.from_ip(conn.client_host)} connections from "
                             f"{conn.client_host} (max_connections_per_ip "
                             f"{self.config.max_connections_per_ip})")
        self.connections[conn.id] = conn
        if self._stopping:
            conn.close("shutdown")
        return None

    def unregister(self, conn: Connection) -> None:
        if self.connections.pop(conn.id, None) is not None:
            self.admission.release(conn.client_host)

    # -- timeouts

    def _sweep(self) -> None:
        """Every `limits.SWEEP_INTERVAL_S`: each connection checks its timeouts (one cheap
        pass instead of a timer per frame or per connection)."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self.capture is not None:
            self.capture.flush()  # a reader of the capture sees frames within an interval
        for conn in list(self.connections.values()):
            try:
                conn.sweep(now)
            except Exception as exc:  # a bug of ours must cost one connection, not the sweep
                log.exception("sweep_failed", conn=conn.id)
                conn.close("internal_error", detail=repr(exc))
        if not self._stopping:
            self._sweep_handle = loop.call_later(limits.SWEEP_INTERVAL_S, self._sweep)

    def _check_fd_limit(self) -> None:
        """Say up front when the descriptor limit is tighter than max_connections, and refuse
        (with a log line and a metric) at what it allows rather than let accept fail with
        EMFILE, which uvloop drops silently (`limits.descriptor_cap`)."""
        cap = limits.descriptor_cap(self.config.max_connections)
        self.admission.fd_cap = cap
        if cap is not None:
            log.warning("fd_limit_low", max_connections=self.config.max_connections,
                        allowed=cap, detail=f"the open-files limit (ulimit -n) leaves room for "
                        f"about {cap} connections (two descriptors each); more are refused "
                        "(reason fd_limit): raise ulimit -n or lower max_connections")

    def upstream_candidates(self, node_id: int) -> list[tuple[str, int]]:
        if node_id == BOOTSTRAP_NODE:
            return list(self.config.bootstrap_servers)
        route = self.address_map.get(node_id)
        return [] if route is None else [(route.real_host, route.real_port)]

    def route(self, node_id: int, host: str, port: int, rack: str | None) -> tuple[str, int]:
        """Called by the rewriter for every broker address in a response: learn it, make sure
        the node has a bound listener, and return the address clients must use instead."""
        route, _new = self.address_map.learn(node_id, host, port, rack)
        if route.listen_port is None:
            listener = self.listeners.bind(
                node_id, self.config.node_listen_port(node_id, route.discovery_index))
            route.listen_port = listener.port
            log.info("broker_discovered", node=node_id, broker=f"{host}:{port}",
                     listener=f"{self.config.advertised}:{listener.port}")
        return self.config.advertised, route.listen_port

    # -- lifecycle

    async def start(self, discover: bool = True) -> None:
        if self.config.capture_path is not None and self.capture is None:
            # Before any listener exists, so every connection is captured.
            self.capture = FrameCapture(self.config.capture_path, self.config.capture_apis)
        self.listeners.bind(BOOTSTRAP_NODE, self.config.port)
        if discover:
            await self._discover()
        await self.listeners.wait_serving()
        self._check_fd_limit()
        if self.config.upstream_tls is not None and self.config.upstream_tls.insecure:
            log.warning("upstream_tls_insecure", detail="--upstream-tls-insecure: the brokers' "
                        "certificates are NOT verified, so anyone on the path can read and "
                        "change the traffic, credentials included; for tests only")
        self._sweep_handle = asyncio.get_running_loop().call_later(
            limits.SWEEP_INTERVAL_S, self._sweep)
        self.started_at = time.time()
        host, port = self.bootstrap_address
        log.info("proxy_listening", bootstrap=f"{host}:{port}",
                 upstream=",".join(f"{h}:{p}" for h, p in self.config.bootstrap_servers))

    async def _discover(self) -> None:
        """Give every broker its listener now (see `proxy.discovery`); best effort."""
        for host, port in self.config.bootstrap_servers:
            try:
                brokers = await fetch_brokers(host, port, self.config.upstream_connect_timeout_s,
                                              tls=self._upstream_tls,
                                              sasl=self.config.upstream_sasl)
            except ssl.SSLError as exc:  # before the others: counted as a TLS failure
                tls_errors.record(tls_errors.UPSTREAM, tls_errors.classify(exc),
                                  broker=f"{host}:{port}", via="discovery",
                                  detail=tls_errors.detail_of(exc))
                continue
            except (DiscoveryError, SaslLoginError) as exc:  # a secured cluster said no
                log.warning("discovery_skipped", broker=f"{host}:{port}", reason=str(exc))
                continue
            except Exception as exc:
                log.info("discovery_skipped", broker=f"{host}:{port}", reason=repr(exc))
                continue
            for node_id, bhost, bport, rack in sorted(brokers):
                try:
                    self.route(node_id, bhost, bport, rack)
                except OSError as exc:
                    log.warning("listener_bind_failed", node=node_id, error=str(exc))
            return

    @property
    def bootstrap_address(self) -> tuple[str, int]:
        return self.config.advertised, self.listeners.listeners[BOOTSTRAP_NODE].port

    @property
    def bootstrap_servers(self) -> str:
        host, port = self.bootstrap_address
        return f"{host}:{port}"

    async def stop(self, drain_timeout_s: float | None = None) -> None:
        """Stop accepting, let responses already owed to clients drain (bounded), close all."""
        self._stopping = True
        if self._sweep_handle is not None:
            self._sweep_handle.cancel()
            self._sweep_handle = None
        await self.listeners.close()
        timeout = self.config.drain_timeout_s if drain_timeout_s is None else drain_timeout_s
        for conn in list(self.connections.values()):
            conn.pause_client_reading("shutdown")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline and any(
                not c.idle for c in self.connections.values()):
            await asyncio.sleep(0.02)
        for conn in list(self.connections.values()):
            conn.close("shutdown")
        await asyncio.sleep(0)
        await self.listeners.wait_closed()
        if self.capture is not None:
            self.capture.close()

    # -- ProxyInfo

    def list_connections(self) -> list[dict[str, Any]]:
        return [c.to_dict() for c in sorted(self.connections.values(), key=lambda c: c.id)]

    def list_brokers(self) -> list[dict[str, Any]]:
        out = [r.to_dict(self.config.advertised) for r in self.address_map.routes()]
        by_node: dict[int, int] = {}
        for c in self.connections.values():
            by_node[c.node_id] = by_node.get(c.node_id, 0) + 1
        for item in out:
            item["connections"] = by_node.get(int(item["node_id"]), 0)  # type: ignore[call-overload]
        return out
