"""The console's info lines, from recorded exchanges: one per injected fault, one per completed
rebalance; connection lines are debug."""

from __future__ import annotations

import inspect
from types import SimpleNamespace

import structlog
from structlog.testing import capture_logs

from kafka_chaos_proxy.faults.decision import ActionKind, Decision
from kafka_chaos_proxy.proxy.config import ProxyConfig, parse_bootstrap
from kafka_chaos_proxy.proxy.console import ConsoleLog
from kafka_chaos_proxy.proxy.control_plane import ControlPlaneOptions, build_control_plane
from kafka_chaos_proxy.proxy.groups import GroupStateModel
from kafka_chaos_proxy.proxy.pipeline import connection, core


def _model() -> GroupStateModel:
    model = GroupStateModel()
    model.listeners.append(ConsoleLog())
    return model


def test_fault_and_rebalance_lines(build: SimpleNamespace) -> None:
    model = _model()
    clock = build.Clock()
    delay = Decision(action=ActionKind.DELAY, rule_id="slow-sync", delay_s=0.25)
    with capture_logs() as logs:
        model.observe(build.join("con-g", "m-2", 1, "m-1", at=clock.tick(), connection=4,
                                 client_id="b"))
        model.observe(build.join("con-g", "m-1", 1, "m-1", members=["m-1", "m-2"],
                                 at=clock.tick(), latency_s=0.5))
        model.observe(build.sync("con-g", "m-1", 1, {"t": [0]},
                                 assignments={"m-1": {"t": [0]}, "m-2": {"t": [1]}},
                                 at=clock.tick()))
        model.observe(build.sync("con-g", "m-2", 1, {"t": [1]}, at=clock.tick(), connection=4,
                                 client_id="b", decision=delay, latency_s=0.3))
        model.observe(build.heartbeat("con-g", "m-1", 1, at=clock.tick()))  # no line
    assert [e["event"] for e in logs] == ["fault_injected", "rebalance_completed"]
    fault, rebalance = logs
    assert {k: fault[k] for k in ("log_level", "rule", "action", "api", "group", "member",
                                  "connection", "client_id", "delay_ms")} == {
        "log_level": "info", "rule": "slow-sync", "action": "delay", "api": "SyncGroup",
        "group": "con-g", "member": "m-2", "connection": 4, "client_id": "b", "delay_ms": 250.0}
    # From m-2's JoinGroup (t+0.1) to the answer of the last SyncGroup (t+0.4 + 0.3 s).
    assert rebalance == {"event": "rebalance_completed", "log_level": "info", "group": "con-g",
                         "generation": 1, "members": 2, "duration_ms": 600.0}


def test_injected_error_without_a_group_still_has_a_line(build: SimpleNamespace) -> None:
    model = _model()
    error = Decision(action=ActionKind.ERROR, rule_id="r7", error_code=15)
    request = {"key": "", "key_type": 1}  # a transaction coordinator: no group
    ex = build.exchange(10, 3, request, {"error_code": 15, "node_id": -1, "host": "", "port": -1,
                                         "throttle_time_ms": 0, "error_message": None},
                        decision=error, outcome="error_injected", connection=9)
    with capture_logs() as logs:
        model.observe(ex)
    assert len(logs) == 1
    line = logs[0]
    assert (line["event"], line["rule"], line["action"], line["error"], line["group"],
            line["connection"], line["outcome"]) == (
        "fault_injected", "r7", "error", "COORDINATOR_NOT_AVAILABLE", None, 9, "error_injected")


def test_the_control_plane_wires_the_console() -> None:
    cp = build_control_plane(ControlPlaneOptions(admin_port=None))
    assert cp.groups is not None
    assert any(isinstance(listener, ConsoleLog) for listener in cp.groups.listeners)


class _Closed:
    def __init__(self) -> None:
        self.ids: list[int] = []

    def observe(self, exchange: object) -> None:
        """Not an exchange in this test."""

    def connection_closed(self, connection_id: int) -> None:
        self.ids.append(connection_id)


async def test_closing_a_connection_is_debug_and_tells_observers() -> None:
    told, plain = _Closed(), object()  # `plain` has no connection_closed
    server = SimpleNamespace(
        config=ProxyConfig(parse_bootstrap("127.0.0.1:9092")), observers=[plain, told],
        next_connection_id=lambda: 42, unregister=lambda conn: None, fetch_sink=None)
    conn = core.ConnectionCore(server, 1)  # type: ignore[arg-type]
    with capture_logs() as logs:
        conn.close("client_closed")
        conn.close("client_closed")  # once only
    assert told.ids == [42]
    assert [(e["event"], e["log_level"]) for e in logs] == [("connection_closed", "debug")]
    assert 'log.debug("connection_open"' in inspect.getsource(connection)


def test_debug_lines_are_filtered_at_info() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(20))
    try:
        with capture_logs() as logs:
            structlog.get_logger("kcp.connection").debug("connection_open", conn=1)
            structlog.get_logger("kcp.console").info("rebalance_completed", group="g")
        assert [e["event"] for e in logs] == ["rebalance_completed"]
    finally:
        structlog.reset_defaults()
