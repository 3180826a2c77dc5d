"""The `kafka-chaos-proxy` command line.

One typer app; each subcommand lives in its own module here and registers itself through a
`register(app)` function, so commands for different jobs (running the proxy, decoding frames,
driving the admin API, observing groups) stay in separate small files.

Commands that are not part of the product (the lab's `scenario` and `matrix`) arrive through
the `kafka_chaos_proxy.cli` entry-point group: each entry point names a `register(app)`
callable. The product never imports them, so `proxy` does not depend on `lab`; a broken entry
point costs its commands and one warning line, never the rest of the CLI.
"""

from __future__ import annotations

import sys
from importlib.metadata import EntryPoint, entry_points

import typer

ENTRY_POINT_GROUP = "kafka_chaos_proxy.cli"

app = typer.Typer(
    name="kafka-chaos-proxy",
    help="A Kafka protocol proxy that logs consumer-group coordination and injects faults.",
    no_args_is_help=True,
    add_completion=False,
)


def _version(value: bool) -> None:
    """`--version`: the installed package's version, from its metadata (one source)."""
    if value:
        from kafka_chaos_proxy.proxy.cli.run import package_version

        typer.echo(f"kafka-chaos-proxy {package_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_version,
                                 help="Print the version and exit."),
) -> None:
    """A Kafka protocol proxy that logs consumer-group coordination and injects faults."""


def _entry_points() -> list[EntryPoint]:
    """The group's entry points, one per name, in name order (a stable `--help`)."""
    by_name: dict[str, EntryPoint] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        by_name.setdefault(ep.name, ep)
    return [by_name[name] for name in sorted(by_name)]


def register_entry_points(target: typer.Typer) -> list[str]:
    """Let every entry point of `kafka_chaos_proxy.cli` add its commands to `target`; returns
    the names that did. One that fails to load or register is reported on stderr in one line
    and skipped."""
    registered: list[str] = []
    for ep in _entry_points():
        try:
            ep.load()(target)
        except Exception as exc:
            detail = str(exc).splitlines()[0] if str(exc) else ""
            print(f"warning: kafka-chaos-proxy: command {ep.name!r} ({ep.value}) not loaded: "
                  f"{type(exc).__name__}: {detail}", file=sys.stderr)
            continue
        registered.append(ep.name)
    return registered


# Each module below adds its commands to `app`. Keep one line per module. The entry points
# come where the lab's commands always were, so `--help` lists commands in the same order.
from kafka_chaos_proxy.proxy.cli import decode as _decode  # noqa: E402
from kafka_chaos_proxy.proxy.cli import faults_cmd as _faults_cmd  # noqa: E402
from kafka_chaos_proxy.proxy.cli import holds_cmd as _holds_cmd  # noqa: E402
from kafka_chaos_proxy.proxy.cli import observe_cmd as _observe_cmd  # noqa: E402
from kafka_chaos_proxy.proxy.cli import run as _run  # noqa: E402
from kafka_chaos_proxy.proxy.cli import timeline_cmd as _timeline_cmd  # noqa: E402

_decode.register(app)
_faults_cmd.register(app)
_holds_cmd.register(app)
register_entry_points(app)
_observe_cmd.register(app)
_run.register(app)
_timeline_cmd.register(app)


def main() -> None:
    """Console-script entry point."""
    app()
