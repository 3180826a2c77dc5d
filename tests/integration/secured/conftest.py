"""The proxy in front of a secured cluster: one local broker with SSL (mTLS) and SASL_SSL
listeners for the whole session, and two proxies in front of it shared by the tests here.

Why shared: a broker start is seconds of JVM, a proxy start a second; every test uses its own
topic, group and rule id, so they stay independent on one broker and two proxies. Every
fixture here is session-scoped and lazy: nothing starts unless a test in this folder runs.

- `secured_kafka`: the broker (`proxy.real_kafka.provide_secured_kafka`); its PLAINTEXT
  listener is for test set-up (topics), its CA, client certificate and users for clients.
- `client_pki`: the CA and certificates of the proxies' client side (`tests.support.pki`).
- `sasl_proxy`: `kafka-chaos-proxy run` with a self-signed TLS listener, in front of the
  SASL_SSL listener (verified against the broker's CA), logging in itself as `admin` with
  SCRAM-SHA-512 for discovery and the side channel. Clients log in through it as themselves.
- `mtls_proxy`: `run` with an mTLS listener (client certificates from `client_pki`), in
  front of the SSL listener, which requires the proxy's own client certificate (mTLS both
  sides).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kafka_chaos_proxy.proxy.real_kafka.provider import SecuredKafka, provide_secured_kafka
from tests.support.pki import Pki, make_pki
from tests.support.secured import RunningProxy, sasl_proxy_args


@pytest.fixture(scope="session")
def secured_kafka(request: pytest.FixtureRequest) -> Iterator[SecuredKafka]:
    with provide_secured_kafka(request.config.getoption("--kafka-version")) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def client_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("client-side-pki"))


@pytest.fixture(scope="session")
def sasl_proxy(secured_kafka: SecuredKafka,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningProxy]:
    workdir = tmp_path_factory.mktemp("sasl-proxy")
    proxy = RunningProxy(sasl_proxy_args(secured_kafka, workdir), workdir,
                         ca_file=workdir / "self-signed" / "ca.pem")
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture(scope="session")
def mtls_proxy(secured_kafka: SecuredKafka, client_pki: Pki,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningProxy]:
    workdir = tmp_path_factory.mktemp("mtls-proxy")
    tls = secured_kafka.tls
    proxy = RunningProxy([
        "--bootstrap-server", secured_kafka.ssl_bootstrap_servers,
        "--upstream-tls-ca", str(tls.ca_file), "--upstream-tls-cert", str(tls.client_cert_file),
        "--upstream-tls-key", str(tls.client_key_file),
        "--tls-cert", str(client_pki.server_cert), "--tls-key", str(client_pki.server_key),
        "--tls-client-ca", str(client_pki.ca)], workdir, ca_file=client_pki.ca)
    try:
        yield proxy
    finally:
        proxy.stop()
