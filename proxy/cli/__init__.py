"""The `kafka-chaos-proxy` command line.

One typer app; each subcommand lives in its own module here and registers itself through a
`register(app)` function, so commands for different jobs (running the proxy, decoding frames,
driving the admin API, running scenarios) stay in separate small files.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="kafka-chaos-proxy",
    help="A Kafka protocol proxy that logs consumer-group coordination and injects faults.",
    no_args_is_help=True,
    add_completion=False,
)

# Each module below adds its commands to `app`. Keep one line per module.
from proxy.cli import decode as _decode  # noqa: E402
from proxy.cli import faults_cmd as _faults_cmd  # noqa: E402
from proxy.cli import matrix_cmd as _matrix_cmd  # noqa: E402
from proxy.cli import observe_cmd as _observe_cmd  # noqa: E402
from proxy.cli import run as _run  # noqa: E402

_decode.register(app)
_faults_cmd.register(app)
_matrix_cmd.register(app)
_observe_cmd.register(app)
_run.register(app)


def main() -> None:
    """Console-script entry point."""
    app()
