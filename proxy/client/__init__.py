"""The one client of the proxy's admin HTTP API, used by the CLI, the lab and the tests.

Everything that talks to a running proxy goes through `AdminClient`, so the token, timeouts
and the translation of error responses into one readable message exist once. Failures are
typed: `AdminRefused` (4xx: the request was wrong, the message says what to fix; a refused
fault rule is its subclass `RuleRejected`, naming the fields) and `AdminUnreachable` (no
answer, a timeout, or a 5xx), all `AdminError`.

Imports: httpx and the standard library only; nothing else of ours (it is the client side).
"""

from kafka_chaos_proxy.proxy.client.admin import (
    DEFAULT_ADMIN_URL,
    TIMEOUT_S,
    TOKEN_ENV,
    AdminClient,
    AdminError,
    AdminRefused,
    AdminUnreachable,
    ChaosProxyError,
    RuleRejected,
    api_error_message,
    sse_messages,
)

__all__ = [
    "DEFAULT_ADMIN_URL",
    "TIMEOUT_S",
    "TOKEN_ENV",
    "AdminClient",
    "AdminError",
    "AdminRefused",
    "AdminUnreachable",
    "ChaosProxyError",
    "RuleRejected",
    "api_error_message",
    "sse_messages",
]
