"""Certificates for tests, made with the product's own `proxy.tls.certs`: a CA, a server
certificate for the loopback names, client certificates from that CA and from a stranger's.

The files go into a folder the test owns; `client_context` and `server_context` build the
`ssl` contexts a test's own TLS peers use.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from kafka_chaos_proxy.proxy.tls import certs

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path  # signed by `ca`, subject CN=client-app
    client_key: Path
    stranger_cert: Path  # signed by another CA: must be refused
    stranger_key: Path

    def client_context(self, with_cert: bool = False, stranger: bool = False,
                       ca: Path | None = None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(ca or self.ca))
        if with_cert:
            ctx.load_cert_chain(self.client_cert, self.client_key)
        if stranger:
            ctx.load_cert_chain(self.stranger_cert, self.stranger_key)
        return ctx

    def server_context(self, require_client_cert: bool = False) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.server_cert, self.server_key)
        if require_client_cert:
            ctx.load_verify_locations(cafile=str(self.ca))
            ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx


def make_pki(directory: Path, names: tuple[str, ...] = LOOPBACK_NAMES) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    ca = certs.make_ca("test CA")
    server = certs.issue(ca, names[0], names, server=True)
    client = certs.issue(ca, "client-app", (), server=False, client=True)
    stranger = certs.issue(certs.make_ca("stranger CA"), "stranger", (), server=False,
                           client=True)
    out = {}
    for name, data in (("ca", ca.cert_pem), ("server_cert", server.cert_pem),
                       ("server_key", server.key_pem), ("client_cert", client.cert_pem),
                       ("client_key", client.key_pem), ("stranger_cert", stranger.cert_pem),
                       ("stranger_key", stranger.key_pem)):
        path = directory / f"{name}.pem"
        certs.write_private(path, data)
        out[name] = path
    return Pki(**out)
