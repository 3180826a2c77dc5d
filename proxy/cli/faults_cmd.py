"""`kafka-chaos-proxy faults ...`: manage the fault rules of a running proxy.

The CLI is a thin client of the admin HTTP API, never a second way into the engine, so what it
does is exactly what curl or a test harness can do. Rule validation happens in the proxy; the
CLI only turns flags into the rule JSON (`proxy.cli.faults_flags`), and turns the API's answers
into one readable line.

Exit codes: 0 ok; 2 the request was refused (bad flags, 4xx from the API: the line says what to
fix); 1 the proxy could not be reached or failed (connection refused, timeout, 5xx).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from kafka_chaos_proxy.faults.actions import ACTIONS
from kafka_chaos_proxy.faults.loader import RulesFileError, load_rules_file, rule_to_document
from kafka_chaos_proxy.proxy.cli.admin_client import (
    DEFAULT_ADMIN_URL,
    AdminUrl,
    Token,
    admin_client,
    fail,
)
from kafka_chaos_proxy.proxy.cli.faults_flags import (
    ActionFlags,
    FlagError,
    action_from_flags,
    add_help,
    rule_from_flags,
    with_flags,
)
from kafka_chaos_proxy.proxy.terminal import safe, safe_lines

faults_app = typer.Typer(
    name="faults",
    help="Add, list, toggle, remove and export fault rules of a running proxy (admin API).",
    no_args_is_help=True,
)

# --------------------------------------------------------------------------- HTTP


def _call(
    admin_url: str,
    token: str | None,
    method: str,
    path: str,
    *,
    body: Any = None,
    params: dict[str, str] | None = None,
) -> httpx.Response:
    """One request through the shared admin client; any failure ends the command with a
    one-line explanation (exit 2 refused, 1 unreachable)."""
    with admin_client(admin_url, token) as client:
        return client.request(method, path, body=body, params=params)


# --------------------------------------------------------------------------- rendering


def _fmt_ms(value: Any) -> str:
    return f"{value}ms"


def summarize_match(match: dict[str, Any]) -> str:
    parts = []
    for key, value in match.items():
        if value is None or (key == "any" and value is False):  # false is the default
            continue
        if key == "any":
            parts.append("any")
            continue
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        parts.append(f"{value}" if key == "apis" else f"{key}={value}")
    return " ".join(parts) or "*"


def summarize_action(action: dict[str, Any]) -> str:
    kind = str(action.get("type"))
    if kind in ("error", "error_after_forward"):
        consistent = ", broker-consistent" if action.get("broker_consistent") else ""
        return f"{kind} {action.get('error')}{consistent}"
    if kind in ("drop_request", "drop_response"):
        after = action.get("close_after_ms")
        return kind if after is None else f"{kind}, close after {_fmt_ms(after)}"
    if kind == "delay":
        text = f"delay {action.get('side', 'request')} {_fmt_ms(action.get('fixed_ms', 0))}"
        if action.get("jitter_ms"):
            text += f" ±{_fmt_ms(action['jitter_ms'])} {action.get('distribution', 'uniform')}"
        return text
    if kind == "close":
        return f"close {action.get('when', 'before')} {action.get('mode', 'graceful')}"
    if kind == "throttle":
        return f"throttle {action.get('bytes_per_s')} B/s"
    # An action without a summary of its own (one added later) shows its set fields.
    fields = [
        f"{key}={value}" for key, value in action.items() if key != "type" and value is not None
    ]
    return " ".join([kind, *fields])


def summarize_dosage(dosage: dict[str, Any]) -> str:
    parts = []
    if dosage.get("probability", 1.0) != 1.0:
        parts.append(f"p={dosage['probability']:g}")
    if dosage.get("skip_first"):
        parts.append(f"skip={dosage['skip_first']}")
    if dosage.get("max_injections") is not None:
        parts.append(f"max={dosage['max_injections']}")
    if dosage.get("start_after_ms"):
        parts.append(f"after={_fmt_ms(dosage['start_after_ms'])}")
    if dosage.get("active_for_ms") is not None:
        parts.append(f"for={_fmt_ms(dosage['active_for_ms'])}")
    return " ".join(parts) or "always"


def summarize(rule: dict[str, Any]) -> str:
    """`r1 [on] SyncGroup group_id=g1 -> error NOT_COORDINATOR (max=1)`"""
    state = "on" if rule.get("enabled", True) else "off"
    text = (
        f"{rule.get('id')} [{state}] {summarize_match(rule.get('match') or {})} -> "
        f"{summarize_action(rule.get('action') or {})}"
    )
    dosage = summarize_dosage(rule.get("dosage") or {})
    return text if dosage == "always" else f"{text} ({dosage})"


def render_table(rules: Sequence[dict[str, Any]]) -> str:
    header = ("ID", "ON", "MATCH", "ACTION", "DOSAGE", "MATCHED", "INJECTED")
    rows = [header]
    for rule in rules:
        stats = rule.get("stats") or {}
        rows.append(
            (
                str(rule.get("id")),
                "yes" if rule.get("enabled", True) else "no",
                summarize_match(rule.get("match") or {}),
                summarize_action(rule.get("action") or {}),
                summarize_dosage(rule.get("dosage") or {}),
                str(stats.get("matched", 0)),
                str(stats.get("injected", 0)),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(line.rstrip() for line in lines)


# --------------------------------------------------------------------------- add


def _rules_from_json(text: str) -> list[Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"--json is not valid JSON (line {exc.lineno} column {exc.colno}): {exc.msg}")
    if isinstance(data, dict) and set(data) == {"rules"}:
        data = data["rules"]
    return data if isinstance(data, list) else [data]


def _rules_from_file(path: Path) -> list[Any]:
    # Validated locally first, so a typo is reported with file, rule index and field at once.
    try:
        return [rule_to_document(rule) for rule in load_rules_file(path)]
    except RulesFileError as exc:
        lines = str(exc).splitlines()
        for line in lines[:-1]:
            typer.echo(f"error: {line}", err=True)
        fail(lines[-1])


def _post_rules(admin_url: str, token: str | None, rules: list[Any]) -> None:
    for index, rule in enumerate(rules):
        try:
            response = _call(admin_url, token, "POST", "/faults", body=rule)
        except typer.Exit:
            if index:
                typer.echo(f"({index} of {len(rules)} rules were added before this one)", err=True)
            raise
        added = response.json()
        typer.echo(safe(f"added {summarize(added)}"))
        for warning in added.get("warnings") or ():
            typer.echo(safe(f"warning: {warning}"), err=True)


def _match(help_text: str, *names: str) -> Any:
    return typer.Option(*names, help=help_text, rich_help_panel="Match")


def _action(help_text: str, *names: str) -> Any:
    return typer.Option(*names, help=help_text, rich_help_panel="Action (choose one)")


def _dosage(help_text: str, *names: str) -> Any:
    return typer.Option(*names, help=help_text, rich_help_panel="Dosage")


@faults_app.command("add", help=add_help())
def add(
    admin_url: AdminUrl = DEFAULT_ADMIN_URL,
    token: Token = None,
    api: Annotated[list[str] | None, _match("API name or key (repeatable).", "--api")] = None,
    version: Annotated[list[int] | None, _match("API version (repeatable).", "--version")] = None,
    client_id: Annotated[str | None, _match("Client id glob, e.g. 'py-*'.")] = None,
    client_id_regex: Annotated[str | None, _match("Client id regular expression.")] = None,
    principal: Annotated[str | None, _match(
        "Principal glob: the SASL user (or TLS client certificate subject), e.g. 'alice'.")
    ] = None,
    group: Annotated[str | None, _match("group_id.")] = None,
    member: Annotated[str | None, _match("member_id.")] = None,
    instance: Annotated[str | None, _match("group_instance_id.")] = None,
    generation: Annotated[int | None, _match("generation_id.")] = None,
    member_epoch: Annotated[int | None, _match("KIP-848 member epoch.")] = None,
    broker: Annotated[int | None, _match("Upstream broker node id (-1 = bootstrap).")] = None,
    connection: Annotated[int | None, _match("Proxy connection id.")] = None,
    any_request: Annotated[bool, _match(
        "Match every request (never ApiVersions, Metadata, SASL or FindCoordinator unless "
        "named with --api); a rule that names nothing else needs it.", "--any")] = False,
    action: Annotated[
        str | None, _action(f"Action type: {', '.join(ACTIONS)}; fill it in with --set.")
    ] = None,
    set_: Annotated[
        list[str] | None,
        _action("KEY=VALUE field of the action (repeatable); VALUE is JSON or text.", "--set"),
    ] = None,
    error: Annotated[str | None, _action("Answer with this error (name or code).")] = None,
    error_after_forward: Annotated[
        str | None, _action("Forward, then answer with this error.")
    ] = None,
    drop_request: Annotated[bool, _action("Swallow the request.", "--drop-request")] = False,
    drop_response: Annotated[bool, _action("Swallow the response.", "--drop-response")] = False,
    close_after_ms: Annotated[
        int | None, _action("With a drop: close the connection this long after.")
    ] = None,
    delay_ms: Annotated[int | None, _action("Delay by this many ms.")] = None,
    jitter_ms: Annotated[int | None, _action("Delay jitter in ms.")] = None,
    distribution: Annotated[
        str | None, _action("Jitter shape: uniform, normal or exponential.")
    ] = None,
    side: Annotated[str | None, _action("Delay the request or the response.")] = None,
    close: Annotated[
        str | None, _action("Close the client connection 'before' or 'after' forwarding.")
    ] = None,
    reset: Annotated[bool, _action("With --close: RST instead of FIN.", "--reset")] = False,
    throttle: Annotated[int | None, _action("Limit the connection to this many bytes/s.")] = None,
    probability: Annotated[float | None, _dosage("Chance per match, 0..1.")] = None,
    skip: Annotated[int | None, _dosage("Let the first N matches through.")] = None,
    max_: Annotated[int | None, _dosage("At most N injections.", "--max")] = None,
    start_after_ms: Annotated[int | None, _dosage("Start this long after adding.")] = None,
    active_for_ms: Annotated[int | None, _dosage("Stay active this long once started.")] = None,
    rule_id: Annotated[
        str | None, typer.Option("--id", help="Rule id (default: r1, r2, ...).")
    ] = None,
    description: Annotated[str | None, typer.Option(help="Free text.")] = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Add the rule disabled.")] = False,
    json_rule: Annotated[
        str | None, typer.Option("--json", help="The whole rule (or a list of rules) as JSON.")
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="Add every rule of a YAML/JSON rules file.")
    ] = None,
) -> None:
    flags = ActionFlags(
        action=action,
        sets=tuple(set_ or ()),
        error=error,
        error_after_forward=error_after_forward,
        drop_request=drop_request,
        drop_response=drop_response,
        close_after_ms=close_after_ms,
        delay_ms=delay_ms,
        jitter_ms=jitter_ms,
        distribution=distribution,
        side=side,
        close=close,
        reset=reset,
        throttle=throttle,
    )
    match = {
        "apis": api,
        "versions": version,
        "client_id": client_id,
        "client_id_regex": client_id_regex,
        "principal": principal,
        "group_id": group,
        "member_id": member,
        "group_instance_id": instance,
        "generation_id": generation,
        "member_epoch": member_epoch,
        "broker": broker,
        "connection": connection,
        "any": any_request or None,
    }
    dosage = {
        "probability": probability,
        "skip_first": skip,
        "max_injections": max_,
        "start_after_ms": start_after_ms,
        "active_for_ms": active_for_ms,
    }
    if json_rule is not None and file is not None:
        fail("give either --json or --file, not both")
    try:
        on_top = rule_from_flags(match, dosage, rule_id, description, disabled)
        if json_rule is not None:
            rules = with_flags(_rules_from_json(json_rule), "--json", flags, on_top)
        elif file is not None:
            rules = with_flags(_rules_from_file(file), "--file", flags, on_top)
        else:
            rules = [{"action": action_from_flags(flags), **on_top}]
    except FlagError as exc:
        fail(str(exc))
    _post_rules(admin_url, token, rules)


# --------------------------------------------------------------------------- the rest


@faults_app.command("list")
def list_rules(
    admin_url: AdminUrl = DEFAULT_ADMIN_URL,
    token: Token = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON.")] = False,
) -> None:
    """Show every rule with its match/injection counts."""
    rules = _call(admin_url, token, "GET", "/faults").json()
    if as_json:
        typer.echo(json.dumps(rules, indent=2))
    elif not rules:
        typer.echo("no fault rules")
    else:
        typer.echo(safe_lines(render_table(rules)))


@faults_app.command("show")
def show(rule_id: str, admin_url: AdminUrl = DEFAULT_ADMIN_URL, token: Token = None) -> None:
    """Print one rule as JSON (with stats)."""
    typer.echo(json.dumps(_call(admin_url, token, "GET", f"/faults/{rule_id}").json(), indent=2))


@faults_app.command("rm")
def remove(
    rule_ids: Annotated[list[str], typer.Argument(help="Rule id(s).")],
    admin_url: AdminUrl = DEFAULT_ADMIN_URL,
    token: Token = None,
) -> None:
    """Remove rules by id."""
    for rule_id in rule_ids:
        _call(admin_url, token, "DELETE", f"/faults/{rule_id}")
        typer.echo(f"removed {rule_id}")


@faults_app.command("clear")
def clear(admin_url: AdminUrl = DEFAULT_ADMIN_URL, token: Token = None) -> None:
    """Remove every rule."""
    body = _call(admin_url, token, "DELETE", "/faults").json()
    count = body.get("removed", "?") if isinstance(body, dict) else "?"
    typer.echo(f"removed {count} rule{'' if count == 1 else 's'}")


def _toggle(enabled: bool) -> Callable[..., None]:
    verb = "enable" if enabled else "disable"

    def command(
        rule_id: Annotated[str, typer.Argument(help="Rule id.")],
        admin_url: AdminUrl = DEFAULT_ADMIN_URL,
        token: Token = None,
    ) -> None:
        rule = _call(admin_url, token, "POST", f"/faults/{rule_id}/{verb}").json()
        typer.echo(safe(f"{verb}d {summarize(rule)}"))

    command.__doc__ = f"{verb.capitalize()} a rule (it keeps its place and stats)."
    return command


faults_app.command("enable")(_toggle(True))
faults_app.command("disable")(_toggle(False))


@faults_app.command("export")
def export(
    admin_url: AdminUrl = DEFAULT_ADMIN_URL,
    token: Token = None,
    fmt: Annotated[str, typer.Option("--format", help="yaml or json.")] = "yaml",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")
    ] = None,
) -> None:
    """Print the rules as a rules file that `run --faults FILE` or `faults add --file` loads."""
    if fmt not in ("yaml", "json"):
        fail(f"--format must be yaml or json, got {fmt!r}")
    text = _call(admin_url, token, "GET", "/faults/export", params={"format": fmt}).text
    if output is None:
        typer.echo(text, nl=not text.endswith("\n"))
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}")
    typer.echo(f"wrote {output}", err=True)


def register(app: typer.Typer) -> None:
    app.add_typer(faults_app, name="faults")
