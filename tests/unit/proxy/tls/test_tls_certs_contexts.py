"""Certificates (`proxy.tls.certs`) and the contexts built from user files
(`proxy.tls.contexts`): what verifies, what is kept, and the one line each bad file gets."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from cryptography import x509

from kafka_chaos_proxy.proxy.tls import certs
from kafka_chaos_proxy.proxy.tls.contexts import (
    TlsConfigError,
    listener_context,
    self_signed_ca_file,
    upstream_context,
)
from kafka_chaos_proxy.proxy.tls.settings import ListenerTls, UpstreamTls
from tests.support.pki import make_pki


def test_an_issued_certificate_names_its_hosts_and_chains_to_its_ca() -> None:
    ca = certs.make_ca()
    leaf = certs.issue(ca, "broker", ("broker.example", "10.1.2.3"), server=True, client=True)
    cert = leaf.certificate
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["broker.example"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["10.1.2.3"]
    assert cert.issuer == ca.certificate.subject
    cert.verify_directly_issued_by(ca.certificate)
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert {u._name for u in usage} == {"serverAuth", "clientAuth"}


def test_the_self_signed_ca_is_made_once_and_kept(tmp_path: Path) -> None:
    first = certs.ensure_ca(tmp_path / "ca")
    again = certs.ensure_ca(tmp_path / "ca")
    assert again == first
    assert (tmp_path / "ca" / certs.CA_KEY_FILE).stat().st_mode & 0o077 == 0
    assert (tmp_path / "ca" / certs.CA_FILE).stat().st_mode & 0o004  # clients may read it
    (tmp_path / "ca" / certs.CA_FILE).write_text("not a certificate")
    assert certs.ensure_ca(tmp_path / "ca") != first  # unreadable: replaced


def test_listener_names_skip_wildcards_and_keep_the_advertised_host_first() -> None:
    names = certs.listener_names("0.0.0.0", "proxy.example")
    assert names[0] == "proxy.example"
    assert "0.0.0.0" not in names and {"localhost", "127.0.0.1", "::1"} <= set(names)
    assert len(names) == len(set(names))


async def test_a_self_signed_listener_is_trusted_through_the_kept_ca(tmp_path: Path) -> None:
    import asyncio

    tls = ListenerTls(self_signed_dir=tmp_path / "ss", names=("localhost", "127.0.0.1"))
    server_ctx = listener_context(tls)
    ca_file = self_signed_ca_file(tls)
    assert ca_file == tmp_path / "ss" / certs.CA_FILE and ca_file.is_file()
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0,
                                        ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    client_ctx = ssl.create_default_context(cafile=str(ca_file))
    for name in ("localhost", "127.0.0.1"):
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx,
                                                  server_hostname=name)
        assert writer.get_extra_info("ssl_object").version() in ("TLSv1.2", "TLSv1.3")
        writer.close()
    server.close()


def test_contexts_follow_the_settings(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    plain = listener_context(ListenerTls(cert_file=pki.server_cert, key_file=pki.server_key))
    assert plain.verify_mode == ssl.CERT_NONE
    assert plain.minimum_version == ssl.TLSVersion.TLSv1_2
    mtls = listener_context(ListenerTls(cert_file=pki.server_cert, key_file=pki.server_key,
                                        client_ca_file=pki.ca, min_version="1.3"))
    assert mtls.verify_mode == ssl.CERT_REQUIRED
    assert mtls.minimum_version == ssl.TLSVersion.TLSv1_3
    verified = upstream_context(UpstreamTls(ca_file=pki.ca))
    assert verified.check_hostname and verified.verify_mode == ssl.CERT_REQUIRED
    insecure = upstream_context(UpstreamTls(insecure=True))
    assert not insecure.check_hostname and insecure.verify_mode == ssl.CERT_NONE
    system = upstream_context(UpstreamTls())
    assert system.verify_mode == ssl.CERT_REQUIRED


def _one_line_naming(exc: pytest.ExceptionInfo[TlsConfigError], *parts: str) -> None:
    message = str(exc.value)
    assert "\n" not in message
    for part in parts:
        assert part in message, message


def test_bad_files_are_one_line_naming_the_flag_and_the_file(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    other = make_pki(tmp_path / "other")
    missing = tmp_path / "nope.pem"
    with pytest.raises(TlsConfigError) as info:
        listener_context(ListenerTls(cert_file=pki.server_cert, key_file=missing))
    _one_line_naming(info, "--tls-key", str(missing), "cannot read")
    with pytest.raises(TlsConfigError) as info:
        listener_context(ListenerTls(cert_file=pki.server_cert, key_file=other.server_key))
    _one_line_naming(info, "--tls-key", str(other.server_key), "does not belong",
                     str(pki.server_cert))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("hello\n")
    with pytest.raises(TlsConfigError) as info:
        listener_context(ListenerTls(cert_file=garbage, key_file=pki.server_key))
    _one_line_naming(info, "--tls-cert", str(garbage), "no PEM certificate")
    with pytest.raises(TlsConfigError) as info:
        listener_context(ListenerTls(cert_file=pki.server_cert, key_file=garbage))
    _one_line_naming(info, "--tls-key", str(garbage), "no PEM private key")
    with pytest.raises(TlsConfigError) as info:
        upstream_context(UpstreamTls(ca_file=garbage))
    _one_line_naming(info, "--upstream-tls-ca", str(garbage))
    with pytest.raises(TlsConfigError) as info:
        upstream_context(UpstreamTls(ca_file=pki.ca, cert_file=pki.client_cert))
    _one_line_naming(info, "--upstream-tls-key")
    with pytest.raises(TlsConfigError) as info:
        listener_context(ListenerTls(cert_file=pki.server_cert))
    _one_line_naming(info, "--tls-key")


def test_an_encrypted_key_is_refused_with_what_to_do(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    pki = make_pki(tmp_path / "pki")
    key = serialization.load_pem_private_key(pki.server_key.read_bytes(), password=None)
    locked = tmp_path / "locked.pem"
    locked.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw")))
    with pytest.raises(TlsConfigError) as info:
        listener_context(ListenerTls(cert_file=pki.server_cert, key_file=locked))
    _one_line_naming(info, "--tls-key", str(locked), "encrypted")
