"""structlog set-up for the proxy process: JSON lines for machines, colours for a terminal.

One call at start-up; library code only does `structlog.get_logger(name)`, so tests that never
call this still get readable (default) output.
"""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(fmt: str | None = None, level: str = "info") -> None:
    """`fmt`: "json", "console", or None (console on a TTY, JSON otherwise).

    `level` (debug, info, warning, error; `run --log-level`) filters in the bound logger, so a
    debug line below the level costs one method call, not a rendered event: connection
    open/close lines are debug and a busy proxy makes many. An unknown name means info (the
    CLI has refused it already)."""
    if fmt is None:
        fmt = "console" if sys.stderr.isatty() else "json"
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer() if fmt == "console"
        else structlog.processors.JSONRenderer()
    )
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    if fmt == "json":
        processors.append(structlog.processors.format_exc_info)
    processors.append(renderer)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
