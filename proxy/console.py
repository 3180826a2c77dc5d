"""The lines a person watching the proxy's console wants: faults injected and rebalances done.

A new user runs the proxy, injects a fault and watches: the console should say when the fault
hit (which rule, what it did, to which API, group, member and connection) and what the group
did about it (a rebalance completed: generation, members, how long it took). Those two lines
are info; the per-connection lines of the data plane are debug, so that these stand out.

`ConsoleLog` is a group listener (`proxy.groups.GroupListener`, plus the model's optional
`fault_injected` hook): the group model already folds every coordination exchange, so faults
are told with the group as the model holds it. Faults on APIs no observer decodes (Produce,
Fetch...) build no exchange and so have no line here; the rule's counters show them.
"""

from __future__ import annotations

from typing import Any

import structlog

from kafka_chaos_proxy.proxy.group_records import GroupState

_log = structlog.get_logger("kcp.console")


class ConsoleLog:
    """Writes `fault_injected` and `rebalance_completed` lines through structlog, at info."""

    def __init__(self, logger: Any = None) -> None:
        self._log = _log if logger is None else logger

    def fault_injected(self, ev: dict[str, Any], group: GroupState | None) -> None:
        fault = ev.get("fault") or {}
        extra = {k: v for k, v in fault.items() if k not in ("rule", "action")}
        if ev.get("principal"):  # who it hit, where the client authenticated
            extra["principal"] = ev["principal"]
        self._log.info(
            "fault_injected",
            rule=fault.get("rule"),
            action=fault.get("action"),
            api=ev.get("api"),
            group=ev.get("group"),
            member=ev.get("member_id"),
            connection=ev.get("connection"),
            client_id=ev.get("client_id"),
            outcome=ev.get("outcome"),
            **extra,
        )

    def rebalance_completed(self, group: GroupState, duration_s: float | None) -> None:
        self._log.info(
            "rebalance_completed",
            group=group.group_id,
            generation=group.generation,
            members=len(group.members),
            duration_ms=None if duration_s is None else round(duration_s * 1000, 1),
        )

    def group_changed(self, group: GroupState) -> None:
        """Every exchange changes a group: far too many lines for a console."""

    def group_removed(self, group_id: str) -> None:
        """Evictions are counted in metrics (`kcp_group_state_evictions_total`)."""
