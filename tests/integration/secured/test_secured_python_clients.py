"""Python clients through the proxy in front of a secured cluster: each produces and consumes
checksummed records while one SyncGroup of its group is answered NOT_COORDINATOR, and the
event log shows that fault, with the principal the client authenticated as.

- confluent-kafka (librdkafka): mTLS on both sides; SASL_SSL PLAIN; SASL_SSL SCRAM-SHA-512;
  SASL_SSL OAUTHBEARER with an unsigned JWT (the principal is its `sub`);
- kafka-python: mTLS on both sides;
- a rule on one principal fires for that user's client and not for another's.
"""

from __future__ import annotations

from typing import Any

from kafka_chaos_proxy.proxy.real_kafka.provider import SecuredKafka
from tests.support.pki import Pki
from tests.support.secured import (
    RunningProxy,
    confluent_round_trip,
    create_topic,
    injected_sync,
    kafka_python_round_trip,
    not_coordinator_once,
)

RECORDS = 60
CLIENT_CERT_SUBJECT = "CN=client-app,O=kafka-chaos-proxy"


def _sasl_conf(proxy: RunningProxy, mechanism: str, user: str, password: str) -> dict[str, Any]:
    return {"bootstrap.servers": proxy.bootstrap, "security.protocol": "SASL_SSL",
            "ssl.ca.location": str(proxy.ca_file), "sasl.mechanism": mechanism,
            "sasl.username": user, "sasl.password": password}


def _mtls_conf(proxy: RunningProxy, pki: Pki) -> dict[str, Any]:
    return {"bootstrap.servers": proxy.bootstrap, "security.protocol": "SSL",
            "ssl.ca.location": str(pki.ca), "ssl.certificate.location": str(pki.client_cert),
            "ssl.key.location": str(pki.client_key)}


def _round_trip_with_fault(proxy: RunningProxy, cluster: SecuredKafka, unique_name: str,
                           run: Any) -> dict[str, Any]:
    """Topic, the NOT_COORDINATOR rule, the client's round trip (`run(topic, group)`), the
    records verified; returns the injected SyncGroup's event."""
    topic, group, rule = f"{unique_name}-t", f"{unique_name}-g", f"{unique_name}-r"[-64:]
    create_topic(cluster.cluster.bootstrap_servers, topic)
    proxy.admin.add_rule(not_coordinator_once(group, rule))
    try:
        tally = run(topic, group)
        tally.verify(RECORDS)
        event = proxy.wait_for(lambda: injected_sync(proxy.events(group), rule),
                               f"the injected SyncGroup of {group} in the event log")
        assert proxy.admin.rule(rule)["stats"]["injected"] == 1
    finally:
        proxy.admin.remove_rule(rule, missing_ok=True)
    assert event["error"] == "NOT_COORDINATOR" and event["outcome"] == "error_injected"
    return event


def test_confluent_kafka_with_mtls_on_both_sides(mtls_proxy: RunningProxy,
                                                 secured_kafka: SecuredKafka,
                                                 client_pki: Pki, unique_name: str) -> None:
    conf = _mtls_conf(mtls_proxy, client_pki)
    event = _round_trip_with_fault(
        mtls_proxy, secured_kafka, unique_name,
        lambda topic, group: confluent_round_trip(conf, topic, group, RECORDS))
    assert event["principal"] == CLIENT_CERT_SUBJECT  # the certificate is who it is


def test_confluent_kafka_sasl_ssl_plain(sasl_proxy: RunningProxy, secured_kafka: SecuredKafka,
                                        unique_name: str) -> None:
    conf = _sasl_conf(sasl_proxy, "PLAIN", "alice", secured_kafka.users["alice"])
    event = _round_trip_with_fault(
        sasl_proxy, secured_kafka, unique_name,
        lambda topic, group: confluent_round_trip(conf, topic, group, RECORDS))
    assert event["principal"] == "alice"


def test_confluent_kafka_sasl_ssl_scram_sha_512(sasl_proxy: RunningProxy,
                                                secured_kafka: SecuredKafka,
                                                unique_name: str) -> None:
    conf = _sasl_conf(sasl_proxy, "SCRAM-SHA-512", "bob", secured_kafka.users["bob"])
    event = _round_trip_with_fault(
        sasl_proxy, secured_kafka, unique_name,
        lambda topic, group: confluent_round_trip(conf, topic, group, RECORDS))
    assert event["principal"] == "bob"


def test_confluent_kafka_sasl_ssl_oauthbearer_unsigned_token(sasl_proxy: RunningProxy,
                                                             secured_kafka: SecuredKafka,
                                                             unique_name: str) -> None:
    conf = {"bootstrap.servers": sasl_proxy.bootstrap, "security.protocol": "SASL_SSL",
            "ssl.ca.location": str(sasl_proxy.ca_file), "sasl.mechanism": "OAUTHBEARER",
            "enable.sasl.oauthbearer.unsecure.jwt": True,
            "sasl.oauthbearer.config": "principal=carol"}
    event = _round_trip_with_fault(
        sasl_proxy, secured_kafka, unique_name,
        lambda topic, group: confluent_round_trip(conf, topic, group, RECORDS))
    assert event["principal"] == "carol"


def test_kafka_python_with_mtls_on_both_sides(mtls_proxy: RunningProxy,
                                              secured_kafka: SecuredKafka, client_pki: Pki,
                                              unique_name: str) -> None:
    options = {"bootstrap_servers": mtls_proxy.bootstrap, "security_protocol": "SSL",
               "ssl_cafile": str(client_pki.ca), "ssl_certfile": str(client_pki.client_cert),
               "ssl_keyfile": str(client_pki.client_key), "request_timeout_ms": 30000}
    event = _round_trip_with_fault(
        mtls_proxy, secured_kafka, unique_name,
        lambda topic, group: kafka_python_round_trip(options, topic, group, RECORDS))
    assert event["principal"] == CLIENT_CERT_SUBJECT


def test_a_rule_on_one_principal_fires_for_that_users_client_only(
        sasl_proxy: RunningProxy, secured_kafka: SecuredKafka, unique_name: str) -> None:
    rule = f"{unique_name}-r"[-64:]
    for user in ("alice", "bob"):
        create_topic(secured_kafka.cluster.bootstrap_servers, f"{unique_name}-{user}")
    sasl_proxy.admin.add_rule({"id": rule,
                               "match": {"apis": ["SyncGroup"], "principal": "alice"},
                               "action": {"type": "error", "error": "NOT_COORDINATOR"},
                               "dosage": {"max_injections": 1}})
    try:
        bob = _sasl_conf(sasl_proxy, "SCRAM-SHA-512", "bob", secured_kafka.users["bob"])
        name = f"{unique_name}-bob"
        confluent_round_trip(bob, name, name, RECORDS).verify(RECORDS)
        bob_events = sasl_proxy.events(f"{unique_name}-bob")
        assert any(e["api"] == "SyncGroup" and e["principal"] == "bob" for e in bob_events)
        assert sasl_proxy.admin.rule(rule)["stats"]["injected"] == 0  # bob's SyncGroup passed
        alice = _sasl_conf(sasl_proxy, "SCRAM-SHA-256", "alice", secured_kafka.users["alice"])
        confluent_round_trip(alice, f"{unique_name}-alice", f"{unique_name}-alice",
                             RECORDS).verify(RECORDS)
        event = sasl_proxy.wait_for(
            lambda: injected_sync(sasl_proxy.events(f"{unique_name}-alice"), rule),
            "alice's SyncGroup answered by the rule")
        assert event["principal"] == "alice"
        assert sasl_proxy.admin.rule(rule)["stats"]["injected"] == 1
        assert not [e for e in sasl_proxy.events(f"{unique_name}-bob") if e.get("fault")]
    finally:
        sasl_proxy.admin.remove_rule(rule, missing_ok=True)
