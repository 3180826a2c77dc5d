"""The shared admin client: token, typed failures, the calls' paths and bodies."""

from __future__ import annotations

import json

import httpx
import pytest

from kafka_chaos_proxy.proxy.client import AdminClient, AdminRefused, AdminUnreachable, sse_messages


def _client(handler: object, **kwargs: object) -> AdminClient:
    return AdminClient("http://admin", transport=httpx.MockTransport(handler), **kwargs)  # type: ignore[arg-type]


def test_token_from_env_is_sent_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, json=[])

    monkeypatch.setenv("KCP_ADMIN_TOKEN", "s3cret")
    with _client(handler) as client:
        client.rules()
        client.groups()
        client.events(since=3)
    assert seen == ["Bearer s3cret"] * 3
    with _client(handler, token="other") as client:
        client.connections()
    assert seen[-1] == "Bearer other"


def test_refusal_names_the_field() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert json.loads(request.content) == {"action": {"type": "eror"}}
        return httpx.Response(422, json={"message": "action.type: unknown action type 'eror'"})

    with _client(handler) as client, pytest.raises(AdminRefused) as info:
        client.add_rule({"action": {"type": "eror"}})
    assert info.value.status == 422
    assert "action.type: unknown action type 'eror'" in str(info.value)
    assert info.value.body == {"message": "action.type: unknown action type 'eror'"}


def test_server_failure_and_no_server_are_unreachable() -> None:
    with (_client(lambda r: httpx.Response(500, text="boom")) as client,
          pytest.raises(AdminUnreachable, match="the proxy failed \\(500\\): boom")):
        client.rules()

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with _client(refuse) as client:
        with pytest.raises(AdminUnreachable, match="cannot reach the proxy's admin API"):
            client.groups()
        assert client.healthy() is False


def test_remove_missing_ok_and_clear_count() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE" and request.url.path == "/faults/gone":
            return httpx.Response(404, json={"message": "no fault rule with id 'gone'"})
        return httpx.Response(200, json={"removed": 4})

    with _client(handler) as client:
        client.remove_rule("gone", missing_ok=True)
        with pytest.raises(AdminRefused, match="no fault rule with id 'gone'"):
            client.remove_rule("gone")
        assert client.clear_rules() == 4


def test_sse_messages_skip_comments_and_join_data() -> None:
    lines = [": keep-alive", "id: 1", "event: coordination", "data: {\"a\":", "data: 1}", "",
             "data: tail"]
    assert list(sse_messages(iter(lines))) == [("coordination", '{"a":\n1}'),
                                               ("message", "tail")]


def test_holds_are_listed_and_released_by_id_or_rule() -> None:
    seen: list[tuple[str, str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path, request.headers.get("content-type")))
        if request.url.path == "/holds":
            return httpx.Response(200, json=[{"id": 3}])
        if request.url.path.endswith("/holds/3/release"):
            return httpx.Response(200, json={"id": 3})
        return httpx.Response(200, json={"released": 2, "holds": []})

    with _client(handler) as client:
        assert client.holds() == [{"id": 3}]
        assert client.release_hold(3) == {"id": 3}
        assert client.release_rule_holds("r1")["released"] == 2
    assert seen == [("GET", "/holds", None),
                    ("POST", "/holds/3/release", "application/json"),
                    ("POST", "/faults/r1/release", "application/json")]
