"""Certificates made with `cryptography`: a CA, and the server or client certificates it signs.

Two users: `run --tls-self-signed` (a CA kept in a folder, a server certificate for the
listener names made at each start), and the local broker's SSL and SASL_SSL listeners
(`proxy.real_kafka.security`), whose tests also need client certificates for mTLS.

Keys are EC P-256: made in a millisecond (an RSA key takes a noticeable fraction of a second
on a small machine), and accepted by every client the project tests (librdkafka, Java, Go,
Python's ssl). Private keys are written unencrypted in PKCS#8 PEM, mode 0600, with an atomic
rename so that a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import ipaddress
import os
import socket
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
CA_DAYS = 3650
LEAF_DAYS = 397  # what browsers accept at most; clients here do not care, but it is sane
#: A kept CA this close to its end is replaced (its clients must be handed the new one).
_RENEW_BEFORE = dt.timedelta(days=30)
_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key, as PEM bytes."""

    cert_pem: bytes
    key_pem: bytes

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _name(common_name: str, organization: str = "kafka-chaos-proxy") -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_ca(common_name: str = "kafka-chaos-proxy CA", days: int = CA_DAYS) -> KeyPair:
    """A self-signed CA that may sign leaf certificates only (path length 0)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    name = _name(common_name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _alt_names(names: Iterable[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for name in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            out.append(x509.DNSName(name))
    return out


def issue(ca: KeyPair, common_name: str, names: Sequence[str] = (), *, server: bool = True,
          client: bool = False, days: int = LEAF_DAYS) -> KeyPair:
    """A leaf certificate signed by `ca`, for `names` (DNS names or IP addresses, in the
    subject alternative names that clients check) and the usages asked for."""
    ca_cert = ca.certificate
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    usages = [u for u, on in ((ExtendedKeyUsageOID.SERVER_AUTH, server),
                              (ExtendedKeyUsageOID.CLIENT_AUTH, client)) if on]
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name)).issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False,
                                     crl_sign=False, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=True, encipher_only=False,
                                     decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            ca_cert.public_key()), critical=False)  # type: ignore[arg-type]
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(_alt_names(names)),
                                        critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` readable by its owner only, atomically (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_public(path: Path, data: bytes) -> None:
    """Like `write_private`, readable by everyone (a CA certificate is handed to clients)."""
    write_private(path, data)
    path.chmod(0o644)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One process at a time makes or renews the CA of `directory` (proxies started side by
    side share the default folder)."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_ca(directory: Path) -> KeyPair:
    """The CA kept in `directory` (ca.pem, ca-key.pem): made on first use, reused while it
    is valid for a while yet, so clients given ca.pem keep trusting the proxy's restarts."""
    with _locked(directory):
        cert_path, key_path = directory / CA_FILE, directory / CA_KEY_FILE
        if cert_path.is_file() and key_path.is_file():
            kept = KeyPair(cert_path.read_bytes(), key_path.read_bytes())
            try:
                if kept.certificate.not_valid_after_utc - _now() > _RENEW_BEFORE:
                    return kept
            except ValueError:
                pass  # not a certificate any more: make a new CA
        ca = make_ca()
        write_private(key_path, ca.key_pem)
        write_public(cert_path, ca.cert_pem)
        return ca


def listener_names(listen_host: str, advertised: str) -> tuple[str, ...]:
    """The names a listener's self-signed certificate is for: the advertised host (what
    clients connect to), the bound address, this machine's name and the loopback ones."""
    names: list[str] = []
    for name in (advertised, listen_host, socket.gethostname(), "localhost", "127.0.0.1",
                 "::1"):
        if name not in _WILDCARD_HOSTS and name not in names:
            names.append(name)
    return tuple(names)

