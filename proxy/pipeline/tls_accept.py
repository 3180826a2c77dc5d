"""TLS on a client connection: the server-side handshake after accept, and the few facts the
connection needs about TLS (the client certificate's subject, a ClientHello on a plaintext
listener).

Why the TLS layer is put in by the connection rather than by the listener
(`create_server(ssl=...)`): a handshake that fails inside the listener is only logged by
asyncio, at debug level, and the connection never reaches the proxy; put in here, a failure
is an exception the connection turns into one log line, one `kcp_tls_errors_total` count and
a close of that connection alone (invariant 5). It also lets the connection be admitted
(connection limits) before the handshake costs any CPU.

Why not `loop.start_tls`: it runs as a task, one loop iteration after the accepting
protocol's `connection_made`, and uvloop starts reading a new connection right after
`connection_made` returns (a `pause_reading` there is undone), so a client's ClientHello
could reach the frame reader first. `start_server_tls` does what `start_tls` does, at once,
inside `connection_made`: the loop's own TLS protocol (uvloop's, else asyncio's: both take
the same arguments) becomes the transport's protocol before the first byte is read.
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import ssl
from typing import Any

import uvloop
import uvloop.loop
from cryptography import x509

# uvloop's TLS layer (Cython) on a uvloop loop, asyncio's own on any other; a uvloop without
# it (never seen) would get asyncio's, which works on any transport.
_UVLOOP_SSL_PROTOCOL: Any = getattr(uvloop.loop, "SSLProtocol", None)

#: The first bytes of a TLS handshake record (ContentType 22, major version 3): what a TLS
#: client sends first. No Kafka frame starts so: that size would be over 369 MB.
_CLIENT_HELLO = b"\x16\x03"
#: When the connection has no handshake timeout of its own (`handshake_timeout_s` None).
DEFAULT_HANDSHAKE_TIMEOUT_S = 60.0


def start_server_tls(loop: asyncio.AbstractEventLoop, raw: asyncio.Transport,
                     app_protocol: asyncio.Protocol, context: ssl.SSLContext,
                     timeout_s: float | None) -> asyncio.Future[None]:
    """Put a server-side TLS layer between `raw` and `app_protocol` now (call it from the
    accepting protocol's `connection_made`, before `raw` was read from). Once the handshake
    succeeds, `app_protocol.connection_made(tls_transport)` is called. The future is done
    when the handshake is: with its exception when it failed (`raw` is closed then), or
    with None (also when the peer went away quietly before the end: the caller tells the
    two apart by whether `connection_made` came)."""
    waiter: asyncio.Future[None] = loop.create_future()
    cls: Any = (_UVLOOP_SSL_PROTOCOL
                if _UVLOOP_SSL_PROTOCOL is not None and isinstance(loop, uvloop.Loop)
                else asyncio.sslproto.SSLProtocol)
    layer = cls(loop, app_protocol, context, waiter, server_side=True,
                call_connection_made=True,
                ssl_handshake_timeout=timeout_s or DEFAULT_HANDSHAKE_TIMEOUT_S)
    raw.set_protocol(layer)
    layer.connection_made(raw)
    return waiter


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
