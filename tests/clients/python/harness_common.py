"""What every Python client harness shares: the command-line contract and the event stream.

Every harness, in every language, takes the same flags and prints the same JSON lines, so the
matrix runner can classify a run without knowing which library produced it. The output is the
evidence a matrix cell links to; that is why each line is flushed as soon as it is written (a
harness that is later killed must not lose what it already saw) and why the library's own
warnings are forwarded as `log` events instead of being swallowed.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NoReturn

#: Shared by every Python harness so the matrix compares libraries, not harness settings.
#: Same exception this many times in a row with no record in between: the library is not going
#: to recover by itself, so the harness stops reporting the same line forever.
MAX_SAME_ERROR_IN_A_ROW = 50
AUTO_COMMIT_INTERVAL_MS = 1000

EXIT_HOWS = ("returned_nil", "returned_error", "crashed", "killed", "max_runtime")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The harness contract's flags; flags a library cannot honour are accepted and ignored."""
    p = argparse.ArgumentParser(description="Kafka consumer harness (matrix contract)")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--client-id", required=True)
    p.add_argument("--session-timeout-ms", type=int, default=6000)
    p.add_argument("--heartbeat-interval-ms", type=int, default=1000)
    p.add_argument("--rebalance-timeout-ms", type=int, default=10000)
    p.add_argument("--commit", choices=("auto", "manual"), default="auto")
    p.add_argument("--instance-id", default=None)
    p.add_argument("--protocol", choices=("classic", "consumer"), default="classic")
    p.add_argument("--max-runtime-s", type=float, default=60.0)
    p.add_argument("--return-errors", choices=("true", "false"), default="true")
    p.add_argument("--from-beginning", action="store_true", default=True)
    return p.parse_args(argv)


class Emitter:
    """Writes contract events as JSON lines on stdout, one per call, flushed, thread-safe.

    Thread-safe because librdkafka and kafka-python call back from their own threads and a
    torn line would make the whole run's evidence unreadable.
    """

    def __init__(self, client: str) -> None:
        self.client = client
        self._lock = threading.Lock()
        self.exited = False

    def emit(self, event: str, **fields: Any) -> None:
        line = {"ts": time.time(), "client": self.client, "event": event, **fields}
        text = json.dumps(line, default=str, separators=(",", ":"))
        with self._lock:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()

    def exit(self, how: str, error: str | None = None) -> None:
        """The last line of every run; emitted at most once whatever path ends the harness."""
        if self.exited:
            return
        self.exited = True
        self.emit("exited", how=how, error=error)


def partitions_by_topic(tps: Iterable[Any]) -> dict[str, list[int]]:
    """{topic: [partition, ...]} from any library's TopicPartition objects (sorted, stable)."""
    out: dict[str, list[int]] = {}
    for tp in tps:
        out.setdefault(str(tp.topic), []).append(int(tp.partition))
    return {t: sorted(ps) for t, ps in sorted(out.items())}


def offsets_by_topic(offsets: Mapping[Any, int]) -> dict[str, dict[str, int]]:
    """{topic: {"partition": offset}} — the contract uses string partition keys (JSON)."""
    out: dict[str, dict[str, int]] = {}
    for tp, off in offsets.items():
        out.setdefault(str(tp.topic), {})[str(int(tp.partition))] = int(off)
    return out


def error_text(exc: BaseException | object) -> str:
    """The library's own name for an error first (what the classifier keys on), then detail."""
    if isinstance(exc, BaseException):
        return f"{type(exc).__name__}: {exc}".rstrip(": ")
    return str(exc)


class LogForwarder(logging.Handler):
    """Forwards a library's WARNING+ log records as `log` events.

    Some libraries report coordination failures (an auto-commit that failed, a heartbeat that
    was rejected) only through their logger. The application never sees those, so they are not
    `error` events, but the evidence must still show them.
    """

    def __init__(self, emitter: Emitter) -> None:
        super().__init__(level=logging.WARNING)
        self.emitter = emitter

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a library's bad format string must not kill the harness
            message = str(record.msg)
        self.emitter.emit(
            "log", level=record.levelname, logger=record.name, message=message[:2000]
        )


def forward_library_logs(emitter: Emitter, *logger_names: str) -> None:
    handler = LogForwarder(emitter)
    for name in logger_names:
        lg = logging.getLogger(name)
        lg.setLevel(logging.WARNING)
        lg.addHandler(handler)
        lg.propagate = False


def run_reporting_crash(emitter: Emitter, consume: Callable[[], None]) -> None:
    """Run the consume loop; anything it lets escape is reported as a crash, never swallowed,
    because a harness must not hide what the library (or the harness itself) did."""
    try:
        consume()
    except BaseException as exc:
        _report_crash(emitter, exc)


def _report_crash(emitter: Emitter, exc: BaseException) -> NoReturn:
    emitter.emit("error", error=error_text(exc), source="harness",
                 traceback=traceback.format_exc()[-4000:])
    emitter.exit("crashed", error_text(exc))
    sys.exit(1)


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT: the poll loop checks it and closes the consumer
    gracefully, so a killed harness still reports `exited how=killed`."""
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop
