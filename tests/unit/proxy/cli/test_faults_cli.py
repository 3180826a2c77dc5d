"""`kafka-chaos-proxy faults`: the requests it builds and how it prints answers.

The admin API itself is tested against the real server elsewhere; here httpx's MockTransport
records each request and returns a canned answer, so the tests pin the CLI's side of the
contract (paths, bodies, headers, exit codes, one-line errors).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from kafka_chaos_proxy.faults.actions import ACTIONS
from kafka_chaos_proxy.proxy.cli import admin_client, app, faults_cmd
from kafka_chaos_proxy.proxy.cli.faults_flags import _set_text

ANY = {"any": True}  # a rule that names nothing else to match says so

Handler = Callable[[httpx.Request], httpx.Response]


def rule_json(rule_id: str = "r1", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": rule_id,
        "description": "",
        "enabled": True,
        "match": {"apis": ["SyncGroup"], "versions": None, "group_id": "orders"},
        "action": {"type": "error", "error": "NOT_COORDINATOR"},
        "dosage": {"probability": 1.0, "skip_first": 0, "max_injections": 1,
                   "start_after_ms": 0, "active_for_ms": None},
        "stats": {"matched": 4, "injected": 1},
    }  # fmt: skip
    body.update(overrides)
    return body


class Recorder:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.answer: Handler = lambda request: httpx.Response(201, json=rule_json())

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)

    def bodies(self) -> list[Any]:
        return [json.loads(r.content) for r in self.requests]


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    recorder = Recorder()
    monkeypatch.setattr(admin_client, "transport", httpx.MockTransport(recorder))
    monkeypatch.delenv("KCP_ADMIN_URL", raising=False)
    monkeypatch.delenv("KCP_ADMIN_TOKEN", raising=False)
    yield recorder


def run(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, ["faults", *args], env=env)


# ------------------------------------------------------------------ add


def test_add_from_flags(api: Recorder) -> None:
    result = run("add", "--api", "SyncGroup", "--group", "orders", "--error", "NOT_COORDINATOR",
                 "--max", "1")  # fmt: skip
    assert result.exit_code == 0, result.output
    (request,) = api.requests
    assert request.method == "POST"
    assert str(request.url) == "http://127.0.0.1:9190/faults"
    assert "authorization" not in request.headers
    assert api.bodies() == [
        {
            "action": {"type": "error", "error": "NOT_COORDINATOR"},
            "match": {"apis": ["SyncGroup"], "group_id": "orders"},
            "dosage": {"max_injections": 1},
        }
    ]
    assert result.stdout == (
        "added r1 [on] SyncGroup group_id=orders -> error NOT_COORDINATOR (max=1)\n"
    )


def test_add_every_flag(api: Recorder) -> None:
    result = run(
        "add", "--api", "JoinGroup", "--api", "14", "--version", "5", "--client-id", "py-*",
        "--client-id-regex", "^py", "--member", "m1", "--instance", "i1", "--broker", "-1",
        "--connection", "3", "--delay-ms", "100", "--jitter-ms", "50", "--distribution",
        "normal", "--side", "response", "--probability", "0.5", "--skip", "2",
        "--start-after-ms", "10", "--active-for-ms", "20", "--id", "slow", "--description",
        "why", "--disabled",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert api.bodies() == [
        {
            "id": "slow",
            "description": "why",
            "enabled": False,
            "match": {"apis": ["JoinGroup", "14"], "versions": [5], "client_id": "py-*",
                      "client_id_regex": "^py", "member_id": "m1", "group_instance_id": "i1",
                      "broker": -1, "connection": 3},
            "action": {"type": "delay", "fixed_ms": 100, "jitter_ms": 50,
                       "distribution": "normal", "side": "response"},
            "dosage": {"probability": 0.5, "skip_first": 2, "start_after_ms": 10,
                       "active_for_ms": 20},
        }
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("flags", "action"),
    [(["--error-after-forward", "27"], {"type": "error_after_forward", "error": "27"}),
     (["--drop-request"], {"type": "drop_request"}),
     (["--drop-response", "--close-after-ms", "5000"],
      {"type": "drop_response", "close_after_ms": 5000}),
     (["--close", "after", "--reset"], {"type": "close", "when": "after", "mode": "reset"}),
     (["--throttle", "1000"], {"type": "throttle", "bytes_per_s": 1000}),
     (["--jitter-ms", "5"], {"type": "delay", "fixed_ms": 0, "jitter_ms": 5}),
     (["--generation", "3", "--drop-request"], {"type": "drop_request"})],
)  # fmt: skip
def test_add_action_flags(api: Recorder, flags: list[str], action: dict[str, Any]) -> None:
    result = run("add", *flags)
    assert result.exit_code == 0, result.output
    assert api.bodies()[0]["action"] == action


@pytest.mark.parametrize(
    ("flags", "message"),
    [([], "choose an action: --error NAME"),
     (["--error", "X", "--drop-request"], "choose one action, got --error and --drop-request"),
     (["--drop-request", "--reset"], "--reset applies to close actions"),
     (["--error", "X", "--side", "response"], "--side applies to delay actions"),
     (["--close", "after", "--close-after-ms", "1"], "--close-after-ms applies to drop_request"),
     (["--json", "{", "--error", "X"], "--json is not valid JSON (line 1 column 2)"),
     (["--json", "{}", "--file", "x.yaml"], "either --json or --file")],
)  # fmt: skip
def test_add_flag_mistakes_exit_2_without_a_request(
    api: Recorder, flags: list[str], message: str
) -> None:
    result = run("add", *flags)
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert api.requests == []


@pytest.mark.parametrize("kind", list(ACTIONS))
def test_add_any_action_with_action_and_set(api: Recorder, kind: str) -> None:
    example = dict(ACTIONS[kind].example)
    sets = [arg for key, value in example.items() if key != "type"
            for arg in ("--set", f"{key}={_set_text(value)}")]  # fmt: skip
    result = run("add", "--api", "Heartbeat", "--action", kind, *sets)
    assert result.exit_code == 0, result.output
    assert api.bodies() == [{"action": example, "match": {"apis": ["Heartbeat"]}}]


@pytest.mark.parametrize(
    ("flags", "action"),
    [(["--action", "error", "--set", "error=16"], {"type": "error", "error": 16}),
     (["--action", "error", "--set", 'error="16"'], {"type": "error", "error": "16"}),
     (["--action", "error", "--set", "error=NaN"], {"type": "error", "error": "NaN"}),
     (["--action", "drop_request", "--set", "close_after_ms=null"],
      {"type": "drop_request", "close_after_ms": None}),
     (["--action", "delay", "--set", "fixed_ms=5", "--side", "response"],
      {"type": "delay", "fixed_ms": 5, "side": "response"}),
     (["--delay-ms", "100", "--set", "distribution=normal", "--set", "jitter_ms=5"],
      {"type": "delay", "fixed_ms": 100, "distribution": "normal", "jitter_ms": 5}),
     (["--close", "after", "--set", "mode=reset"], {"type": "close", "when": "after",
                                                    "mode": "reset"}),
     (["--action", "throttle", "--set", " bytes_per_s = 7"],
      {"type": "throttle", "bytes_per_s": 7})],
)  # fmt: skip
def test_set_values_are_json_or_text(
    api: Recorder, flags: list[str], action: dict[str, Any]
) -> None:
    result = run("add", *flags)
    assert result.exit_code == 0, result.output
    assert api.bodies()[0]["action"] == action


@pytest.mark.parametrize(
    ("flags", "message"),
    [(["--action", "dealy"], "unknown action type 'dealy'; did you mean 'delay'? allowed: "
      "error, error_after_forward, drop_request, drop_response, delay, close, throttle"),
     (["--action", "delay", "--set", "fixed=1"], "unknown field 'fixed' in action of type "
      "'delay'; did you mean 'fixed_ms'? allowed: distribution, fixed_ms, jitter_ms, side"),
     (["--action", "close", "--set", "type=x"], "unknown field 'type' in action of type 'close'"),
     (["--action", "delay", "--set", "fixed_ms"], "--set wants KEY=VALUE, got 'fixed_ms'"),
     (["--action", "delay", "--set", "=1"], "--set wants KEY=VALUE, got '=1'"),
     (["--set", "fixed_ms=1"], "choose an action: --error NAME"),
     (["--action", "error", "--error", "X"], "choose one action, got --action and --error"),
     (["--action", "error", "--set", "error=1", "--set", "error=2"],
      "error is given twice, by --set error=1 and by --set error=2"),
     (["--error", "X", "--set", "error=Y"], "error is given twice, by --error and by --set"),
     (["--action", "drop_request", "--close-after-ms", "1", "--set", "close_after_ms=2"],
      "close_after_ms is given twice, by --close-after-ms and by --set close_after_ms=2"),
     (["--action", "error", "--reset"], "--reset applies to close actions, not to --action "
      "error")],
)  # fmt: skip
def test_action_and_set_mistakes_exit_2_without_a_request(
    api: Recorder, flags: list[str], message: str
) -> None:
    result = run("add", *flags)
    assert result.exit_code == 2
    assert message in result.stderr, result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert api.requests == []


def test_the_proxy_names_the_field_of_a_bad_set_value(api: Recorder) -> None:
    message = "action.fixed_ms: fixed_ms must be >= 0 milliseconds, got -1"
    api.answer = lambda request: httpx.Response(422, json={"detail": [], "message": message})
    result = run("add", "--action", "delay", "--set", "fixed_ms=-1")
    assert api.bodies() == [{"action": {"type": "delay", "fixed_ms": -1}}]
    assert result.exit_code == 2
    assert result.stderr == f"error: 422 Unprocessable Entity: {message}\n"


def test_add_help_lists_every_action_with_an_example() -> None:
    result = CliRunner().invoke(app, ["faults", "add", "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0
    text = " ".join(result.stdout.replace("│", " ").split())
    for kind, spec in ACTIONS.items():
        sets = "".join(f" --set {k}={_set_text(v)}" for k, v in spec.example.items()
                       if k != "type")  # fmt: skip
        assert f"e.g. --action {kind}{sets}" in text, kind
    assert "--action TYPE --set KEY=VALUE" in text


def test_flags_apply_on_top_of_json(api: Recorder) -> None:
    rule = {"id": "mine", "enabled": True, "match": {"apis": ["Heartbeat"], "group_id": "g"},
            "action": {"type": "drop_request"}, "dosage": {"probability": 0.5}}  # fmt: skip
    result = run("add", "--json", json.dumps(rule), "--disabled", "--id", "theirs", "--api",
                 "SyncGroup", "--max", "2", "--description", "why")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert api.bodies() == [
        {"id": "theirs", "description": "why", "enabled": False,
         "match": {"apis": ["SyncGroup"], "group_id": "g"}, "action": {"type": "drop_request"},
         "dosage": {"probability": 0.5, "max_injections": 2}}
    ]  # fmt: skip


def test_disabled_and_api_apply_to_every_rule_of_a_json_list(api: Recorder) -> None:
    rules = [{"match": ANY, "action": {"type": "close"}}, {"match": {"versions": [3]},
                                             "action": {"type": "drop_response"}}]  # fmt: skip
    result = run("add", "--json", json.dumps(rules), "--disabled", "--api", "JoinGroup")
    assert result.exit_code == 0, result.output
    assert api.bodies() == [
        {"action": {"type": "close"}, "enabled": False, "match": {"apis": ["JoinGroup"]}},
        {"match": {"versions": [3], "apis": ["JoinGroup"]}, "action": {"type": "drop_response"},
         "enabled": False},
    ]  # fmt: skip


def test_flags_apply_on_top_of_a_file(api: Recorder, tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("- {id: one, match: {any: true}, action: {type: close}}\n")
    result = run("add", "--file", str(path), "--disabled", "--id", "two")
    assert result.exit_code == 0, result.output
    assert api.bodies() == [
        {"match": ANY, "id": "two", "action": {"type": "close"}, "enabled": False}]


@pytest.mark.parametrize(
    ("flags", "message"),
    [(["--json", json.dumps([{"match": ANY, "action": {"type": "close"}}] * 2), "--id", "x"],
      "--id names one rule, but --json gives 2; put the ids in the rules"),
     (["--json", json.dumps({"match": ANY, "action": {"type": "close"}}), "--error", "X",
       "--side", "request"],
      "--error and --side cannot be combined with --json: the rules given there carry their "
      "own action"),
     (["--json", "{}", "--action", "close", "--set", "mode=reset"],
      "--action and --set cannot be combined with --json")],
)  # fmt: skip
def test_json_refuses_what_it_cannot_apply(
    api: Recorder, flags: list[str], message: str
) -> None:
    result = run("add", *flags)
    assert result.exit_code == 2
    assert message in result.stderr, result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert api.requests == []


def test_an_action_without_a_summary_of_its_own_shows_its_fields() -> None:
    action = {"type": "zap", "volts": 3, "unset": None}
    assert faults_cmd.summarize_action(action) == "zap volts=3"


def test_add_json_single_and_list(api: Recorder) -> None:
    rule = {"match": {"apis": ["Heartbeat"]}, "action": {"type": "drop_request"}}
    assert run("add", "--json", json.dumps(rule)).exit_code == 0
    assert run("add", "--json", json.dumps({"rules": [rule, rule]})).exit_code == 0
    assert api.bodies() == [rule, rule, rule]


def test_add_file_posts_normalised_rules(api: Recorder, tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "rules:\n"
        "  - {match: {apis: [sync_group]}, action: {type: error, error: 16}}\n"
        "  - {id: two, match: {any: true}, action: {type: close}}\n"
    )
    result = run("add", "--file", str(path))
    assert result.exit_code == 0, result.output
    assert api.bodies() == [
        {"match": {"apis": ["SyncGroup"]}, "action": {"type": "error", "error": "NOT_COORDINATOR"}},
        {"match": ANY, "id": "two", "action": {"type": "close"}},
    ]
    assert result.stdout.count("added ") == 2


def test_add_file_errors_are_reported_before_any_request(api: Recorder, tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "- {match: {apis: [SyncGrup]}, action: {type: close}}\n"
        "- {match: {any: true}, action: {type: nope}}\n"
    )
    result = run("add", "--file", str(path))
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"error: {path}: rule 0: match.apis: apis[0]: unknown API")
    assert lines[1].startswith(f"error: {path}: rule 1: action: unknown action type 'nope'")
    assert api.requests == []


def test_a_failure_midway_says_how_many_were_added(api: Recorder) -> None:
    conflict = {"detail": "a rule with id 'a' exists already"}
    answers = iter([httpx.Response(201, json=rule_json("a")), httpx.Response(409, json=conflict)])
    api.answer = lambda request: next(answers)
    rules = [{"match": ANY, "id": "a", "action": {"type": "close"}}] * 2
    result = run("add", "--json", json.dumps(rules))
    assert result.exit_code == 2
    assert "error: 409 Conflict: a rule with id 'a' exists already" in result.stderr
    assert "(1 of 2 rules were added before this one)" in result.stderr


# ------------------------------------------------------------------ errors and connection


def test_validation_error_prints_the_api_message(api: Recorder) -> None:
    message = "match.apis: apis[0]: unknown API 'SyncGrup'; did you mean 'SyncGroup'?"
    api.answer = lambda request: httpx.Response(422, json={"detail": [], "message": message})
    result = run("add", "--api", "SyncGrup", "--drop-request")
    assert result.exit_code == 2
    assert result.stderr == f"error: 422 Unprocessable Entity: {message}\n"


def test_fastapi_style_detail_list_is_flattened(api: Recorder) -> None:
    detail = [{"loc": ["body", "dosage", "probability"], "msg": "too big"}]
    api.answer = lambda request: httpx.Response(422, json={"detail": detail})
    result = run("add", "--drop-request", "--probability", "2")
    assert result.stderr == "error: 422 Unprocessable Entity: dosage.probability: too big\n"


def test_not_found(api: Recorder) -> None:
    api.answer = lambda request: httpx.Response(404, json={"detail": "no fault rule with id 'x'"})
    result = run("rm", "x")
    assert result.exit_code == 2
    assert result.stderr == "error: 404 Not Found: no fault rule with id 'x'\n"


def test_token_and_url_from_environment(api: Recorder) -> None:
    api.answer = lambda request: httpx.Response(200, json=[])
    env = {"KCP_ADMIN_URL": "http://proxy:1234/", "KCP_ADMIN_TOKEN": "s3cret"}
    result = run("list", env=env)
    assert result.exit_code == 0, result.output
    (request,) = api.requests
    assert str(request.url) == "http://proxy:1234/faults"
    assert request.headers["authorization"] == "Bearer s3cret"


def test_token_and_url_flags(api: Recorder) -> None:
    api.answer = lambda request: httpx.Response(401, json={"detail": "wrong bearer token"})
    result = run("list", "--admin-url", "http://h:1", "--token", "t")
    assert api.requests[0].headers["authorization"] == "Bearer t"
    assert result.exit_code == 2 and "401 Unauthorized: wrong bearer token" in result.stderr


def test_connection_refused_says_to_start_the_proxy(api: Recorder) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    api.answer = refuse
    result = run("list")
    assert result.exit_code == 1
    assert "cannot reach the proxy's admin API at http://127.0.0.1:9190" in result.stderr
    assert "start the proxy" in result.stderr and result.stderr.count("\n") == 1


def test_server_error_exits_1(api: Recorder) -> None:
    api.answer = lambda request: httpx.Response(500, text="boom")
    result = run("clear")
    assert result.exit_code == 1 and "the proxy failed (500): boom" in result.stderr


# ------------------------------------------------------------------ the other commands


def test_list_table(api: Recorder) -> None:
    rules = [
        rule_json("r1"),
        rule_json(
            "slow",
            enabled=False,
            match={"apis": None, "client_id": "py-*"},
            action={"type": "delay", "side": "response", "fixed_ms": 100, "jitter_ms": 50,
                    "distribution": "exponential"},
            dosage={"probability": 0.25, "skip_first": 0, "max_injections": None},
            stats={"matched": 0, "injected": 0},
        ),
    ]  # fmt: skip
    api.answer = lambda request: httpx.Response(200, json=rules)
    result = run("list")
    assert result.exit_code == 0, result.output
    assert api.requests[0].method == "GET" and api.requests[0].url.path == "/faults"
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ID", "ON", "MATCH", "ACTION", "DOSAGE", "MATCHED", "INJECTED"]
    assert lines[1].split() == ["r1", "yes", "SyncGroup", "group_id=orders", "error",
                                "NOT_COORDINATOR", "max=1", "4", "1"]  # fmt: skip
    assert "client_id=py-*" in lines[2] and "delay response 100ms ±50ms exponential" in lines[2]
    assert "p=0.25" in lines[2] and lines[2].split()[1] == "no"
    # Columns line up.
    assert lines[0].index("ACTION") == lines[1].index("error") == lines[2].index("delay")


def test_list_empty_and_json(api: Recorder) -> None:
    api.answer = lambda request: httpx.Response(200, json=[])
    assert run("list").stdout == "no fault rules\n"
    api.answer = lambda request: httpx.Response(200, json=[rule_json()])
    assert json.loads(run("list", "--json").stdout) == [rule_json()]


def test_show(api: Recorder) -> None:
    api.answer = lambda request: httpx.Response(200, json=rule_json("a"))
    result = run("show", "a")
    assert api.requests[0].url.path == "/faults/a"
    assert json.loads(result.stdout)["id"] == "a"


def test_rm_several(api: Recorder) -> None:
    api.answer = lambda request: httpx.Response(204)
    result = run("rm", "r1", "r2")
    assert result.exit_code == 0
    assert [(r.method, r.url.path) for r in api.requests] == [
        ("DELETE", "/faults/r1"),
        ("DELETE", "/faults/r2"),
    ]
    assert result.stdout == "removed r1\nremoved r2\n"


def test_clear(api: Recorder) -> None:
    api.answer = lambda request: httpx.Response(200, json={"removed": 3})
    result = run("clear")
    assert (api.requests[0].method, api.requests[0].url.path) == ("DELETE", "/faults")
    assert result.stdout == "removed 3 rules\n"


@pytest.mark.parametrize("verb", ["enable", "disable"])
def test_enable_disable(api: Recorder, verb: str) -> None:
    api.answer = lambda request: httpx.Response(200, json=rule_json(enabled=verb == "enable"))
    result = run(verb, "r1")
    assert result.exit_code == 0, result.output
    assert (api.requests[0].method, api.requests[0].url.path) == ("POST", f"/faults/r1/{verb}")
    state = "on" if verb == "enable" else "off"
    assert result.stdout.startswith(f"{verb}d r1 [{state}] SyncGroup")


def test_export_to_stdout_and_file(api: Recorder, tmp_path: Path) -> None:
    text = "rules:\n- action:\n    type: close\n"
    api.answer = lambda request: httpx.Response(200, text=text)
    result = run("export")
    assert result.stdout == text
    assert api.requests[0].url.params["format"] == "yaml"
    out = tmp_path / "rules.json"
    result = run("export", "--format", "json", "-o", str(out))
    assert result.exit_code == 0
    assert api.requests[1].url.params["format"] == "json"
    assert out.read_text() == text


def test_export_rejects_unknown_format(api: Recorder) -> None:
    result = run("export", "--format", "toml")
    assert result.exit_code == 2 and "--format must be yaml or json" in result.stderr
    assert api.requests == []


def test_match_summary_shows_any_only_when_it_is_said() -> None:
    assert faults_cmd.summarize_match({"apis": ["SyncGroup"], "any": False}) == "SyncGroup"
    assert faults_cmd.summarize_match({"apis": None, "any": True}) == "any"


def test_a_broker_consistent_error_says_so_in_its_summary() -> None:
    action = {"type": "error", "error": "UNKNOWN_MEMBER_ID", "broker_consistent": True}
    assert faults_cmd.summarize_action(action) == "error UNKNOWN_MEMBER_ID, broker-consistent"
    plain = {**action, "broker_consistent": False}
    assert faults_cmd.summarize_action(plain) == "error UNKNOWN_MEMBER_ID"
