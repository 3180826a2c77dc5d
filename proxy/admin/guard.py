"""The admin API's front door: which Host and Origin may talk to it, what a state-changing
request must look like, and how large a body may be.

Why each check exists:
* Host: a browser page on another site can point a DNS name it controls at 127.0.0.1 (DNS
  rebinding) and then talk to the admin API as same-origin; checking `Host` against the names
  the API is really reached by ends that. Localhost names only unless configured.
* Origin: a cross-origin page may still send "simple" requests (a POST with a text/plain
  body needs no preflight); a foreign `Origin` is refused outright.
* JSON on POST (`require_json_post`, a route dependency so that a wrong method is still a
  405): a simple cross-origin request cannot carry `Content-Type: application/json`, so
  requiring it on POST (the only state-changing method a browser sends without a preflight)
  shuts the CSRF door even without a token.
* Body size: rules are small; a 100 MB body would be parsed on the event loop the data plane
  shares, so bodies over the limit are refused before they are read.

A plain ASGI middleware, like the token check, so that it runs before anything reads a body.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import urlsplit

from fastapi import HTTPException, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
ANY_HOST = "*"
JSON_REQUIRED = ("POST needs 'Content-Type: application/json' (with curl: "
                 "-H 'Content-Type: application/json'), even without a body")


def allowed_hosts(configured: Iterable[str], bind_host: str | None = None) -> frozenset[str]:
    """Localhost names, the bind address when it is a specific one, and what the user added;
    `*` among them allows any host."""
    hosts = set(LOCAL_HOSTS)
    if bind_host and bind_host not in ("0.0.0.0", "::", ""):
        hosts.add(bind_host.strip("[]").lower())
    hosts.update(h.strip().strip("[]").lower() for h in configured if h.strip())
    return frozenset(hosts)


def _hostname(value: str) -> str:
    """`host:port`, `[v6]:port` or `host` -> lower-case host."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].partition("]")[0]
    if value.count(":") == 1:
        return value.partition(":")[0]
    return value


class AdminGuardMiddleware:
    def __init__(self, app: ASGIApp, hosts: frozenset[str],
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.hosts = hosts
        self.any_host = ANY_HOST in hosts
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {name: value for name, value in scope.get("headers", [])}
        problem = self._refusal(scope, headers)
        if problem is not None:
            await _reply(send, *problem)
            return
        if scope.get("method") in ("POST", "PUT", "PATCH"):
            body = await _read_body(receive, self.max_body_bytes)
            if body is None:
                await _reply(send, 413, f"request body over {self.max_body_bytes} bytes; "
                                        "a fault rule is a few hundred bytes")
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope, headers: dict[bytes, bytes]) -> tuple[int, str] | None:
        if not self.any_host:
            host = _hostname(headers.get(b"host", b"").decode("latin-1"))
            if host not in self.hosts:
                return 403, (f"Host {host!r} is not allowed; the admin API answers to "
                             f"{', '.join(sorted(self.hosts))} (add names with "
                             "--admin-allowed-host)")
            origin = headers.get(b"origin")
            if origin is not None:
                origin_host = (urlsplit(origin.decode("latin-1")).hostname or "").lower()
                if origin_host not in self.hosts:
                    return 403, (f"Origin {origin.decode('latin-1')!r} is not allowed: "
                                 "cross-site requests are refused")
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            return 413, f"request body over {self.max_body_bytes} bytes"
        return None


def require_json_post(request: Request) -> None:
    """Route dependency: a POST must say it carries JSON (see the module docstring)."""
    if request.method == "POST":
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            raise HTTPException(status_code=415, detail=JSON_REQUIRED)


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None once it grows past `limit` (what was read is dropped)."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(parts)


def _replay(body: bytes, then: Receive) -> Receive:
    """The body already read, then the connection's own messages (a disconnect)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return await then()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _reply(send: Send, status: int, message: str) -> None:
    body = json.dumps({"message": message, "detail": message}).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())],
    })
    await send({"type": "http.response.body", "body": body})
