"""TLS on a client connection: the server-side handshake after accept, and the few facts the
connection needs about TLS (the client certificate's subject, a ClientHello on a plaintext
listener).

Why the handshake is started by the connection (`loop.start_tls`) rather than by the listener
(`create_server(ssl=...)`): a handshake that fails inside the listener is only logged by
asyncio, at debug level, and the connection never reaches the proxy; started here, a
failure is an exception the connection turns into one log line, one `kcp_tls_errors_total`
count and a close of that connection alone (invariant 5). It also lets the connection be
admitted (connection limits) before the handshake costs any CPU.
"""

from __future__ import annotations

import asyncio
import ssl

from cryptography import x509

#: The first bytes of a TLS handshake record (ContentType 22, major version 3): what a TLS
#: client sends first. No Kafka frame starts so: that size would be over 369 MB.
_CLIENT_HELLO = b"\x16\x03"
#: When the connection has no handshake timeout of its own (`handshake_timeout_s` None).
DEFAULT_HANDSHAKE_TIMEOUT_S = 60.0


async def handshake(loop: asyncio.AbstractEventLoop, raw: asyncio.Transport,
                    protocol: asyncio.Protocol, context: ssl.SSLContext,
                    timeout_s: float | None) -> asyncio.Transport:
    """The TLS transport over `raw`, delivering to `protocol`; raises what the handshake
    raised (`proxy.tls.errors.classify` names it). `raw` must not have been read from."""
    transport = await loop.start_tls(raw, protocol, context, server_side=True,
                                     ssl_handshake_timeout=timeout_s
                                     or DEFAULT_HANDSHAKE_TIMEOUT_S)
    if transport is None:  # the loop's contract allows it: the connection closed meanwhile
        raise ConnectionResetError("the connection closed during the TLS handshake")
    return transport


def peer_subject(transport: asyncio.BaseTransport) -> str | None:
    """The client certificate's subject, as Kafka's SSL principal names it by default (the
    RFC 2253 distinguished name, e.g. "CN=alice,O=acme"); None without a certificate."""
    ssl_object = transport.get_extra_info("ssl_object")
    if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
        return None
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return None
    try:
        return x509.load_der_x509_certificate(der).subject.rfc4514_string()
    except ValueError:
        return None


def looks_like_tls(data: bytes) -> bool:
    """The first bytes of a connection are a TLS handshake record."""
    return data[:2] == _CLIENT_HELLO
