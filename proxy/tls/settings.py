"""What TLS (and the proxy's own SASL login) a user asked for, as plain frozen values.

Why plain values and not `ssl.SSLContext`s: `ProxyConfig` stays a value a test can build and
compare, and the contexts are made from it once, at start-up (`proxy.tls.contexts`), where a
bad file can still be said in one line before anything listens. Each default is defined here
once; the settings model and the CLI take it from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

#: TLS versions a side may be held to at least; 1.2 by default (what Kafka's own
#: `ssl.enabled.protocols` allows by default: TLSv1.2 and TLSv1.3).
TLS_VERSIONS = ("1.2", "1.3")
DEFAULT_TLS_MIN_VERSION: Final = "1.2"
#: SASL mechanisms the proxy can log in with on its own connections (discovery, the side
#: channel of broker-consistent faults). OAUTHBEARER needs a token source: not offered.
OWN_SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
#: Where `--tls-self-signed` keeps its CA unless told otherwise (under the project's cache:
#: `$KCP_CACHE_DIR`, `$XDG_CACHE_HOME/kafka-chaos-proxy` or `~/.cache/kafka-chaos-proxy`).
SELF_SIGNED_SUBDIR = "tls"


@dataclass(frozen=True)
class ListenerTls:
    """TLS on the client side: every listener (bootstrap and per broker) serves it.

    Either `cert_file` + `key_file` (PEM; the cert file may hold the chain), or
    `self_signed_dir`: a CA kept there (made on first use, reused after, so clients that
    trust it keep trusting restarts) signs a fresh server certificate for `names` at start-up.
    `client_ca_file` turns on mTLS: a client must present a certificate that verifies
    against it. ALPN is left alone (Kafka does not negotiate it)."""

    cert_file: Path | None = None
    key_file: Path | None = None
    client_ca_file: Path | None = None
    min_version: str = DEFAULT_TLS_MIN_VERSION
    self_signed_dir: Path | None = None
    names: tuple[str, ...] = ()  # host names and addresses the self-signed cert is for

    @property
    def self_signed(self) -> bool:
        return self.cert_file is None and self.self_signed_dir is not None


@dataclass(frozen=True)
class UpstreamTls:
    """TLS to the brokers (the proxy's own connections too): verified against `ca_file`, or
    the system's trust store when it is None; SNI and the name checked are the broker's
    advertised host. `cert_file` + `key_file`: the client certificate for brokers that want
    mTLS. `insecure` skips verification, for tests only (start-up says so loudly)."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure: bool = False
    min_version: str = DEFAULT_TLS_MIN_VERSION


@dataclass(frozen=True)
class UpstreamSasl:
    """How the proxy's own connections log in to a broker that requires SASL. Clients'
    connections never use it: their SASL exchange passes through untouched."""

    mechanism: str
    username: str
    password: str = field(repr=False)  # never in a repr, a log line or an event

    def __post_init__(self) -> None:
        if self.mechanism not in OWN_SASL_MECHANISMS:
            raise ValueError(f"SASL mechanism {self.mechanism!r} for the proxy's own "
                             f"connections: use one of {', '.join(OWN_SASL_MECHANISMS)}")


def default_self_signed_dir() -> Path:
    """The CA folder of `--tls-self-signed` when `--tls-self-signed-dir` is not given."""
    from kafka_chaos_proxy.proxy.real_kafka.maven import cache_root

    return cache_root() / SELF_SIGNED_SUBDIR
