"""The abuse suite: attacks on a proxy in front of the session's real broker (invariant 5 of
docs/DESIGN: bounded everything, the process never dies of client input).

Every test here is marked `abuse` and `integration`. Each one starts its own proxy (limits set
small in its `ProxyConfig`, and a control plane where it needs the admin API), starts the
well-behaved client (`helpers.WellBehaved`) and a latency probe, runs one attack and checks:
the proxy stays up, the attacker was closed with a reason and a metric, the probe's p99 during
the attack stayed within a ratio of its p99 before, nothing of the well-behaved client's was
lost, altered or reordered, and RSS stayed bounded.

Run: `.venv/bin/python -m pytest -q -p no:cacheprovider tests/abuse` (or `-m abuse`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kafka_chaos_proxy.proxy.config import ProxyConfig, parse_bootstrap
from kafka_chaos_proxy.proxy.control_plane import (
    ControlPlane,
    ControlPlaneOptions,
    build_control_plane,
)
from kafka_chaos_proxy.proxy.embedded import EmbeddedProxy
from kafka_chaos_proxy.proxy.real_kafka import KafkaCluster
from tests.abuse.helpers import Probe, WellBehaved

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        try:
            Path(str(item.path)).resolve().relative_to(_HERE)
        except ValueError:
            continue
        item.add_marker(pytest.mark.integration)
        item.add_marker(pytest.mark.abuse)


@dataclass
class Target:
    """A running proxy under attack, with its control plane when the test asked for one."""

    proxy: EmbeddedProxy
    cp: ControlPlane | None

    @property
    def bootstrap(self) -> str:
        return self.proxy.bootstrap_servers

    @property
    def admin_url(self) -> str:
        assert self.cp is not None and self.cp.admin_url is not None
        return self.cp.admin_url


TargetFactory = Callable[..., Target]


@pytest.fixture
def target(kafka_cluster: KafkaCluster, tmp_path: Path) -> Iterator[TargetFactory]:
    """`target(control=ControlPlaneOptions(...) | True | None, **ProxyConfig fields)`."""
    started: list[Target] = []

    def start(control: ControlPlaneOptions | bool | None = None, **config: Any) -> Target:
        cp = None
        if control:
            options = control if isinstance(control, ControlPlaneOptions) else \
                ControlPlaneOptions()
            options.admin_port = 0
            cp = build_control_plane(options)
        cfg = ProxyConfig(parse_bootstrap(kafka_cluster.bootstrap_servers),
                          listen_host="127.0.0.1", port=0, **config)
        proxy = EmbeddedProxy(cfg, cp.decider if cp else None,
                              cp.observers if cp else (), cp.triggers if cp else None).start()
        made = Target(proxy, cp)
        started.append(made)
        if cp is not None:
            assert proxy.loop is not None and proxy.server is not None
            asyncio.run_coroutine_threadsafe(cp.start(proxy.server), proxy.loop).result(30)
        return made

    yield start
    for made in started:
        if made.cp is not None and made.proxy.loop is not None:
            stopping = asyncio.run_coroutine_threadsafe(made.cp.stop(), made.proxy.loop)
            stopping.result(15)
        made.proxy.stop()


@pytest.fixture
def well_behaved(kafka_cluster: KafkaCluster,
                 unique_name: Callable[[str], str]) -> Iterator[Callable[[str], WellBehaved]]:
    """`well_behaved(bootstrap)`: the producer+consumer pair, started and warmed up; the test
    calls `.finish()` to verify (left running otherwise, it is stopped at teardown)."""
    made: list[WellBehaved] = []

    def start(bootstrap: str) -> WellBehaved:
        client = WellBehaved(bootstrap, kafka_cluster.bootstrap_servers, unique_name("good"))
        made.append(client)
        return client.start()

    yield start
    for client in made:
        client.abandon()


@pytest.fixture
def probe() -> Iterator[Callable[[str], Probe]]:
    made: list[Probe] = []

    def start(bootstrap: str) -> Probe:
        p = Probe(bootstrap)
        made.append(p)
        return p

    yield start
    for p in made:
        p.close()
