"""Everything around the data plane that a running proxy needs: the fault engine, the
observers of coordination traffic (event log, group state, metrics, console lines) and the
admin HTTP server.

The data plane (`proxy.server`) only knows the two small interfaces it is handed here: a
`FaultDecider` and a list of `ExchangeObserver`s. Keeping their construction in one place lets
the CLI, the tests and the benchmarks start exactly the same proxy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from kafka_chaos_proxy.faults.decision import PASS, Decision, FaultDecider, RequestView
from kafka_chaos_proxy.faults.engine import DEFAULT_MAX_RULES
from kafka_chaos_proxy.proxy import metrics
from kafka_chaos_proxy.proxy.console import ConsoleLog
from kafka_chaos_proxy.proxy.events import EventLog, EventLogOptions
from kafka_chaos_proxy.proxy.exchange import ExchangeObserver
from kafka_chaos_proxy.proxy.groups import GroupStateModel
from kafka_chaos_proxy.proxy.observers import ClientIdCounter, CoordinationMetrics, GroupMetrics
from kafka_chaos_proxy.proxy.trigger_feed import TriggerFeed

if TYPE_CHECKING:
    from kafka_chaos_proxy.faults.engine import FaultEngine
    from kafka_chaos_proxy.faults.model import FaultRule
    from kafka_chaos_proxy.proxy.admin import AdminServer

_log = structlog.get_logger(__name__)


class ProxyInfo(Protocol):
    """What the admin API may ask of the running data plane."""

    def list_connections(self) -> list[dict[str, Any]]: ...

    def list_brokers(self) -> list[dict[str, Any]]: ...


_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class InsecureAdminError(ValueError):
    """The admin API would be reachable from other machines without a token."""


@dataclass
class ControlPlaneOptions:
    admin_host: str = "127.0.0.1"
    admin_port: int | None = 9190  # None: no admin HTTP server
    admin_token: str | None = None
    # Host names (besides localhost and the bind address) the admin API answers to; "*": any.
    admin_allowed_hosts: tuple[str, ...] = ()
    faults_file: Path | None = None
    events: EventLogOptions = field(default_factory=EventLogOptions)
    max_rules: int = DEFAULT_MAX_RULES
    metrics_client_ids: bool = False
    seed: int | None = None
    max_groups: int = 1_000
    max_members_per_group: int = 1_000


    def check(self) -> None:
        """Refuse an admin API bound beyond loopback without a token: anyone who can reach
        the port could then change the faults every client goes through."""
        if (self.admin_port is not None and not self.admin_token
                and self.admin_host not in _LOOPBACK and not self.admin_host.startswith("127.")):
            raise InsecureAdminError(
                f"the admin API on {self.admin_host} would be open to the network without a "
                "token: set KCP_ADMIN_TOKEN or --admin-token-file, or bind --admin-host "
                "127.0.0.1"
            )


class _NoFaults:
    def on_request(self, request: RequestView) -> Decision:
        return PASS


@dataclass
class ControlPlane:
    options: ControlPlaneOptions
    decider: FaultDecider = field(default_factory=_NoFaults)
    observers: list[ExchangeObserver] = field(default_factory=list)
    admin_url: str | None = None
    engine: FaultEngine | None = None
    events: EventLog | None = None
    groups: GroupStateModel | None = None
    triggers: TriggerFeed | None = None
    _admin: AdminServer | None = field(default=None, repr=False)

    async def start(self, proxy: ProxyInfo) -> None:
        """Start the admin HTTP server (if configured) on the running event loop."""
        if self.options.admin_port is None or self._admin is not None:
            return
        from kafka_chaos_proxy.proxy.admin import AdminContext, AdminServer, create_app
        from kafka_chaos_proxy.proxy.admin.guard import allowed_hosts

        assert self.engine is not None and self.events is not None and self.groups is not None
        ctx = AdminContext(
            engine=self.engine,
            events=self.events,
            groups=self.groups,
            holds=self.triggers.holds if self.triggers is not None else None,
            proxy=proxy,
            token=self.options.admin_token,
            allowed_hosts=allowed_hosts(self.options.admin_allowed_hosts,
                                        self.options.admin_host),
        )
        server = AdminServer(create_app(ctx), self.options.admin_host, self.options.admin_port)
        await server.start()
        self._admin = server
        self.admin_url = server.url
        _log.info("admin API listening", url=self.admin_url)

    async def stop(self) -> None:
        """Stop the admin HTTP server and flush the event log."""
        if self.events is not None:
            self.events.close_subscribers()  # live streams end, so the server can stop at once
        if self._admin is not None:
            await self._admin.stop()
            self._admin = None
        if self.events is not None:
            self.events.close()


def _count_injection(rule: FaultRule, decision: Decision) -> None:
    metrics.faults_injected_total.labels(rule.id or "?", str(decision.action)).inc()


def build_control_plane(options: ControlPlaneOptions) -> ControlPlane:
    """Build the engine (with the rule file's rules) and the observers; nothing runs yet."""
    from kafka_chaos_proxy.faults.engine import FaultEngine

    engine = FaultEngine(seed=options.seed, max_rules=options.max_rules)
    if options.faults_file is not None:
        from kafka_chaos_proxy.faults.loader import load_rules_file

        engine.load(load_rules_file(options.faults_file))
    engine.on_injected.append(_count_injection)

    events = options.events.build()
    groups = GroupStateModel(
        max_groups=options.max_groups, max_members=options.max_members_per_group
    )
    groups.listeners.append(GroupMetrics())
    # The console's info lines: faults on coordination traffic and completed rebalances, as
    # the group model sees them (it hears every coordination exchange already).
    groups.listeners.append(ConsoleLog())
    decider: FaultDecider = ClientIdCounter(engine) if options.metrics_client_ids else engine
    # After the group model among the observers: triggers read the state it just folded.
    triggers = TriggerFeed(engine, groups)
    return ControlPlane(
        options=options,
        decider=decider,
        observers=[events, groups, triggers, CoordinationMetrics()],
        engine=engine,
        events=events,
        groups=groups,
        triggers=triggers,
    )
