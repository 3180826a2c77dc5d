"""What every CLI command that talks to a running proxy's admin API shares: where the API is,
how to authenticate, which exit code means what, and how a failed call becomes the one line a
user reads. The calls themselves are `proxy.client.AdminClient`'s, the same client the lab and
the tests use.

Exit codes: 0 ok; 2 the request was refused (bad flags, 4xx: the line says what to fix);
1 the proxy could not be reached or failed (connection refused, timeout, 5xx).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, NoReturn

import httpx
import typer

from kafka_chaos_proxy.proxy.client import DEFAULT_ADMIN_URL, AdminClient, AdminError, AdminRefused

__all__ = [
    "DEFAULT_ADMIN_URL",
    "EXIT_REFUSED",
    "EXIT_UNREACHABLE",
    "AdminUrl",
    "Token",
    "admin_client",
    "fail",
]

EXIT_REFUSED = 2
EXIT_UNREACHABLE = 1

# Tests swap in an httpx.MockTransport here; None = real network.
transport: httpx.BaseTransport | None = None

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
        "--admin-token",
        "--token",
        envvar="KCP_ADMIN_TOKEN",
        help="Bearer token, if the proxy was started with one.",
        show_default=False,
    ),
]


def fail(message: str, code: int = EXIT_REFUSED) -> NoReturn:
    """End the command with one line on stderr."""
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    raise typer.Exit(code)


@contextmanager
def admin_client(admin_url: str, token: str | None) -> Iterator[AdminClient]:
    """The shared client for one command; a failed call ends the command with its line and
    exit code (2 refused, 1 unreachable)."""
    try:
        with AdminClient(admin_url, token, transport=transport) as client:
            yield client
    except AdminRefused as exc:
        fail(exc.message, EXIT_REFUSED)
    except AdminError as exc:
        fail(exc.message, EXIT_UNREACHABLE)
