"""What every CLI command that talks to a running proxy's admin API shares: where the API is,
how to authenticate, how long to wait, which exit code means what, and how to turn an error
response into the one line a user reads.

Exit codes: 0 ok; 2 the request was refused (bad flags, 4xx: the line says what to fix);
1 the proxy could not be reached or failed (connection refused, timeout, 5xx).
"""

from __future__ import annotations

import json
from typing import Annotated

import httpx
import typer

DEFAULT_ADMIN_URL = "http://127.0.0.1:9190"
EXIT_REFUSED = 2
EXIT_UNREACHABLE = 1
TIMEOUT_S = 10.0

AdminUrl = Annotated[
    str,
    typer.Option(
        "--admin-url",
        envvar="KCP_ADMIN_URL",
        help="Base URL of the proxy's admin API.",
        show_default=True,
    ),
]
Token = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="KCP_ADMIN_TOKEN",
        help="Bearer token, if the proxy was started with one.",
        show_default=False,
    ),
]


def bearer_headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def api_error_message(response: httpx.Response) -> str:
    """The most helpful line in an error response: our `message`, else FastAPI's `detail`."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip() or response.reason_phrase
    if isinstance(body, dict):
        if isinstance(body.get("message"), str) and body["message"]:
            return str(body["message"])
        detail = body.get("detail")
        if isinstance(detail, str):
            return detail
        if isinstance(detail, list):
            parts = []
            for item in detail:
                if isinstance(item, dict):
                    loc = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
                    parts.append(f"{loc}: {item.get('msg', '')}" if loc else str(item.get("msg")))
            if parts:
                return "; ".join(parts)
    return json.dumps(body)
