"""The proxy's own SASL login, for the few connections it opens itself (discovery at start-up,
the side channel of broker-consistent faults) to a broker that requires SASL.

Clients' connections never use this: their SASL exchange passes through the proxy unchanged,
and the proxy never learns their secrets. Its own connections have no client to speak for
them, so they log in with credentials given to the proxy explicitly (`--upstream-sasl-*`),
with PLAIN or SCRAM-SHA-256/512 (RFC 5802, RFC 7677), over SaslHandshake v1 and
SaslAuthenticate. The password never leaves this module except inside the tokens sent to the
broker: no log line, error message or repr carries it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.codec import ApiKey
from kafka_chaos_proxy.proxy.tls.settings import UpstreamSasl

SASL_HANDSHAKE, SASL_AUTHENTICATE = ApiKey.SASL_HANDSHAKE, ApiKey.SASL_AUTHENTICATE
#: call(api_key, api_version, body) -> the decoded answer, on the connection being logged in.
Call = Callable[[int, int, dict[str, Any]], Awaitable[dict[str, Any]]]
_HASHES = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}


class SaslLoginError(Exception):
    """The broker refused the login, or the exchange went wrong; the message says which and
    names the user, never the password."""


async def login(call: Call, sasl: UpstreamSasl,
                versions: Mapping[int, tuple[int, int]]) -> None:
    """Log the connection behind `call` in as `sasl.username` (`versions`: the broker's
    ApiVersions ranges). Raises `SaslLoginError`."""
    if SASL_HANDSHAKE not in versions or versions[SASL_HANDSHAKE][1] < 1:
        raise SaslLoginError("the broker offers no SaslHandshake v1 (SASL over Kafka "
                             "requests, Kafka 1.0+)")
    answer = await call(SASL_HANDSHAKE, 1, {"mechanism": sasl.mechanism})
    if answer.get("error_code"):
        offered = ", ".join(answer.get("mechanisms") or ()) or "none"
        raise SaslLoginError(f"the broker does not offer SASL {sasl.mechanism} (it offers "
                             f"{offered})")
    version = _version(versions, SASL_AUTHENTICATE)

    async def step(token: bytes) -> bytes:
        reply = await call(SASL_AUTHENTICATE, version, {"auth_bytes": token})
        if reply.get("error_code"):
            message = reply.get("error_message") or codec.error_label(reply["error_code"])
            raise SaslLoginError(f"SASL {sasl.mechanism} login as {sasl.username!r} refused: "
                                 f"{message}")
        auth_bytes = reply.get("auth_bytes") or b""
        return bytes(auth_bytes)

    if sasl.mechanism == "PLAIN":
        await step(b"\x00" + sasl.username.encode() + b"\x00" + sasl.password.encode())
        return
    scram = ScramClient(sasl.mechanism, sasl.username, sasl.password)
    server_first = await step(scram.first())
    server_final = await step(scram.final(server_first))
    scram.verify(server_final)


def _version(versions: Mapping[int, tuple[int, int]], api_key: int) -> int:
    lo, hi = versions.get(api_key, (0, -1))
    codec_lo, codec_hi = codec.supported_versions(api_key)
    version = min(hi, codec_hi)
    if version < max(lo, codec_lo):
        raise SaslLoginError(f"no {codec.api_name(api_key)} version in common with the broker "
                             f"(broker {lo}..{hi}, proxy {codec_lo}..{codec_hi})")
    return version


def _saslname(name: str) -> str:
    return name.replace("=", "=3D").replace(",", "=2C")


@dataclass
class ScramClient:
    """One SCRAM exchange (RFC 5802): `first()`, `final(server_first)`, `verify(final)`."""

    mechanism: str
    username: str
    password: str
    nonce: str = ""

    def __post_init__(self) -> None:
        self._hash = _HASHES[self.mechanism]
        self.nonce = self.nonce or base64.b64encode(os.urandom(24)).decode()
        self._bare = f"n={_saslname(self.username)},r={self.nonce}"
        self._server_signature = b""

    def __repr__(self) -> str:  # the dataclass's own would show the password
        return f"ScramClient({self.mechanism}, {self.username!r})"

    def first(self) -> bytes:
        return f"n,,{self._bare}".encode()

    def _hmac(self, key: bytes, message: bytes) -> bytes:
        return hmac.new(key, message, self._hash).digest()

    def final(self, server_first: bytes) -> bytes:
        text = server_first.decode("utf-8", errors="replace")
        attrs = dict(part.split("=", 1) for part in text.split(",") if "=" in part)
        nonce, salt, iterations = attrs.get("r", ""), attrs.get("s", ""), attrs.get("i", "")
        if not nonce.startswith(self.nonce) or not salt or not iterations.isdigit():
            raise SaslLoginError("the broker's SCRAM server-first message is not usable")
        salted = hashlib.pbkdf2_hmac(self._hash, self.password.encode(),
                                     base64.b64decode(salt), int(iterations))
        client_key = self._hmac(salted, b"Client Key")
        stored_key = hashlib.new(self._hash, client_key).digest()
        without_proof = f"c=biws,r={nonce}"
        auth_message = f"{self._bare},{text},{without_proof}".encode()
        signature = self._hmac(stored_key, auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        self._server_signature = self._hmac(self._hmac(salted, b"Server Key"), auth_message)
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def verify(self, server_final: bytes) -> None:
        """The broker proved it knows the password too (else it is not the broker)."""
        text = server_final.decode("utf-8", errors="replace")
        if not text.startswith("v="):
            raise SaslLoginError(f"the broker's SCRAM final message is an error: {text[:100]}")
        if not hmac.compare_digest(base64.b64decode(text[2:].split(",")[0]),
                                   self._server_signature):
            raise SaslLoginError("the broker's SCRAM server signature does not verify")
