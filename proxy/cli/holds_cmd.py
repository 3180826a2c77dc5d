"""`kafka-chaos-proxy holds`: see and release what `hold` rules have parked.

A hold ends by itself (its `until`, its timeout); these commands are for the moment a person
driving a race by hand wants to let the parked request go now.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from kafka_chaos_proxy.proxy.cli.admin_client import (
    DEFAULT_ADMIN_URL,
    AdminUrl,
    Token,
    admin_client,
    fail,
)
from kafka_chaos_proxy.proxy.cli.observe_cmd import AsJson, dash, table

holds_app = typer.Typer(name="holds", help="Parked requests and responses (hold rules).",
                        no_args_is_help=True)


def _rows(holds: list[dict[str, Any]]) -> str:
    header = ["HOLD", "RULE", "CONN", "API", "SIDE", "HELD_MS", "TIMEOUT_MS", "ON_TIMEOUT",
              "UNTIL"]
    rows = [[str(h["id"]), dash(h.get("rule")), str(h["connection"]), dash(h.get("api")),
             h["side"], f"{h['held_ms']:.0f}", str(h["timeout_ms"]), h["on_timeout"],
             json.dumps(h["until"], separators=(",", ":")) if h.get("until") else "-"]
            for h in holds]
    return table(rows, header) if rows else "no holds"


@holds_app.command("list")
def list_holds(as_json: AsJson = False, admin_url: AdminUrl = DEFAULT_ADMIN_URL,
               token: Token = None) -> None:
    """List the requests and responses held right now."""
    with admin_client(admin_url, token) as client:
        holds = client.holds()
    typer.echo(json.dumps(holds, indent=2) if as_json else _rows(holds))


@holds_app.command("release")
def release(
    hold_id: Annotated[int | None, typer.Argument(help="The hold to release.")] = None,
    rule: Annotated[str | None, typer.Option("--rule", help="Release every hold of this "
                                             "rule instead.")] = None,
    admin_url: AdminUrl = DEFAULT_ADMIN_URL,
    token: Token = None,
) -> None:
    """Continue held exchanges now, as if each hold's `until` had happened."""
    if (hold_id is None) == (rule is None):
        fail("give a hold id or --rule RULE_ID (one of them)")
    with admin_client(admin_url, token) as client:
        if rule is not None:
            out = client.release_rule_holds(rule)
            typer.echo(f"released {out['released']} hold(s) of rule {rule}")
        else:
            assert hold_id is not None
            held = client.release_hold(hold_id)
            typer.echo(f"released hold {held['id']} (rule {dash(held.get('rule'))}, "
                       f"{dash(held.get('api'))} on connection {held['connection']})")


def register(app: typer.Typer) -> None:
    app.add_typer(holds_app)
