"""Optional bearer-token check for every admin route but /healthz and the UI's shell.

A plain ASGI middleware rather than a FastAPI dependency so that the generated documents
(/openapi.json, /docs) are behind the same check as the routes they describe, and so that the
check happens before any body is read.

The `/ui` page and its static files (script, style, the vendored Swagger UI) are open: a
browser loads them by navigation and `<script src>`, which cannot carry a header, and they
hold no data. Everything the page shows it fetches with the token (kept in the tab's
sessionStorage and sent as `Authorization: Bearer`), so nothing behind the check opens up.
"""

from __future__ import annotations

import json
import secrets

from starlette.types import ASGIApp, Receive, Scope, Send

OPEN_PATHS = frozenset({"/healthz"})
# The UI's shell and assets: code, no data (see above).
PUBLIC_PATHS = frozenset({"/ui", "/ui/"})
PUBLIC_PREFIXES = ("/ui/static/",)


def is_open(path: str) -> bool:
    if path in OPEN_PATHS or path in PUBLIC_PATHS:
        return True
    # No dot segments: routing does not resolve them, but nothing open needs one either.
    return path.startswith(PUBLIC_PREFIXES) and "/." not in path and "\\" not in path


def presented_token(header: bytes) -> bytes:
    """The token of an `Authorization` header; the scheme is case-insensitive (RFC 7235)."""
    scheme, _, token = header.strip().partition(b" ")
    return token.strip() if scheme.lower() == b"bearer" else b""


class BearerAuthMiddleware:
    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._expected = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_open(str(scope.get("path", ""))):
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                given = value
                break
        if given and secrets.compare_digest(presented_token(given), self._expected):
            await self.app(scope, receive, send)
            return
        reason = "missing" if not given else "wrong"
        body = json.dumps(
            {"detail": f"{reason} bearer token: send 'Authorization: Bearer <admin token>'"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b'Bearer realm="kafka-chaos-proxy"'),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
