"""Each side of the proxy is TLS or not on its own, and a peer that gets TLS wrong costs only
its own connection: a plaintext client on a TLS listener, a client without a certificate or
with a stranger's on an mTLS listener, a TLS client on a plaintext listener, a broker whose
certificate does not verify. Each is closed with a `tls_error` log line and counted in
kcp_tls_errors_total{side,reason}; a good client on the same proxy keeps working throughout.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from kafka_chaos_proxy.proxy import metrics
from kafka_chaos_proxy.proxy.config import ProxyConfig, parse_bootstrap
from kafka_chaos_proxy.proxy.embedded import EmbeddedProxy
from kafka_chaos_proxy.proxy.real_kafka.provider import SecuredKafka
from kafka_chaos_proxy.proxy.tls.settings import ListenerTls, UpstreamTls
from tests.support.pki import Pki
from tests.support.secured import RunningProxy, confluent_round_trip, create_topic
from tests.support.wire_fakes import request_frame

API_VERSIONS_V0 = request_frame(18, 0, 1, {})
RECORDS = 20


def _count(text: str, side: str, reason: str) -> float:
    for line in text.splitlines():
        if (line.startswith("kcp_tls_errors_total{") and f'side="{side}"' in line
                and f'reason="{reason}"' in line):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _host_port(bootstrap: str) -> tuple[str, int]:
    return parse_bootstrap(bootstrap)[0]


def _refused(bootstrap: str, ctx: ssl.SSLContext | None) -> None:
    """One connection that sends ApiVersions and must get nothing back but the close."""
    with socket.create_connection(_host_port(bootstrap), timeout=10) as raw:
        try:
            sock = raw if ctx is None else ctx.wrap_socket(raw, server_hostname="127.0.0.1")
            sock.sendall(API_VERSIONS_V0)
            assert sock.recv(4096) == b""
        except (ssl.SSLError, ConnectionError):
            pass  # TLS 1.2 fails in the handshake, 1.3 on the first read: both are refusals


def _mtls_conf(proxy: RunningProxy, pki: Pki) -> dict[str, object]:
    return {"bootstrap.servers": proxy.bootstrap, "security.protocol": "SSL",
            "ssl.ca.location": str(pki.ca), "ssl.certificate.location": str(pki.client_cert),
            "ssl.key.location": str(pki.client_key)}


def test_bad_clients_cost_their_own_connection_only(mtls_proxy: RunningProxy,
                                                    secured_kafka: SecuredKafka,
                                                    client_pki: Pki, unique_name: str) -> None:
    from confluent_kafka import Producer

    topic = f"{unique_name}-t"
    create_topic(secured_kafka.cluster.bootstrap_servers, topic)
    good = Producer({**_mtls_conf(mtls_proxy, client_pki), "acks": "all"})
    good.produce(topic, b"before")
    assert good.flush(30) == 0
    before = mtls_proxy.admin.metrics()
    _refused(mtls_proxy.bootstrap, None)  # plaintext Kafka on a TLS listener
    _refused(mtls_proxy.bootstrap, client_pki.client_context())  # no client certificate
    _refused(mtls_proxy.bootstrap, client_pki.client_context(stranger=True))
    good.produce(topic, b"after")  # the connection opened before is untouched
    assert good.flush(30) == 0
    def counted() -> str | None:
        text = mtls_proxy.admin.metrics()
        done = _count(text, "client", "cert_unverified") > _count(before, "client",
                                                                  "cert_unverified")
        return text if done else None

    after = mtls_proxy.wait_for(counted, "the stranger's certificate counted")
    for reason in ("not_tls", "cert_missing", "cert_unverified"):
        assert _count(after, "client", reason) == _count(before, "client", reason) + 1, reason
    lines = [e for e in mtls_proxy.log_events() if e.get("event") == "tls_error"]
    assert {"not_tls", "cert_missing", "cert_unverified"} <= {e["reason"] for e in lines}
    assert all(e["side"] == "client" and e["hint"] and e["peer"] for e in lines)
    # and a whole round trip, a consumer group included, still works afterwards
    create_topic(secured_kafka.cluster.bootstrap_servers, f"{topic}-rt")
    confluent_round_trip(_mtls_conf(mtls_proxy, client_pki), f"{topic}-rt", f"{unique_name}-g",
                         RECORDS).verify(RECORDS)


@pytest.fixture
def embedded() -> Iterator[list[EmbeddedProxy]]:
    started: list[EmbeddedProxy] = []
    yield started
    for proxy in started:
        proxy.stop()


def _start(started: list[EmbeddedProxy], bootstrap: str, **config: object) -> EmbeddedProxy:
    proxy = EmbeddedProxy(ProxyConfig(parse_bootstrap(bootstrap), port=0,
                                      **config)).start()  # type: ignore[arg-type]
    started.append(proxy)
    return proxy


def _value(side: str, reason: str) -> float:
    return float(metrics.tls_errors_total.labels(side, reason)._value.get())


def test_plaintext_clients_to_a_tls_broker_and_tls_clients_to_a_plaintext_one(
        secured_kafka: SecuredKafka, client_pki: Pki, embedded: list[EmbeddedProxy],
        unique_name: str) -> None:
    tls = secured_kafka.tls
    to_tls = _start(embedded, secured_kafka.ssl_bootstrap_servers, upstream_tls=UpstreamTls(
        ca_file=tls.ca_file, cert_file=tls.client_cert_file, key_file=tls.client_key_file))
    to_plain = _start(embedded, secured_kafka.cluster.bootstrap_servers, listener_tls=ListenerTls(
        cert_file=client_pki.server_cert, key_file=client_pki.server_key))
    from confluent_kafka import Producer

    for name, proxy, conf, sides in (
            ("plain-to-tls", to_tls, {"bootstrap.servers": to_tls.bootstrap_servers},
             (False, True)),
            ("tls-to-plain", to_plain, {"bootstrap.servers": to_plain.bootstrap_servers,
                                        "security.protocol": "SSL",
                                        "ssl.ca.location": str(client_pki.ca)},
             (True, False))):
        topic = f"{unique_name}-{name}"
        create_topic(secured_kafka.cluster.bootstrap_servers, topic)
        confluent_round_trip(conf, topic, f"{topic}-g", RECORDS).verify(RECORDS)
        open_one = Producer(conf)  # a connection held open to look at
        open_one.produce(topic, b"x")
        assert open_one.flush(30) == 0
        seen = {(c["client_tls"], c["upstream_tls"]) for c in proxy.list_connections()}
        assert seen == {sides}, (name, seen)
        del open_one


def test_a_tls_client_on_a_plaintext_listener_and_an_unverified_broker(
        secured_kafka: SecuredKafka, client_pki: Pki, embedded: list[EmbeddedProxy],
        tmp_path: Path) -> None:
    plain = _start(embedded, secured_kafka.cluster.bootstrap_servers)
    before = _value("client", "tls_on_plaintext")
    _refused(plain.bootstrap_servers, client_pki.client_context())
    assert _value("client", "tls_on_plaintext") == before + 1
    tls = secured_kafka.tls
    wrong_ca = _start(embedded, secured_kafka.ssl_bootstrap_servers, upstream_tls=UpstreamTls(
        ca_file=client_pki.ca, cert_file=tls.client_cert_file, key_file=tls.client_key_file))
    before = _value("upstream", "cert_unverified")
    _refused(wrong_ca.bootstrap_servers, None)
    assert _value("upstream", "cert_unverified") == before + 1
    # the first proxy, plaintext both sides, never noticed
    with socket.create_connection(_host_port(plain.bootstrap_servers), timeout=10) as sock:
        sock.sendall(API_VERSIONS_V0)
        assert sock.recv(4)  # an answer

