"""The proxy's own SASL login (`proxy.sasl_login`): SCRAM against RFC 7677's worked example,
PLAIN's token, and refusals that name the user but never the password."""

from __future__ import annotations

from typing import Any

import pytest

from kafka_chaos_proxy.proxy.sasl_login import SaslLoginError, ScramClient, login
from kafka_chaos_proxy.proxy.tls.settings import UpstreamSasl

VERSIONS = {17: (0, 1), 36: (0, 2)}


def test_scram_sha_256_matches_the_rfc_7677_example() -> None:
    client = ScramClient("SCRAM-SHA-256", "user", "pencil", nonce="rOprNGfwEbeRWgbNEkqO")
    assert client.first() == b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    server_first = (b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                    b"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
    assert client.final(server_first) == (
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    client.verify(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
    with pytest.raises(SaslLoginError, match="does not verify"):
        client.verify(b"v=AAAA")
    assert "pencil" not in repr(client)


class FakeBroker:
    """Answers SaslHandshake and SaslAuthenticate as told; records the tokens."""

    def __init__(self, mechanisms: tuple[str, ...] = ("PLAIN",), refuse: bool = False) -> None:
        self.mechanisms = mechanisms
        self.refuse = refuse
        self.tokens: list[bytes] = []

    async def call(self, api_key: int, version: int, body: dict[str, Any]) -> dict[str, Any]:
        if api_key == 17:
            known = body["mechanism"] in self.mechanisms
            return {"error_code": 0 if known else 33, "mechanisms": list(self.mechanisms)}
        self.tokens.append(body["auth_bytes"])
        if self.refuse:
            return {"error_code": 58, "error_message": "Authentication failed: Invalid "
                    "username or password", "auth_bytes": b""}
        return {"error_code": 0, "auth_bytes": b""}


async def test_plain_sends_one_token_and_a_refusal_never_repeats_the_password() -> None:
    broker = FakeBroker()
    await login(broker.call, UpstreamSasl("PLAIN", "admin", "s3cret"), VERSIONS)
    assert broker.tokens == [b"\x00admin\x00s3cret"]
    with pytest.raises(SaslLoginError) as info:
        await login(FakeBroker(refuse=True).call, UpstreamSasl("PLAIN", "admin", "s3cret"),
                    VERSIONS)
    assert "'admin'" in str(info.value) and "s3cret" not in str(info.value)


async def test_a_mechanism_the_broker_lacks_is_said_with_what_it_offers() -> None:
    with pytest.raises(SaslLoginError, match=r"does not offer SASL SCRAM-SHA-512.*PLAIN"):
        await login(FakeBroker().call, UpstreamSasl("SCRAM-SHA-512", "a", "b"), VERSIONS)
    with pytest.raises(SaslLoginError, match="SaslHandshake v1"):
        await login(FakeBroker().call, UpstreamSasl("PLAIN", "a", "b"), {17: (0, 0)})


def test_credentials_hide_the_password_and_refuse_unknown_mechanisms() -> None:
    creds = UpstreamSasl("PLAIN", "admin", "s3cret")
    assert "s3cret" not in repr(creds)
    with pytest.raises(ValueError, match="OAUTHBEARER"):
        UpstreamSasl("OAUTHBEARER", "a", "b")
