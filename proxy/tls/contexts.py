"""The `ssl.SSLContext`s of the proxy: one for every listener, one for every upstream connection.

Built once per settings value (cached), first by the start-up checks, so a mistake in a TLS
file is one line naming the flag and the file (`TlsConfigError`) before anything listens:
an unreadable file, a file that is not PEM, an encrypted key, a key that does not belong to
the certificate. The files are parsed with `cryptography` first because `ssl`'s own errors
("PEM lib") do not say which of two files is wrong.
"""

from __future__ import annotations

import functools
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from kafka_chaos_proxy.proxy.tls import certs
from kafka_chaos_proxy.proxy.tls.settings import TLS_VERSIONS, ListenerTls, UpstreamTls

_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


class TlsConfigError(ValueError):
    """A TLS setting that cannot be used; the message is one line naming the flag and file."""


def _tls_version(text: str, flag: str) -> ssl.TLSVersion:
    try:
        return _VERSIONS[text]
    except KeyError:
        raise TlsConfigError(f"{flag}: {text!r} is not a TLS version; use "
                             f"{' or '.join(TLS_VERSIONS)}") from None


def _read(path: Path, flag: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TlsConfigError(f"{flag} {path}: cannot read it: {exc.strerror or exc}") from None


def _check_pair(cert_file: Path, key_file: Path, cert_flag: str, key_flag: str) -> None:
    """Both files are PEM, the key is unencrypted and belongs to the first certificate."""
    cert_pem, key_pem = _read(cert_file, cert_flag), _read(key_file, key_flag)
    try:
        chain = x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        raise TlsConfigError(f"{cert_flag} {cert_file}: no PEM certificate in it (expected "
                             "-----BEGIN CERTIFICATE-----)") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise TlsConfigError(f"{key_flag} {key_file}: the key is encrypted; give it "
                             "unencrypted (e.g. `openssl pkey -in KEY -out KEY.plain`), "
                             "readable by this user only") from None
    except (ValueError, UnsupportedAlgorithm):
        raise TlsConfigError(f"{key_flag} {key_file}: no PEM private key in it (expected "
                             "-----BEGIN PRIVATE KEY-----)") from None
    if chain[0].public_key() != key.public_key():
        raise TlsConfigError(f"{key_flag} {key_file}: this key does not belong to the "
                             f"certificate in {cert_file} ({cert_flag})")


def _load_pair(ctx: ssl.SSLContext, cert_file: Path, key_file: Path, cert_flag: str,
               key_flag: str) -> None:
    _check_pair(cert_file, key_file, cert_flag, key_flag)
    try:
        ctx.load_cert_chain(cert_file, key_file)
    except (ssl.SSLError, OSError) as exc:
        raise TlsConfigError(f"{cert_flag} {cert_file} / {key_flag} {key_file}: {exc}") from None


def _load_ca(ctx: ssl.SSLContext, ca_file: Path, flag: str) -> None:
    pem = _read(ca_file, flag)
    try:
        if not x509.load_pem_x509_certificates(pem):
            raise ValueError
    except ValueError:
        raise TlsConfigError(f"{flag} {ca_file}: no PEM certificate in it (expected "
                             "-----BEGIN CERTIFICATE-----)") from None
    try:
        ctx.load_verify_locations(cafile=str(ca_file))
    except (ssl.SSLError, OSError) as exc:
        raise TlsConfigError(f"{flag} {ca_file}: {exc}") from None


def _load_self_signed(ctx: ssl.SSLContext, tls: ListenerTls) -> None:
    """A server certificate for `tls.names`, signed by the CA kept in the self-signed folder;
    loaded from a private temporary file (ssl loads keys from files only), removed at once."""
    assert tls.self_signed_dir is not None
    try:
        ca = certs.ensure_ca(tls.self_signed_dir)
    except OSError as exc:
        raise TlsConfigError(f"--tls-self-signed-dir {tls.self_signed_dir}: cannot keep the "
                             f"CA there: {exc.strerror or exc}") from None
    names = tls.names or ("localhost", "127.0.0.1")
    leaf = certs.issue(ca, names[0], names, server=True)
    with tempfile.TemporaryDirectory(prefix="kcp-tls-") as tmp:
        cert_file, key_file = Path(tmp) / "server.pem", Path(tmp) / "server-key.pem"
        certs.write_private(cert_file, leaf.cert_pem)
        certs.write_private(key_file, leaf.key_pem)
        ctx.load_cert_chain(cert_file, key_file)


def self_signed_ca_file(tls: ListenerTls) -> Path | None:
    """The CA file clients must trust for a self-signed listener (None: not self-signed)."""
    return tls.self_signed_dir / certs.CA_FILE if tls.self_signed and tls.self_signed_dir \
        else None


@functools.lru_cache(maxsize=16)
def listener_context(tls: ListenerTls) -> ssl.SSLContext:
    """The context every listener serves TLS with."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = _tls_version(tls.min_version, "--tls-min-version")
    if tls.self_signed:
        _load_self_signed(ctx, tls)
    elif tls.cert_file is None or tls.key_file is None:
        missing = "--tls-key" if tls.key_file is None else "--tls-cert"
        raise TlsConfigError(f"{missing}: TLS on the listeners needs both --tls-cert and "
                             "--tls-key (PEM files), or --tls-self-signed")
    else:
        _load_pair(ctx, tls.cert_file, tls.key_file, "--tls-cert", "--tls-key")
    if tls.client_ca_file is not None:
        _load_ca(ctx, tls.client_ca_file, "--tls-client-ca")
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


@functools.lru_cache(maxsize=16)
def upstream_context(tls: UpstreamTls) -> ssl.SSLContext:
    """The context of every connection to a broker (clients' upstreams, discovery, the side
    channel): verified against the CA file or the system store, host name checked."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = _tls_version(tls.min_version, "--upstream-tls-min-version")
    if tls.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif tls.ca_file is not None:
        _load_ca(ctx, tls.ca_file, "--upstream-tls-ca")
    else:
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    if (tls.cert_file is None) != (tls.key_file is None):
        missing = "--upstream-tls-key" if tls.key_file is None else "--upstream-tls-cert"
        raise TlsConfigError(f"{missing}: a client certificate for the brokers needs both "
                             "--upstream-tls-cert and --upstream-tls-key")
    if tls.cert_file is not None and tls.key_file is not None:
        _load_pair(ctx, tls.cert_file, tls.key_file, "--upstream-tls-cert",
                   "--upstream-tls-key")
    return ctx
