"""`AdminClient`: typed calls of the admin API over httpx, with one error vocabulary.

Errors: `AdminError` is the base of every failed call (and `ChaosProxyError` the base of it
and of the Python API's own errors); `AdminRefused` a 4xx (with the fields to
fix in `problems` when the proxy names them), `RuleRejected` a refused fault rule (an
`AdminRefused`), `AdminUnreachable` no usable answer. The Python API (`proxy.api`) raises the
same classes, so a caller catches one family whichever layer it uses.

The token comes from the caller or, when not given, from `KCP_ADMIN_TOKEN`, so every caller
(CLI, scenario runner, matrix, tests) authenticates the same way without being told twice.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

import httpx

DEFAULT_ADMIN_URL = "http://127.0.0.1:9190"
TIMEOUT_S = 10.0
TOKEN_ENV = "KCP_ADMIN_TOKEN"
# The server sends a keep-alive comment every 15 s; no byte for this long means it is gone.
STREAM_READ_TIMEOUT_S = 60.0
# Answers to a stored rule that refuse the rule itself: unparseable, invalid, duplicate/full.
_RULE_REFUSALS = (400, 409, 422)


class ChaosProxyError(Exception):
    """Base of every failure the admin client and the Python API (`proxy.api`) raise."""


class AdminError(ChaosProxyError):
    """A call of the admin API failed; `str()` is one line for a person."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class AdminRefused(AdminError):
    """The proxy answered 4xx: the request was wrong. `message` names what to fix (for a
    rule, the field and the allowed values), `body` is the parsed answer."""

    def __init__(self, message: str, status: int | None, body: Any = None) -> None:
        super().__init__(message, status)
        self.body = body

    @property
    def problems(self) -> list[tuple[str, str]]:
        """(field, message) per problem: from the answer's `problems` (the admin API's 422s),
        else one pair without a field carrying the whole message."""
        found = self.body.get("problems") if isinstance(self.body, dict) else None
        if isinstance(found, list):
            pairs = [(str(p.get("field") or ""), str(p.get("message") or ""))
                     for p in found if isinstance(p, dict)]
            if pairs:
                return pairs
        return [("", self.message)]

    @property
    def field(self) -> str | None:
        """The field the first problem is about (e.g. "action.error"); None if unnamed."""
        return self.problems[0][0] or None


class RuleRejected(AdminRefused):
    """A fault rule the proxy refused (422: invalid, with `problems` naming each field; 409: a
    duplicate id or a full rule set), or that failed the same check locally before it was
    sent (`status` None)."""

    @classmethod
    def from_problems(cls, problems: list[tuple[str, str]]) -> RuleRejected:
        """A rule the local check refused, worded as the admin API would word it."""
        lines = "; ".join(f"{field or 'request body'}: {msg}" for field, msg in problems)
        body = {"message": lines,
                "problems": [{"field": field, "message": msg} for field, msg in problems]}
        return cls(f"invalid rule: {lines}", None, body)


class AdminUnreachable(AdminError):
    """No usable answer: connection refused, a timeout, or the proxy failed (5xx)."""


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
            parts = [_detail_line(item) for item in detail if isinstance(item, dict)]
            if parts:
                return "; ".join(parts)
    return json.dumps(body)


def _detail_line(item: Mapping[str, Any]) -> str:
    loc = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
    return f"{loc}: {item.get('msg', '')}" if loc else str(item.get("msg"))


def sse_messages(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """(event name, data) for each server-sent event; comments and ids are skipped."""
    event: str = "message"
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
    if data:
        yield event, "\n".join(data)


def _rule_path(rule_id: str) -> str:
    """A rule id as one path segment, whatever a caller typed."""
    return f"/faults/{quote(rule_id, safe='')}"


def _params(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


class AdminClient:
    """One proxy's admin API. Use as a context manager, or call `close()`.

    `transport` lets tests put an `httpx.MockTransport` (or an ASGI transport) underneath.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_ADMIN_URL,
        token: str | None = None,
        timeout_s: float = TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token if token is not None else (os.environ.get(TOKEN_ENV) or None)
        self.timeout_s = timeout_s
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout_s, transport=transport
        )

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------------ transport

    def request(
        self, method: str, path: str, *, body: Any = None, params: Mapping[str, Any] | None = None
    ) -> httpx.Response:
        """One call; any failure raises `AdminRefused` or `AdminUnreachable`."""
        # The admin API takes POSTs only as JSON, bodiless ones too (`proxy.admin.guard`).
        headers = {"Content-Type": "application/json"} if method == "POST" else None
        try:
            response = self._http.request(method, path, json=body, params=params,
                                          headers=headers)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        self._check(response)
        return response

    def _unreachable(self, exc: httpx.HTTPError) -> AdminUnreachable:
        if isinstance(exc, httpx.ConnectError):
            return AdminUnreachable(
                f"cannot reach the proxy's admin API at {self.base_url} (connection refused); "
                "start the proxy (`kafka-chaos-proxy run ...`) or point --admin-url / "
                "KCP_ADMIN_URL at it"
            )
        if isinstance(exc, httpx.TimeoutException):
            return AdminUnreachable(
                f"the admin API at {self.base_url} did not answer within {self.timeout_s:g}s"
            )
        return AdminUnreachable(f"request to the admin API at {self.base_url} failed: {exc}")

    @staticmethod
    def _check(response: httpx.Response) -> None:
        status = response.status_code
        if status < 400:
            return
        message = api_error_message(response)
        if status >= 500:
            raise AdminUnreachable(f"the proxy failed ({status}): {message}", status)
        try:
            body = response.json()
        except ValueError:
            body = None
        raise AdminRefused(f"{status} {response.reason_phrase}: {message}", status, body)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        return response.json() if response.content else None

    # ------------------------------------------------------------------ system

    def healthy(self) -> bool:
        """True when the proxy answers `/healthz`; never raises."""
        try:
            return self._http.get("/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    def connections(self) -> list[dict[str, Any]]:
        return list(self._json("GET", "/connections"))

    def brokers(self) -> list[dict[str, Any]]:
        return list(self._json("GET", "/brokers"))

    def metrics(self) -> str:
        return self.request("GET", "/metrics").text

    # ------------------------------------------------------------------ fault rules

    def rules(self) -> list[dict[str, Any]]:
        return list(self._json("GET", "/faults"))

    def rule(self, rule_id: str) -> dict[str, Any]:
        return dict(self._json("GET", _rule_path(rule_id)))

    def _rule_call(self, method: str, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """A call that stores a rule: a refusal of the rule itself is a `RuleRejected`."""
        try:
            return dict(self._json(method, path, body=dict(body)))
        except AdminRefused as exc:
            if exc.status in _RULE_REFUSALS:
                raise RuleRejected(exc.message, exc.status, exc.body) from None
            raise

    def add_rule(self, rule: Mapping[str, Any]) -> dict[str, Any]:
        """Store a rule; the proxy's answer (with its id and stats) is returned."""
        return self._rule_call("POST", "/faults", rule)

    def replace_rule(self, rule_id: str, rule: Mapping[str, Any]) -> dict[str, Any]:
        return self._rule_call("PUT", _rule_path(rule_id), rule)

    def patch_rule(self, rule_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        return self._rule_call("PATCH", _rule_path(rule_id), changes)

    def remove_rule(self, rule_id: str, missing_ok: bool = False) -> None:
        try:
            self.request("DELETE", _rule_path(rule_id))
        except AdminRefused as exc:
            if not (missing_ok and exc.status == 404):
                raise

    def clear_rules(self) -> int:
        """Remove every rule; returns how many there were."""
        body = self._json("DELETE", "/faults")
        return int(body.get("removed", 0)) if isinstance(body, dict) else 0

    def set_enabled(self, rule_id: str, enabled: bool) -> dict[str, Any]:
        verb = "enable" if enabled else "disable"
        return dict(self._json("POST", f"{_rule_path(rule_id)}/{verb}"))

    def export_rules(self, fmt: str = "yaml") -> str:
        return self.request("GET", "/faults/export", params={"format": fmt}).text

    # ------------------------------------------------------------------ groups and events

    def holds(self) -> list[dict[str, Any]]:
        """Requests and responses parked by `hold` rules right now."""
        return list(self._json("GET", "/holds"))

    def release_hold(self, hold_id: int) -> dict[str, Any]:
        """Continue one parked exchange as if its hold's `until` had happened."""
        return dict(self._json("POST", f"/holds/{int(hold_id)}/release"))

    def release_rule_holds(self, rule_id: str) -> dict[str, Any]:
        """Release every hold of one rule: {"released": n, "holds": [...]}."""
        return dict(self._json("POST", f"{_rule_path(rule_id)}/release"))

    def groups(self) -> list[dict[str, Any]]:
        return list(self._json("GET", "/groups"))

    def group(self, group_id: str) -> dict[str, Any]:
        # Group ids are the clients' choice: '/', '?', '#' or a control character in one
        # must name that group, not another path.
        return dict(self._json("GET", f"/groups/{quote(group_id, safe='')}"))

    def events(
        self,
        since: int | None = None,
        limit: int = 1000,
        group: str | None = None,
        member: str | None = None,
        api: str | None = None,
    ) -> list[dict[str, Any]]:
        """Buffered events; with `since`, the first `limit` after that seq (for pollers)."""
        params = _params(since=since, limit=limit, group=group, member=member, api=api)
        return list(self._json("GET", "/events", params=params))

    def last_seq(self) -> int:
        """The seq of the newest buffered event (0: none yet): where a reader that wants only
        what happens from now on starts its `events(since=...)`."""
        return max((int(e.get("seq", 0)) for e in self.events(limit=1)), default=0)

    def stream_events(self, **filters: Any) -> Iterator[tuple[str, str]]:
        """Server-sent events of `/events/stream` as (event name, data) pairs, until the
        stream ends (`limit`) or the proxy goes away (`AdminUnreachable`)."""
        timeout = httpx.Timeout(self.timeout_s, read=STREAM_READ_TIMEOUT_S)
        try:
            with self._http.stream(
                "GET", "/events/stream", params=_params(**filters), timeout=timeout
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    self._check(response)
                yield from sse_messages(response.iter_lines())
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
