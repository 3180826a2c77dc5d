"""The principal read from a SASL exchange in passing (`proxy.pipeline.sasl`): what each
mechanism reveals, and that it is believed only once the broker accepted the step."""

from __future__ import annotations

import base64
import json

from kafka_chaos_proxy.proxy.pipeline.sasl import (
    MAX_TOKEN_BYTES,
    SaslWatch,
    oauthbearer_principal,
    plain_principal,
    principal_of,
    scram_principal,
)


def _jwt(header: dict[str, object], claims: dict[str, object], signature: str = "") -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")
    return f"{part(header)}.{part(claims)}.{signature}"


def test_plain_gives_the_authentication_identity_never_the_password() -> None:
    assert plain_principal(b"\x00alice\x00alice-secret") == "alice"
    assert plain_principal(b"admin\x00alice\x00pw") == "alice"  # authzid is not who logs in
    assert plain_principal(b"alice-secret") is None
    assert plain_principal(b"\x00\x00pw") is None
    assert plain_principal(b"\x00\xff\xfe\x00pw") is None  # not UTF-8


def test_scram_gives_the_n_attribute_decoded() -> None:
    assert scram_principal(b"n,,n=alice,r=fyko+d2lbbFgONRv9qkxdawL") == "alice"
    assert scram_principal(b"n,a=alice,n=alice,r=abc") == "alice"
    assert scram_principal(b"y,,n=odd=2Cname=3Dx,r=abc") == "odd,name=x"
    assert scram_principal(b"c=biws,r=abc,p=proof") is None  # a final message names nobody
    assert scram_principal(b"n=alice") is None


def test_oauthbearer_names_only_the_subject_of_an_unsigned_token() -> None:
    unsigned = _jwt({"alg": "none"}, {"sub": "carol", "exp": 1})
    token = f"n,,\x01auth=Bearer {unsigned}\x01\x01".encode()
    assert oauthbearer_principal(token) == "carol"
    signed = _jwt({"alg": "RS256"}, {"sub": "carol"}, signature="c2ln")
    assert oauthbearer_principal(f"n,,\x01auth=Bearer {signed}\x01\x01".encode()) is None
    lying = _jwt({"alg": "RS256"}, {"sub": "carol"})  # claims a signature, carries none
    assert oauthbearer_principal(f"n,,\x01auth=Bearer {lying}\x01\x01".encode()) is None
    assert oauthbearer_principal(b"n,,\x01auth=Bearer not.a.jwt!\x01\x01") is None
    assert oauthbearer_principal(b"n,,\x01host=x\x01\x01") is None


def test_unknown_mechanisms_and_oversized_tokens_reveal_nothing() -> None:
    assert principal_of("GSSAPI", b"\x60\x82...") is None
    assert principal_of(None, b"\x00alice\x00pw") is None
    assert principal_of("plain", b"\x00alice\x00pw") == "alice"  # mechanism names any case
    assert principal_of("PLAIN", b"\x00" + b"a" * MAX_TOKEN_BYTES + b"\x00pw") is None


def test_the_watch_believes_a_name_once_the_broker_accepted_it() -> None:
    watch = SaslWatch()
    watch.handshake("SCRAM-SHA-512")
    watch.token(b"n,,n=alice,r=abc")
    watch.token(b"c=biws,r=abcdef,p=proof")  # the second token does not change the name
    assert watch.principal is None  # not yet answered
    assert watch.answered(0) == "alice"
    assert watch.answered(0) == "alice"

    refused = SaslWatch()
    refused.handshake("PLAIN")
    refused.token(b"\x00mallory\x00guess")
    assert refused.answered(58) is None  # SASL_AUTHENTICATION_FAILED
    assert refused.principal is None


def test_a_new_handshake_starts_a_new_exchange() -> None:
    watch = SaslWatch()
    watch.handshake("PLAIN")
    watch.token(b"\x00alice\x00pw")
    assert watch.answered(0) == "alice"
    watch.handshake("PLAIN")  # re-authentication (KIP-368)
    watch.token(b"\x00bob\x00pw")
    assert watch.answered(0) == "bob"
