"""A TLS failure on one connection, as one reason from a closed set, a log line and a metric.

Why a closed set: the reason is the label of `kcp_tls_errors_total{side,reason}`, and what a
peer sends must never mint series (invariant 5); OpenSSL's own reason codes are many and
change between versions, so they are folded into what an operator can act on. The detail
(OpenSSL's text, the certificate check's message) goes to the log line only.

`side` is "client" (a client of the proxy's listeners) or "upstream" (a connection of the
proxy to a broker: a client's upstream, discovery, the side channel).
"""

from __future__ import annotations

import ssl

import structlog

from kafka_chaos_proxy.proxy import metrics

log = structlog.get_logger("kcp.tls")

CLIENT, UPSTREAM = "client", "upstream"

NOT_TLS = "not_tls"  # the peer's first bytes were not TLS (plaintext Kafka to a TLS listener)
TLS_ON_PLAINTEXT = "tls_on_plaintext"  # a TLS ClientHello reached a plaintext listener
CERT_MISSING = "cert_missing"  # mTLS: the peer presented no certificate
CERT_UNVERIFIED = "cert_unverified"  # the peer's certificate did not verify
HOSTNAME_MISMATCH = "hostname_mismatch"  # ... verified, but not for the host connected to
PEER_REJECTED_CERT = "peer_rejected_cert"  # the peer refused our certificate (an alert)
PROTOCOL_VERSION = "protocol_version"  # no TLS version in common
NO_SHARED_CIPHER = "no_shared_cipher"
HANDSHAKE_TIMEOUT = "handshake_timeout"
HANDSHAKE_EOF = "handshake_eof"  # the peer closed during the handshake
HANDSHAKE_FAILED = "handshake_failed"  # anything else

REASONS = frozenset({NOT_TLS, TLS_ON_PLAINTEXT, CERT_MISSING, CERT_UNVERIFIED,
                     HOSTNAME_MISMATCH, PEER_REJECTED_CERT, PROTOCOL_VERSION, NO_SHARED_CIPHER,
                     HANDSHAKE_TIMEOUT, HANDSHAKE_EOF, HANDSHAKE_FAILED})

_BY_OPENSSL_REASON = {
    "WRONG_VERSION_NUMBER": NOT_TLS,
    "HTTP_REQUEST": NOT_TLS,
    "HTTPS_PROXY_REQUEST": NOT_TLS,
    "UNKNOWN_PROTOCOL": NOT_TLS,
    "RECORD_LAYER_FAILURE": NOT_TLS,
    "PACKET_LENGTH_TOO_LONG": NOT_TLS,
    "UNEXPECTED_RECORD": NOT_TLS,
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": CERT_MISSING,
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": PEER_REJECTED_CERT,
    "CERTIFICATE_VERIFY_FAILED": CERT_UNVERIFIED,
    "TLSV1_ALERT_UNKNOWN_CA": PEER_REJECTED_CERT,
    "SSLV3_ALERT_BAD_CERTIFICATE": PEER_REJECTED_CERT,
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": PEER_REJECTED_CERT,
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": PEER_REJECTED_CERT,
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE": PEER_REJECTED_CERT,
    "TLSV1_ALERT_ACCESS_DENIED": PEER_REJECTED_CERT,
    "UNSUPPORTED_PROTOCOL": PROTOCOL_VERSION,
    "TLSV1_ALERT_PROTOCOL_VERSION": PROTOCOL_VERSION,
    "NO_PROTOCOLS_AVAILABLE": PROTOCOL_VERSION,
    "NO_SHARED_CIPHER": NO_SHARED_CIPHER,
    "SSLV3_ALERT_HANDSHAKE_FAILURE": NO_SHARED_CIPHER,
}
_HOSTNAME_MISMATCH_CODE = 62  # X509_V_ERR_HOSTNAME_MISMATCH (and 64: IP address mismatch)
_IP_MISMATCH_CODE = 64

_HINTS = {
    NOT_TLS: "the peer does not speak TLS (plaintext Kafka to a TLS listener?)",
    TLS_ON_PLAINTEXT: "the client speaks TLS to a plaintext listener (start the proxy with "
                      "--tls-cert/--tls-key or --tls-self-signed, or use security.protocol "
                      "PLAINTEXT/SASL_PLAINTEXT)",
    CERT_MISSING: "the peer presented no client certificate (--tls-client-ca requires one)",
    CERT_UNVERIFIED: "the peer's certificate does not verify against the trusted CAs",
    HOSTNAME_MISMATCH: "the peer's certificate is not for the host connected to",
    PEER_REJECTED_CERT: "the peer refused this side's certificate (or wanted one)",
    PROTOCOL_VERSION: "no TLS version in common (see --tls-min-version)",
    NO_SHARED_CIPHER: "no cipher suite in common",
    HANDSHAKE_TIMEOUT: "the TLS handshake did not finish in time",
    HANDSHAKE_EOF: "the peer closed the connection during the TLS handshake",
    HANDSHAKE_FAILED: "the TLS handshake failed",
}


def classify(exc: BaseException) -> str:
    """The reason label of a failed handshake (or a TLS error on an open connection)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        if exc.verify_code in (_HOSTNAME_MISMATCH_CODE, _IP_MISMATCH_CODE):
            return HOSTNAME_MISMATCH
        return CERT_UNVERIFIED
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return HANDSHAKE_EOF
    if isinstance(exc, ssl.SSLError):
        reason = getattr(exc, "reason", None)
        if isinstance(reason, str) and reason in _BY_OPENSSL_REASON:
            return _BY_OPENSSL_REASON[reason]
        return HANDSHAKE_FAILED
    if isinstance(exc, TimeoutError) or (
            # the loops' TLS layers abort a slow handshake with this, not a TimeoutError
            isinstance(exc, ConnectionAbortedError) and "taking longer" in str(exc)):
        return HANDSHAKE_TIMEOUT
    if isinstance(exc, ConnectionError | EOFError):
        return HANDSHAKE_EOF
    return HANDSHAKE_FAILED


def hint(reason: str) -> str:
    return _HINTS.get(reason, _HINTS[HANDSHAKE_FAILED])


def detail_of(exc: BaseException) -> str:
    """OpenSSL's text for the log line (`verify_message` names the certificate problem)."""
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return f"certificate verify failed: {exc.verify_message}"
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())[:300]


def record(side: str, reason: str, **fields: object) -> None:
    """Count one TLS failure and log it (warning): the connection it ended is closed by the
    caller. Label values are checked here so no caller can widen the set."""
    if reason not in REASONS:
        reason = HANDSHAKE_FAILED
    metrics.tls_errors_total.labels(side if side in (CLIENT, UPSTREAM) else CLIENT,
                                    reason).inc()
    log.warning("tls_error", side=side, reason=reason, hint=hint(reason), **fields)
