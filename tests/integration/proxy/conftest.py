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
tests/integration/proxy/ or by importing them from `tests/support/proxies.py` into their own
conftest, as its docstring shows.
"""

from __future__ import annotations

from tests.support.proxies import (  # noqa: F401  (fixtures are found by name)
    ProxyFactory,
    make_proxy,
    proxy_factory,
    proxy_factory3,
    proxy_server,
)
