"""The proxy fixtures, importable from any test directory.

`tests/integration/proxy/conftest.py` imports them; a conftest elsewhere can do the same:

    from tests.support.proxies import proxy_factory, proxy_server  # noqa: F401

(see that conftest for what each fixture gives).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kafka_chaos_proxy.proxy.config import ProxyConfig, parse_bootstrap
from kafka_chaos_proxy.proxy.embedded import EmbeddedProxy
from kafka_chaos_proxy.proxy.real_kafka import KafkaCluster

ProxyFactory = Callable[..., EmbeddedProxy]


def make_proxy(cluster: KafkaCluster, decider: Any = None, observers: Any = (),
               fetch_event_sink: Any = None, **config: Any) -> EmbeddedProxy:
    cfg = ProxyConfig(parse_bootstrap(cluster.bootstrap_servers), listen_host="127.0.0.1",
                      port=0, **config)
    return EmbeddedProxy(cfg, decider, observers, fetch_event_sink=fetch_event_sink).start()


def _factory(cluster: KafkaCluster) -> Iterator[ProxyFactory]:
    started: list[EmbeddedProxy] = []

    def factory(decider: Any = None, observers: Any = (), fetch_event_sink: Any = None,
                **config: Any) -> EmbeddedProxy:
        proxy = make_proxy(cluster, decider, observers, fetch_event_sink, **config)
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
