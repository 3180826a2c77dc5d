"""The principal a client authenticates as, read from its SASL exchange as it passes through.

The proxy never takes part in SASL: SaslHandshake (api 17) and SaslAuthenticate (api 36), and
after a SaslHandshake v0 the raw tokens that follow without a Kafka header, are forwarded
byte for byte. It only reads who the client says it is, so the event log and fault rules
(`match.principal`) can name the user, and it believes it only once the broker accepted the
step (a non-zero SaslAuthenticate error drops it; a v0 exchange that fails ends with the
broker closing the connection). Secrets are never kept: the token is parsed in place and
only the name survives.

What each mechanism reveals (the same name Kafka's own principal carries by default):
- PLAIN: `authzid NUL authcid NUL passwd` -> the authcid (the user name);
- SCRAM-SHA-256/512: client-first `n,,n=user,r=nonce` -> `user` (`=2C`/`=3D` decoded);
- OAUTHBEARER: `n,,^Aauth=Bearer <jwt>^A^A` -> the JWT's `sub`, only for an unsigned token
  (`alg: none`, what Kafka's unsecured login module makes): a signed token's claims cannot
  be checked here, and the broker may take the principal from another claim
  (`sasl.oauthbearer.sub.claim.name`), so then the principal stays null;
- GSSAPI and anything else: null.
"""

from __future__ import annotations

import base64
import binascii
import json

from kafka_chaos_proxy.codec import ApiKey

SASL_HANDSHAKE, SASL_AUTHENTICATE = ApiKey.SASL_HANDSHAKE, ApiKey.SASL_AUTHENTICATE
SASL_API_KEYS = frozenset({SASL_HANDSHAKE, SASL_AUTHENTICATE})
#: Tokens longer than this are not read (a PLAIN or SCRAM first message is tens of bytes, an
#: OAUTHBEARER one a few KiB); parsing stays bounded whatever a client sends.
MAX_TOKEN_BYTES = 64 * 1024
#: A longer name is not believed to be one (it would only bloat every event).
MAX_PRINCIPAL_CHARS = 1024


def _text(raw: bytes) -> str | None:
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return name if 0 < len(name) <= MAX_PRINCIPAL_CHARS else None


def plain_principal(token: bytes) -> str | None:
    """RFC 4616: the authentication identity (the second of three NUL-separated fields)."""
    parts = token.split(b"\x00")
    return _text(parts[1]) if len(parts) == 3 else None


def _gs2_rest(text: str) -> str | None:
    """The part after a GS2 header (`n,,`, `y,,`, `n,a=authzid,`); None if there is none."""
    flag, sep, rest = text.partition(",")
    if not sep or (flag not in ("n", "y") and not flag.startswith("p=")):
        return None
    _authzid, sep, rest = rest.partition(",")
    return rest if sep else None


def scram_principal(token: bytes) -> str | None:
    """RFC 5802 client-first-message: the `n=` attribute, its saslname decoded."""
    try:
        rest = _gs2_rest(token.decode("utf-8"))
    except UnicodeDecodeError:
        return None
    if rest is None or not rest.startswith("n="):
        return None
    name = rest[2:].partition(",")[0]
    return _text(name.replace("=2C", ",").replace("=3D", "=").encode())


def _b64url_json(part: str) -> object:
    padded = part + "=" * (-len(part) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))


def oauthbearer_principal(token: bytes) -> str | None:
    """RFC 7628 client response: the `sub` of an unsigned JWT (`alg` none), else None."""
    try:
        rest = _gs2_rest(token.decode("utf-8"))
    except UnicodeDecodeError:
        return None
    if rest is None:
        return None
    for pair in rest.split("\x01"):
        key, _, value = pair.partition("=")
        if key != "auth" or not value.lower().startswith("bearer "):
            continue
        parts = value[7:].strip().split(".")
        if len(parts) != 3 or parts[2]:
            return None  # a signature: the claims are not ours to believe
        try:
            header, claims = _b64url_json(parts[0]), _b64url_json(parts[1])
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return None
        if not isinstance(header, dict) or str(header.get("alg", "")).lower() != "none":
            return None
        sub = claims.get("sub") if isinstance(claims, dict) else None
        return _text(sub.encode()) if isinstance(sub, str) else None
    return None


_PARSERS = {
    "PLAIN": plain_principal,
    "SCRAM-SHA-256": scram_principal,
    "SCRAM-SHA-512": scram_principal,
    "OAUTHBEARER": oauthbearer_principal,
}


def principal_of(mechanism: str | None, token: bytes) -> str | None:
    """The name a first client token of `mechanism` carries, if it reveals one."""
    parser = _PARSERS.get((mechanism or "").upper())
    if parser is None or not token or len(token) > MAX_TOKEN_BYTES:
        return None
    return parser(token)


class SaslWatch:
    """One connection's SASL exchange as seen in passing: the mechanism the client asked for,
    the name its first token carries (`pending`), and the principal once the broker said
    yes. Made on a connection's first SASL request only, so other connections pay nothing."""

    __slots__ = ("_first", "mechanism", "pending", "principal")

    def __init__(self) -> None:
        self.mechanism: str | None = None
        self.pending: str | None = None
        self.principal: str | None = None
        self._first = True  # the next token is the first of an exchange

    def handshake(self, mechanism: object) -> None:
        """A SaslHandshake request: a new exchange begins (re-authentication included)."""
        self.mechanism = mechanism if isinstance(mechanism, str) else None
        self.pending = None
        self._first = True

    def token(self, token: object) -> None:
        """A client token (SaslAuthenticate's auth_bytes, or a raw v0 token)."""
        if not self._first or not isinstance(token, bytes | bytearray | memoryview):
            return
        self._first = False
        self.pending = principal_of(self.mechanism, bytes(token))

    def answered(self, error_code: int) -> str | None:
        """The broker answered a step: the principal once it accepted, None after a no."""
        if error_code:
            self.pending = None
            self.principal = None
        elif self.pending is not None:
            self.principal = self.pending
        return self.principal
