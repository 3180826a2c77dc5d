"""Fixtures for tests that need the proxy in front of the real broker.

`proxy_server`: an `EmbeddedProxy` (proxy/embedded.py) on 127.0.0.1, ephemeral ports, in front
of the session's `kafka_cluster`, with no faults. Use `.bootstrap_servers` as the clients'
bootstrap, `.server` for the `ProxyServer`, `.call(fn)` to run code on the proxy's loop.

`proxy_factory`: the same, with a decider and observers injected, and any `ProxyConfig` field:

    def test_x(proxy_factory, kafka_cluster):
        proxy = proxy_factory(decider=my_decider, observers=[my_observer], max_inflight=10)
        ... clients use proxy.bootstrap_servers ...

`proxy_factory3` does the same in front of `kafka_cluster3`. Every proxy started through these
fixtures is stopped at the end of the test. Tests elsewhere can reuse them by living under
tests/integration/proxy/ or by importing `make_proxy` from this module's `proxy_fixtures`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from proxy.config import ProxyConfig, parse_bootstrap
from proxy.embedded import EmbeddedProxy
from proxy.real_kafka import KafkaCluster

ProxyFactory = Callable[..., EmbeddedProxy]


def make_proxy(cluster: KafkaCluster, decider: Any = None, observers: Any = (),
               **config: Any) -> EmbeddedProxy:
    cfg = ProxyConfig(parse_bootstrap(cluster.bootstrap_servers), listen_host="127.0.0.1",
                      port=0, **config)
    return EmbeddedProxy(cfg, decider, observers).start()


def _factory(cluster: KafkaCluster) -> Iterator[ProxyFactory]:
    started: list[EmbeddedProxy] = []

    def factory(decider: Any = None, observers: Any = (), **config: Any) -> EmbeddedProxy:
        proxy = make_proxy(cluster, decider, observers, **config)
        started.append(proxy)
        return proxy

    yield factory
    for proxy in started:
        proxy.stop()


@pytest.fixture
def proxy_factory(kafka_cluster: KafkaCluster) -> Iterator[ProxyFactory]:
    yield from _factory(kafka_cluster)


@pytest.fixture
def proxy_factory3(kafka_cluster3: KafkaCluster) -> Iterator[ProxyFactory]:
    yield from _factory(kafka_cluster3)


@pytest.fixture
def proxy_server(proxy_factory: ProxyFactory) -> EmbeddedProxy:
    return proxy_factory()
