"""The pytest plugin: rebalance races in a project's own tests (entry point `pytest11`).

Fixtures:

* `kafka_broker` (session): a real Apache Kafka from `provide_kafka`: the cluster named by
  KAFKA_BOOTSTRAP_SERVERS, else testcontainers where a Docker engine answers, else a local
  KRaft broker from the official jars. It has `.bootstrap`. A project that starts its own
  broker overrides this fixture with one returning an object with `.bootstrap` (this
  project's tests/conftest.py returns its `kafka_cluster`), and no second broker starts.
* `chaos_proxy_session` (session): one in-process proxy (`ChaosProxy.start`) in front of it.
* `chaos_proxy` (function): a `ChaosProxy` handle on that proxy for one test: no rules and
  nothing held when the test starts and after it ends, its event baseline (what
  `events.wait` and `events.list` read on from) at the test's start. Clients of the test
  connect to `chaos_proxy.bootstrap`.
* `async_chaos_proxy` (function): the same handle for `async def` tests (`AsyncChaosProxy`),
  whose calls never block the test's event loop (pytest-asyncio's).
* `chaos_scenario` (function): the `ScenarioRun` the test's `chaos` marker started (None
  without one), to `wait()` for it or read which steps fired.

Marker: `@pytest.mark.chaos(scenario="syncgroup-not-coordinator")` plays that catalog scenario
(or a scenario file) on the test's `chaos_proxy` while the test runs: its first rules are in
place before the test body starts; its produce steps produce to the broker with `topic=`;
`duration_s=`, `group=`, `keep_rules=` as `ChaosProxy.start_scenario` takes them.

On failure, the report gets a section "kafka-chaos-proxy coordination events": the events of
that test only (after its baseline), one line each in `events tail`'s format
(`proxy.event_line`), and the rules installed at that moment.

Off unless used: this module imports pytest and the standard library only; the API, the
proxy and the broker are loaded when a test first asks for a fixture, and the report hook
costs tests that use none of them one dictionary lookup.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from kafka_chaos_proxy.proxy.api import AsyncChaosProxy, ChaosProxy, ScenarioRun
    from kafka_chaos_proxy.proxy.real_kafka import KafkaCluster

SECTION = "kafka-chaos-proxy coordination events"
#: Event lines a failure report shows at most (the newest; the count of the others is said).
REPORT_EVENTS = 200
MARKER_HELP = ("chaos(scenario, duration_s=None, topic=None, group=None, keep_rules=False): "
               "play this kafka-chaos-proxy scenario (a catalog name or a file) on the test's "
               "chaos_proxy while the test runs")
_SCENARIO_KEYS = ("duration_s", "topic", "group", "keep_rules")


@dataclass
class _TestChaos:
    """What one test's `chaos_proxy` leaves for the report hook."""

    chaos: ChaosProxy
    baseline: int
    run: ScenarioRun | None = None


_STATE = pytest.StashKey[_TestChaos]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[KafkaCluster]:
    """A real Kafka broker for the session (KAFKA_BOOTSTRAP_SERVERS, testcontainers, or a
    local KRaft broker started now and stopped at the end)."""
    from kafka_chaos_proxy.proxy.real_kafka import provide_kafka

    with provide_kafka() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def chaos_proxy_session(kafka_broker: Any) -> Iterator[ChaosProxy]:
    """One proxy in front of `kafka_broker` for the session (in-process, ephemeral ports)."""
    from kafka_chaos_proxy.proxy.api import ChaosProxy

    with ChaosProxy.start(kafka_broker.bootstrap) as chaos:
        yield chaos


@pytest.fixture
def chaos_proxy(chaos_proxy_session: ChaosProxy, kafka_broker: Any,
                request: pytest.FixtureRequest) -> Iterator[ChaosProxy]:
    """This test's handle on the session's proxy: clean before and after, events from now."""
    chaos_proxy_session.reset()
    chaos = chaos_proxy_session.view()
    state = _TestChaos(chaos, chaos.events.baseline)
    request.node.stash[_STATE] = state
    marker = request.node.get_closest_marker("chaos")
    try:
        if marker is not None:
            scenario, options = _scenario_of(marker)
            state.run = chaos.start_scenario(scenario, bootstrap=kafka_broker.bootstrap,
                                             **options)
        yield chaos
    finally:
        try:
            if state.run is not None and not state.run.done:
                state.run.stop()
        finally:
            chaos_proxy_session.reset()


@pytest.fixture
def async_chaos_proxy(chaos_proxy: ChaosProxy) -> AsyncChaosProxy:
    """`chaos_proxy` for `async def` tests: every call awaitable."""
    from kafka_chaos_proxy.proxy.api import AsyncChaosProxy

    return AsyncChaosProxy(chaos_proxy)


@pytest.fixture
def chaos_scenario(chaos_proxy: ChaosProxy, request: pytest.FixtureRequest
                   ) -> ScenarioRun | None:
    """The scenario the test's `chaos` marker plays (None without the marker)."""
    return request.node.stash[_STATE].run


def _scenario_of(marker: pytest.Mark) -> tuple[str, dict[str, Any]]:
    kwargs = dict(marker.kwargs)
    scenario = kwargs.pop("scenario", marker.args[0] if marker.args else None)
    unknown = set(kwargs) - set(_SCENARIO_KEYS)
    if scenario is None or unknown or len(marker.args) > (0 if "scenario" in marker.kwargs
                                                          else 1):
        raise pytest.UsageError(
            f"@pytest.mark.{MARKER_HELP.split(':')[0]}: got args {marker.args!r}, kwargs "
            f"{marker.kwargs!r}")
    return str(scenario), kwargs


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """A failed test that used `chaos_proxy` gets its coordination events in the report."""
    outcome = yield
    state = item.stash.get(_STATE, None)
    if state is None:
        return
    report: pytest.TestReport = outcome.get_result()
    if report.failed and report.when in ("setup", "call"):
        try:
            text = report_text(state.chaos, state.baseline)
        except Exception as exc:  # the proxy may be what failed: say so, keep the report
            text = f"(the proxy's events could not be read: {type(exc).__name__}: {exc})"
        report.sections.append((SECTION, text))


def report_text(chaos: ChaosProxy, baseline: int) -> str:
    """The events after `baseline` (the newest REPORT_EVENTS), then the rules installed."""
    from kafka_chaos_proxy.proxy.event_line import compact

    events = chaos.events.list(since=baseline, limit=10_000)
    shown = events[-REPORT_EVENTS:]
    head = (f"{len(events)} events since the test began (after seq {baseline})"
            + (f"; the last {len(shown)}:" if len(shown) < len(events) else ":"))
    lines = [head, *(compact(e) for e in shown)] if events else [
        f"no coordination events since the test began (after seq {baseline})"]
    rules = chaos.rules()
    lines.append(f"rules installed: {len(rules)}")
    for rule in rules:
        stats = rule.get("stats") or {}
        action = rule.get("action") or {}
        lines.append(f"  {rule.get('id')}: {action.get('type')} on "
                     f"{(rule.get('match') or {}).get('apis') or 'any API'} "
                     f"(matched {stats.get('matched')}, injected {stats.get('injected')})")
    return "\n".join(lines)
