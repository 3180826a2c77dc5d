"""A local broker with secured listeners: SSL (mTLS) and SASL_SSL, for tests and demos.

Why: the proxy in front of a secured cluster must be tested against a real broker's TLS and
SASL, with no external service. `LocalKraftCluster(security=Secured())` adds two listeners to
every node beside PLAINTEXT (which stays, for inter-broker traffic and start-up probes):

- SSL, `ssl.client.auth=required`: clients must present a certificate signed by the CA;
- SASL_SSL, server TLS only, mechanisms PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER
  (Kafka's unsecured JWT validator: for tests, never production). PLAIN users come from the
  listener's JAAS config, SCRAM users are created when the storage is formatted
  (`kafka-storage format --add-scram`).

Both advertise `localhost` (the certificate is for localhost and 127.0.0.1), so a client or
the proxy sends a real SNI name and checks it. The certificates are made with `cryptography`
(`proxy.tls.certs`) into the cluster's folder: Kafka reads PEM key stores
(`ssl.keystore.type=PEM`, KIP-651) so no keytool or password is needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kafka_chaos_proxy.proxy.tls import certs

#: The users every secured local broker knows, with SASL PLAIN and both SCRAM mechanisms.
#: Test credentials only (the broker is local and temporary).
DEFAULT_USERS: tuple[tuple[str, str], ...] = (("alice", "alice-secret"), ("bob", "bob-secret"),
                                               ("admin", "admin-secret"))
SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
SASL_MECHANISMS = ("PLAIN", *SCRAM_MECHANISMS, "OAUTHBEARER")
ADVERTISED_HOST = "localhost"


@dataclass(frozen=True)
class Secured:
    """Who may log in over SASL; where the PEM files go (None: the cluster's own folder,
    removed with it); fixed ports for a one-node demo (None: free ports)."""

    users: tuple[tuple[str, str], ...] = DEFAULT_USERS
    tls_dir: Path | None = None
    ssl_port: int | None = None
    sasl_ssl_port: int | None = None


@dataclass(frozen=True)
class TlsFiles:
    """The PEM files of a secured cluster, all in one folder."""

    directory: Path
    ca_file: Path = field(init=False)  # what clients trust
    keystore_file: Path = field(init=False)  # the brokers' key + certificate (Kafka PEM store)
    client_cert_file: Path = field(init=False)  # a client certificate for mTLS (CN=client)
    client_key_file: Path = field(init=False)

    def __post_init__(self) -> None:
        for name, file in (("ca_file", "ca.pem"), ("keystore_file", "broker-keystore.pem"),
                           ("client_cert_file", "client.pem"),
                           ("client_key_file", "client-key.pem")):
            object.__setattr__(self, name, self.directory / file)


def write_tls_files(directory: Path) -> TlsFiles:
    """A CA, the brokers' certificate (localhost, 127.0.0.1) and one client certificate."""
    files = TlsFiles(directory)
    ca = certs.make_ca("kafka-chaos-proxy test cluster CA")
    broker = certs.issue(ca, ADVERTISED_HOST, (ADVERTISED_HOST, "127.0.0.1", "::1"),
                         server=True, client=True)
    client = certs.issue(ca, "client", (), server=False, client=True)
    certs.write_public(files.ca_file, ca.cert_pem)
    certs.write_private(files.keystore_file, broker.key_pem + broker.cert_pem)
    certs.write_public(files.client_cert_file, client.cert_pem)
    certs.write_private(files.client_key_file, client.key_pem)
    return files


def _jaas_plain(users: tuple[tuple[str, str], ...]) -> str:
    entries = " ".join(f'user_{name}="{password}"' for name, password in users)
    return f"org.apache.kafka.common.security.plain.PlainLoginModule required {entries};"


def listener_properties(files: TlsFiles, secured: Secured) -> dict[str, str]:
    """The server.properties of the SSL and SASL_SSL listeners (ports come with the node)."""
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    props = {
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(files.keystore_file),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(files.ca_file),
        "listener.name.ssl.ssl.client.auth": "required",
        "listener.name.sasl_ssl.ssl.client.auth": "none",
        "sasl.enabled.mechanisms": ",".join(SASL_MECHANISMS),
        "listener.name.sasl_ssl.sasl.enabled.mechanisms": ",".join(SASL_MECHANISMS),
        "listener.name.sasl_ssl.plain.sasl.jaas.config": _jaas_plain(secured.users),
        "listener.name.sasl_ssl.oauthbearer.sasl.jaas.config": (
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required "
            'unsecuredLoginStringClaim_sub="broker";'),
    }
    for mechanism in SCRAM_MECHANISMS:
        props[f"listener.name.sasl_ssl.{mechanism.lower()}.sasl.jaas.config"] = scram
    return props


def scram_format_args(secured: Secured) -> list[str]:
    """`kafka-storage format` arguments that create every user for both SCRAM mechanisms."""
    args: list[str] = []
    for mechanism in SCRAM_MECHANISMS:
        for name, password in secured.users:
            args += ["--add-scram", f"{mechanism}=[name={name},password={password}]"]
    return args
