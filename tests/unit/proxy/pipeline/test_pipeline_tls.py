"""TLS on either side of the pipeline, against the scripted upstream: frames cross unchanged,
each bad peer costs its own connection (a `tls_error` line and kcp_tls_errors_total), the
splice fast path stays off, and the principal a client's certificate or SASL exchange names
reaches the fault decider.

The TLS layer is put in by the connection itself (`proxy.pipeline.tls_accept`), on asyncio's
loop and on uvloop's (whose readers start right after `connection_made`): both are run.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import uvloop
from structlog.testing import capture_logs

from kafka_chaos_proxy.proxy import metrics
from kafka_chaos_proxy.proxy.pipeline.connection import Connection
from kafka_chaos_proxy.proxy.pipeline.framing import with_size
from kafka_chaos_proxy.proxy.server import ProxyServer
from kafka_chaos_proxy.proxy.tls import errors as tls_errors
from kafka_chaos_proxy.proxy.tls.settings import ListenerTls, UpstreamTls
from tests.support.pki import Pki, make_pki
from tests.support.wire_fakes import (
    Client,
    FakeCluster,
    FixedDecider,
    decode_response,
    request_frame,
    response_frame,
    start_proxy,
)

HEARTBEAT, HB_V = 12, 4
SASL_HANDSHAKE, SASL_AUTHENTICATE = 17, 36
PASS_DECIDER_KEY = 999  # FixedDecider only records: nothing matches this api key


def hb(corr: int) -> bytes:
    return request_frame(HEARTBEAT, HB_V, corr, {"group_id": "g", "generation_id": 1,
                                                 "member_id": "m"})


def tls_errors_count(side: str, reason: str) -> float:
    return float(metrics.tls_errors_total.labels(side, reason)._value.get())


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def listener(pki: Pki, mtls: bool = False) -> ListenerTls:
    return ListenerTls(cert_file=pki.server_cert, key_file=pki.server_key,
                       client_ca_file=pki.ca if mtls else None)


async def _heartbeat_ok(client: Client, corr: int) -> None:
    await client.send(hb(corr))
    assert decode_response(await client.recv(), HEARTBEAT, HB_V)[0] == corr


async def _until(cond: Callable[[], bool], seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


def _conn(server: ProxyServer) -> Connection:
    return next(iter(server.connections.values()))


async def _tls_round_trip_and_a_plaintext_client(pki: Pki) -> None:
    upstream = await FakeCluster().start()
    server = await start_proxy(upstream, listener_tls=listener(pki))
    host, port = server.bootstrap_address
    good = await Client.connect(host, port, tls=pki.client_context())
    await _heartbeat_ok(good, 1)
    assert [r.frame for r in upstream.received] == [hb(1)]  # byte-exact through TLS
    conn = _conn(server)
    assert conn.client_tls and not conn.upstream_tls
    before = tls_errors_count("client", tls_errors.NOT_TLS)
    with capture_logs() as logs:
        plain = await Client.connect(host, port)
        await plain.send(hb(2))
        assert await plain.at_eof()
        await _until(lambda: len(server.connections) == 1)
    assert tls_errors_count("client", tls_errors.NOT_TLS) == before + 1
    (line,) = [e for e in logs if e["event"] == "tls_error"]
    assert line["side"] == "client" and line["reason"] == tls_errors.NOT_TLS
    assert "plaintext" in line["hint"]
    await _heartbeat_ok(good, 3)  # the other connection never noticed
    good.close()
    await server.stop()
    await upstream.stop()


async def test_tls_listener_round_trip_and_a_plaintext_client_costs_only_itself(
        pki: Pki) -> None:
    await _tls_round_trip_and_a_plaintext_client(pki)


def test_the_same_on_uvloop(pki: Pki) -> None:
    """uvloop starts reading a new connection right after connection_made: the ClientHello
    must still reach the TLS layer, not the frame reader."""
    async def many() -> None:
        for _ in range(5):
            await _tls_round_trip_and_a_plaintext_client(pki)

    uvloop.run(many())


async def test_a_tls_client_on_a_plaintext_listener_is_told_apart(pki: Pki) -> None:
    upstream = await FakeCluster().start()
    server = await start_proxy(upstream)
    host, port = server.bootstrap_address
    good = await Client.connect(host, port)
    await _heartbeat_ok(good, 1)
    before = tls_errors_count("client", tls_errors.TLS_ON_PLAINTEXT)
    with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
        await Client.connect(host, port, tls=pki.client_context())
    await _until(lambda: tls_errors_count("client", tls_errors.TLS_ON_PLAINTEXT) == before + 1)
    await _heartbeat_ok(good, 2)
    good.close()
    await server.stop()
    await upstream.stop()


async def _refused_client(server: ProxyServer, ctx: ssl.SSLContext, reason: str) -> None:
    before = tls_errors_count("client", reason)
    host, port = server.bootstrap_address
    try:
        client = await Client.connect(host, port, tls=ctx)
        await client.send(hb(9))  # TLS 1.3: the client learns of the refusal on reading
        assert await client.at_eof()
    except (ssl.SSLError, ConnectionError, asyncio.IncompleteReadError):
        pass
    await _until(lambda: tls_errors_count("client", reason) == before + 1)


async def test_mtls_refuses_a_missing_or_foreign_certificate_and_names_a_good_one(
        pki: Pki) -> None:
    upstream = await FakeCluster().start()
    decider = FixedDecider(None, PASS_DECIDER_KEY)  # type: ignore[arg-type]
    server = await start_proxy(upstream, decider, listener_tls=listener(pki, mtls=True))
    host, port = server.bootstrap_address
    good = await Client.connect(host, port, tls=pki.client_context(with_cert=True))
    await _heartbeat_ok(good, 1)
    await _refused_client(server, pki.client_context(), tls_errors.CERT_MISSING)
    await _refused_client(server, pki.client_context(stranger=True), tls_errors.CERT_UNVERIFIED)
    await _heartbeat_ok(good, 2)
    assert {v.principal for v in decider.views} == {"CN=client-app,O=kafka-chaos-proxy"}
    good.close()
    await server.stop()
    await upstream.stop()


async def test_upstream_tls_verifies_the_broker_and_sends_its_host_as_sni(pki: Pki) -> None:
    seen: list[str | None] = []
    broker_ctx = pki.server_context()
    broker_ctx.sni_callback = lambda sock, name, ctx: seen.append(name)  # type: ignore[assignment,misc,return-value]
    upstream = await FakeCluster(host="localhost", tls=broker_ctx).start()
    server = await start_proxy(upstream, upstream_tls=UpstreamTls(ca_file=pki.ca))
    client = await Client.connect(*server.bootstrap_address)
    await _heartbeat_ok(client, 1)
    assert seen == ["localhost"]
    assert _conn(server).upstream_tls and not _conn(server).client_tls
    client.close()
    await server.stop()
    await upstream.stop()


async def test_a_broker_certificate_that_does_not_verify_closes_that_connection(
        pki: Pki, tmp_path: Path) -> None:
    stranger = make_pki(tmp_path / "stranger")  # the broker's cert is not from the trusted CA
    upstream = await FakeCluster(tls=stranger.server_context()).start()
    server = await start_proxy(upstream, upstream_tls=UpstreamTls(ca_file=pki.ca))
    before = tls_errors_count("upstream", tls_errors.CERT_UNVERIFIED)
    with capture_logs() as logs:
        client = await Client.connect(*server.bootstrap_address)
        await client.send(hb(1))
        assert await client.at_eof()
    assert tls_errors_count("upstream", tls_errors.CERT_UNVERIFIED) == before + 1
    (line,) = [e for e in logs if e["event"] == "tls_error"]
    assert line["side"] == "upstream" and "certificate verify failed" in line["detail"]
    await server.stop()
    await upstream.stop()


async def test_a_large_request_streams_through_tls_without_the_splice(pki: Pki) -> None:
    upstream = await FakeCluster(tls=pki.server_context()).start()
    server = await start_proxy(upstream, listener_tls=listener(pki),
                               upstream_tls=UpstreamTls(ca_file=pki.ca))
    client = await Client.connect(*server.bootstrap_address, tls=pki.client_context())
    await _heartbeat_ok(client, 0)
    frame = request_frame(22, 4, 1, {"transactional_id": None, "transaction_timeout_ms": 1})
    big = with_size(frame[4:] + os.urandom(3 * 1024 * 1024))  # cut-through size, never decoded
    await client.send(big + hb(2))
    await client.recv()
    await client.recv()
    assert [r.frame for r in upstream.received[1:]] == [big, hb(2)]  # order, byte-exact
    assert _conn(server).splicer is None  # splice(2) would have moved ciphertext
    client.close()
    await server.stop()
    await upstream.stop()


async def _sasl(client: Client, mechanism: str, token: bytes) -> None:
    await client.send(request_frame(SASL_HANDSHAKE, 1, 1, {"mechanism": mechanism}))
    await client.recv()
    await client.send(request_frame(SASL_AUTHENTICATE, 2, 2, {"auth_bytes": token}))
    await client.recv()


async def test_the_sasl_principal_reaches_the_decider_once_the_broker_accepted(
        pki: Pki) -> None:
    upstream = await FakeCluster().start()
    decider = FixedDecider(None, PASS_DECIDER_KEY)  # type: ignore[arg-type]
    server = await start_proxy(upstream, decider, listener_tls=listener(pki))
    alice = await Client.connect(*server.bootstrap_address, tls=pki.client_context())
    await _sasl(alice, "PLAIN", b"\x00alice\x00alice-secret")
    await _heartbeat_ok(alice, 3)

    def refuse(k: int, v: int, c: int, f: bytes) -> bytes:
        return response_frame(k, v, c, {"error_code": 58, "error_message": "no",
                                        "auth_bytes": b""})

    upstream.responders[SASL_AUTHENTICATE] = refuse
    mallory = await Client.connect(*server.bootstrap_address, tls=pki.client_context())
    await _sasl(mallory, "SCRAM-SHA-512", b"n,,n=mallory,r=abc")
    await _heartbeat_ok(mallory, 4)  # the fake broker does not close; a real one would
    by_corr: dict[int, Any] = {v.correlation_id: v.principal for v in decider.views}
    assert by_corr[1] is None and by_corr[2] is None  # not authenticated while it logs in
    assert by_corr[3] == "alice" and by_corr[4] is None
    assert upstream.received[1].frame == request_frame(
        SASL_AUTHENTICATE, 2, 2, {"auth_bytes": b"\x00alice\x00alice-secret"})  # unchanged
    alice.close()
    mallory.close()
    await server.stop()
    await upstream.stop()


async def test_raw_sasl_v0_tokens_name_the_principal_too() -> None:
    upstream = await FakeCluster().start()
    decider = FixedDecider(None, PASS_DECIDER_KEY)  # type: ignore[arg-type]
    server = await start_proxy(upstream, decider)
    client = await Client.connect(*server.bootstrap_address)
    await client.send(request_frame(SASL_HANDSHAKE, 0, 1, {"mechanism": "PLAIN"}))
    await client.recv()
    token = with_size(b"\x00bob\x00bob-secret")
    await client.send(token)
    assert await client.recv() == with_size(b"ok:" + token[4:])  # raw, both ways
    await _heartbeat_ok(client, 2)
    assert decider.views[-1].principal == "bob"
    client.close()
    await server.stop()
    await upstream.stop()

