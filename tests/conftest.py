"""Shared fixtures: a real Kafka for the whole session and unique names per test.

Why session scope: a broker start costs seconds (a JVM plus KRaft formatting), while topics
and groups with unique names keep tests independent on one broker. The broker comes from
`proxy.real_kafka.provide_kafka` (external / testcontainers / local jars), so these
fixtures work the same on a laptop, in CI and against a developer's own cluster.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from kafka_chaos_proxy.proxy.real_kafka import DEFAULT_KAFKA_VERSION, KafkaCluster, provide_kafka
from tests.support.go_harness import running  # noqa: F401  (the fixture, for every test)

_LOG_TAIL_LINES = 40


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kafka", "real Kafka broker for integration tests")
    group.addoption(
        "--kafka-version",
        default=os.environ.get("KCP_KAFKA_VERSION", DEFAULT_KAFKA_VERSION),
        help="Apache Kafka release run locally when no external broker or Docker is used "
        f"(default {DEFAULT_KAFKA_VERSION}; env KCP_KAFKA_VERSION)",
    )


_TESTS = Path(__file__).resolve().parent
# Marks that follow from where a test lives, so no test file has to remember them.
_MARKS_BY_DIRECTORY: tuple[tuple[str, str], ...] = (
    ("integration", "integration"),
    ("integration/clients", "clients"),
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        try:
            where = Path(str(item.path)).resolve().relative_to(_TESTS).as_posix()
        except ValueError:
            continue
        for directory, mark in _MARKS_BY_DIRECTORY:
            if where.startswith(directory + "/"):
                item.add_marker(mark)


def _start(request: pytest.FixtureRequest, nodes: int) -> Iterator[KafkaCluster]:
    version = request.config.getoption("--kafka-version")
    with provide_kafka(nodes=nodes, version=version) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def kafka_cluster(request: pytest.FixtureRequest) -> Iterator[KafkaCluster]:
    """One broker for the session (started lazily by the first test that asks)."""
    yield from _start(request, 1)


@pytest.fixture(scope="session")
def kafka_cluster3(request: pytest.FixtureRequest) -> Iterator[KafkaCluster]:
    """Three brokers (three combined KRaft nodes, three-voter quorum) for failover tests.

    Tests that stop nodes must restart them before returning (`start_node`), since the
    cluster is shared by the session.
    """
    yield from _start(request, 3)


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_cluster: KafkaCluster) -> str:
    """The bootstrap servers string of the single-broker cluster."""
    return kafka_cluster.bootstrap_servers


@pytest.fixture(scope="session")
def kafka_broker(kafka_cluster: KafkaCluster) -> KafkaCluster:
    """The pytest plugin's broker (`kafka_chaos_proxy.proxy.pytest_plugin`, installed with the
    package, so loaded here too) is this session's `kafka_cluster`: the plugin's fixtures
    (`chaos_proxy`, ...) run in front of it, and no second broker starts."""
    return kafka_cluster


class UniqueName(str):
    """A per-test unique base name that can also mint derived names.

    Use it as a string (`f"{unique_name}-topic"`) or call it (`unique_name("group")`); both
    are safe as Kafka topic and group names.
    """

    def __call__(self, suffix: str = "") -> str:
        return f"{self}-{suffix}" if suffix else str(self)


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> UniqueName:
    """A name unique to this test run, derived from the test name for readable logs."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", request.node.name).strip("-.")[:80]
    return UniqueName(f"{stem}-{uuid.uuid4().hex[:8]}")


def _log_tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"(cannot read: {exc})"
    return "\n".join(lines[-_LOG_TAIL_LINES:])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    """On failure of a test that used a broker, show where its logs are (and their tail)."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    funcargs = getattr(item, "funcargs", {})
    for name in ("kafka_cluster", "kafka_cluster3"):
        cluster = funcargs.get(name)
        if not isinstance(cluster, KafkaCluster):
            continue
        for path in cluster.log_paths:
            report.sections.append(
                (f"kafka log {path}", f"{path}\n...\n{_log_tail(path)}")
            )
