"""What the Python API raises, in one family: `ChaosProxyError` is the base of all of them.

From the admin client (`proxy.client`), raised as they are, so the CLI, the lab and a user's
tests read the same errors: `AdminRefused` (4xx), its subclass `RuleRejected` (a fault rule
refused, by the proxy or by the same check made locally first: `.field`, `.problems`), and
`AdminUnreachable` (no proxy answers, a timeout, a 5xx). The API's own: `ProxyStartError` (a
proxy it was asked to start did not), `EventTimeout` (an awaited event did not happen; the
message says what did) and `ScenarioProblem` (a scenario that cannot be played).
"""

from __future__ import annotations

from kafka_chaos_proxy.proxy.client import (
    AdminError,
    AdminRefused,
    AdminUnreachable,
    ChaosProxyError,
    RuleRejected,
)

__all__ = [
    "AdminError",
    "AdminRefused",
    "AdminUnreachable",
    "ChaosProxyError",
    "EventTimeout",
    "ProxyStartError",
    "RuleRejected",
    "ScenarioProblem",
]


class ProxyStartError(ChaosProxyError, RuntimeError):
    """A proxy the API (or the lab) was asked to start did not start; the message says why
    (the start-up error, or the last lines of its log) and where its log is."""


class EventTimeout(ChaosProxyError, TimeoutError):
    """No event matched within the timeout. The message names what was awaited and lists the
    last events of that group (or of the proxy) that did happen; `seen` holds them."""

    def __init__(self, message: str, seen: list[dict[str, object]]) -> None:
        super().__init__(message)
        self.seen = seen


class ScenarioProblem(ChaosProxyError, ValueError):
    """A scenario that cannot be played: an unknown catalog name, an invalid file, a step that
    needs what is missing (the lab's client libraries), or no scenario player installed."""
