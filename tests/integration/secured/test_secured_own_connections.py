"""The proxy's own connections to a broker that requires SASL: they log in with the proxy's
own credentials (`--upstream-sasl-*`), never a client's. Discovery lists the brokers before any
client came; the side channel of broker-consistent faults gets an answer; without credentials
(or with wrong ones) each says why in one reason, and never with the password."""

from __future__ import annotations

from kafka_chaos_proxy.proxy import side_channel
from kafka_chaos_proxy.proxy.config import parse_bootstrap
from kafka_chaos_proxy.proxy.discovery import DiscoveryError, fetch_brokers
from kafka_chaos_proxy.proxy.real_kafka.provider import SecuredKafka
from kafka_chaos_proxy.proxy.tls.contexts import upstream_context
from kafka_chaos_proxy.proxy.tls.settings import UpstreamSasl, UpstreamTls
from tests.support.secured import RunningProxy


def test_discovery_logged_in_with_the_proxys_own_credentials(sasl_proxy: RunningProxy) -> None:
    brokers = next(line for line in sasl_proxy.banner if line.startswith("  brokers:"))
    assert "(node 1)" in brokers, sasl_proxy.banner  # known before any client connected
    assert any(line.startswith("  own login:   SASL SCRAM-SHA-512 as 'admin'")
               for line in sasl_proxy.banner)
    assert not [e for e in sasl_proxy.log_events() if e.get("event") == "discovery_skipped"]


async def test_discovery_without_credentials_says_what_to_give(
        secured_kafka: SecuredKafka) -> None:
    host, port = parse_bootstrap(secured_kafka.sasl_ssl_bootstrap_servers)[0]
    tls = upstream_context(UpstreamTls(ca_file=secured_kafka.tls.ca_file))
    try:
        await fetch_brokers(host, port, 20, tls=tls)
    except DiscoveryError as exc:
        assert "--upstream-sasl-mechanism" in str(exc)
    else:
        raise AssertionError("a SASL_SSL listener answered Metadata without a login")
    brokers = await fetch_brokers(host, port, 20, tls=tls, sasl=UpstreamSasl(
        "PLAIN", "admin", secured_kafka.users["admin"]))
    assert [(b[0], b[1]) for b in brokers] == [(1, "localhost")]


async def test_the_side_channel_logs_in_or_says_why_not(secured_kafka: SecuredKafka) -> None:
    address = parse_bootstrap(secured_kafka.sasl_ssl_bootstrap_servers)[0]
    tls = upstream_context(UpstreamTls(ca_file=secured_kafka.tls.ca_file))
    password = secured_kafka.users["admin"]
    logged_in = side_channel.Access(tls, UpstreamSasl("SCRAM-SHA-256", "admin", password))
    answer = await side_channel.remove_member(address, "no-such-group", "no-such-member",
                                              access=logged_in, timeout_s=20)
    # Answered at all means logged in: unauthenticated, the broker closes at LeaveGroup. What
    # it says of a group it never saw depends on whether its offsets topic exists yet.
    assert answer.answered and answer.reason is None, answer
    assert answer.error in ("UNKNOWN_MEMBER_ID", "NOT_COORDINATOR",
                            "COORDINATOR_NOT_AVAILABLE"), answer
    bare = await side_channel.remove_member(address, "g", "m", access=side_channel.Access(tls),
                                            timeout_s=20)
    assert not bare.answered and bare.reason is not None
    assert "--upstream-sasl-mechanism" in bare.reason
    wrong = side_channel.Access(tls, UpstreamSasl("SCRAM-SHA-512", "admin", "not-the-password"))
    refused = await side_channel.remove_member(address, "g", "m", access=wrong, timeout_s=20)
    assert not refused.answered and refused.reason is not None
    assert "cannot log in" in refused.reason and "'admin'" in refused.reason
    assert "not-the-password" not in refused.reason
