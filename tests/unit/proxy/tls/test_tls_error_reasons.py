"""TLS failures fold into a closed set of reasons: the label values of kcp_tls_errors_total."""

from __future__ import annotations

import ssl

from structlog.testing import capture_logs

from kafka_chaos_proxy.proxy import metrics
from kafka_chaos_proxy.proxy.tls import errors


def _ssl_error(reason: str) -> ssl.SSLError:
    exc = ssl.SSLError(1, f"[SSL: {reason}] {reason.lower()}")
    exc.reason = reason
    return exc


def test_openssl_reasons_map_into_the_closed_set() -> None:
    assert errors.classify(_ssl_error("WRONG_VERSION_NUMBER")) == errors.NOT_TLS
    assert errors.classify(_ssl_error("HTTP_REQUEST")) == errors.NOT_TLS
    assert errors.classify(_ssl_error("PEER_DID_NOT_RETURN_A_CERTIFICATE")) == errors.CERT_MISSING
    assert errors.classify(_ssl_error("TLSV1_ALERT_UNKNOWN_CA")) == errors.PEER_REJECTED_CERT
    assert errors.classify(_ssl_error("UNSUPPORTED_PROTOCOL")) == errors.PROTOCOL_VERSION
    assert errors.classify(_ssl_error("SOMETHING_NEW_IN_OPENSSL_9")) == errors.HANDSHAKE_FAILED
    assert errors.classify(TimeoutError()) == errors.HANDSHAKE_TIMEOUT
    assert errors.classify(ConnectionAbortedError(
        "SSL handshake is taking longer than 60.0 seconds: aborting the connection")
    ) == errors.HANDSHAKE_TIMEOUT
    assert errors.classify(ConnectionResetError()) == errors.HANDSHAKE_EOF
    assert errors.classify(ssl.SSLEOFError()) == errors.HANDSHAKE_EOF
    assert errors.classify(ValueError()) == errors.HANDSHAKE_FAILED


def test_certificate_verification_tells_a_wrong_name_from_an_unknown_issuer() -> None:
    mismatch = ssl.SSLCertVerificationError(1, "certificate verify failed")
    mismatch.verify_code, mismatch.verify_message = 62, "Hostname mismatch"
    unknown = ssl.SSLCertVerificationError(1, "certificate verify failed")
    unknown.verify_code, unknown.verify_message = 20, "unable to get local issuer certificate"
    assert errors.classify(mismatch) == errors.HOSTNAME_MISMATCH
    assert errors.classify(unknown) == errors.CERT_UNVERIFIED
    assert "unable to get local issuer certificate" in errors.detail_of(unknown)


def test_every_reason_has_a_hint_and_record_cannot_widen_the_labels() -> None:
    assert all(errors.hint(r) for r in errors.REASONS)
    before = metrics.tls_errors_total.labels("client", errors.HANDSHAKE_FAILED)._value.get()
    with capture_logs() as logs:
        errors.record("somewhere", "made-up-by-a-peer", conn=1)
    after = metrics.tls_errors_total.labels("client", errors.HANDSHAKE_FAILED)._value.get()
    assert after == before + 1
    (line,) = logs
    assert line["event"] == "tls_error" and line["reason"] == errors.HANDSHAKE_FAILED
    assert line["log_level"] == "warning" and line["hint"]
