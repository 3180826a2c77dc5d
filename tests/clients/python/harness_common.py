"""What every Python client harness shares: the command-line contract and the event stream.

Every harness, in every language, takes the same flags and prints the same JSON lines, so the
matrix runner can classify a run without knowing which library produced it. The output is the
evidence a matrix cell links to; that is why each line is flushed as soon as it is written (a
harness that is later killed must not lose what it already saw) and why the library's own
warnings are forwarded as `log` events instead of being swallowed.
"""

from __future__ import annotations

import argparse
import faulthandler
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


ASSIGNORS = ("range", "roundrobin", "sticky", "cooperative-sticky")


def _bool(value: str) -> bool:
    if value not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"must be true or false, got {value!r}")
    return value == "true"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The harness contract's flags. `--return-errors` is sarama's and ignored here; an
    option a library cannot honour is refused by the harness (see `unsupported`)."""
    p = argparse.ArgumentParser(description="Kafka consumer harness (matrix contract)")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--client-id", required=True)
    p.add_argument("--session-timeout-ms", type=int, default=6000)
    p.add_argument("--heartbeat-interval-ms", type=int, default=1000)
    p.add_argument("--rebalance-timeout-ms", type=int, default=10000)
    p.add_argument("--commit", choices=("auto", "manual", "both"), default="auto")
    p.add_argument("--instance-id", default=None)
    p.add_argument("--protocol", choices=("classic", "consumer"), default="classic")
    p.add_argument("--max-runtime-s", type=float, default=60.0)
    p.add_argument("--return-errors", choices=("true", "false"), default="false")
    p.add_argument("--from-beginning", action="store_true", default=True)
    p.add_argument("--request-timeout-ms", type=int, default=None)
    p.add_argument("--assignor", choices=ASSIGNORS, default=None)
    p.add_argument("--commit-in-revoke", type=_bool, default=False)
    p.add_argument("--processing-delay-ms", type=int, default=0)
    p.add_argument("--async-processing", type=_bool, default=False)
    p.add_argument("--consume-mode", choices=("loop", "once"), default="loop")
    args = p.parse_args(argv)
    if args.processing_delay_ms < 0 or (args.request_timeout_ms or 0) < 0:
        p.error("--processing-delay-ms and --request-timeout-ms must be >= 0")
    return args


def auto_commit(args: argparse.Namespace) -> bool:
    """The library's auto-commit is on (--commit auto or both)."""
    return bool(args.commit in ("auto", "both"))


def keyword_config(args: argparse.Namespace) -> dict[str, Any]:
    """The settings kafka-python and aiokafka name alike (aiokafka took kafka-python's
    keyword API): group, member, timeouts, commits, where to start. Each harness adds what
    only its library has (the rebalance timeout's name, callbacks, assignors)."""
    config: dict[str, Any] = dict(
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        client_id=args.client_id,
        group_instance_id=args.instance_id,
        session_timeout_ms=args.session_timeout_ms,
        heartbeat_interval_ms=args.heartbeat_interval_ms,
        enable_auto_commit=auto_commit(args),
        auto_commit_interval_ms=AUTO_COMMIT_INTERVAL_MS,
        auto_offset_reset="earliest" if args.from_beginning else "latest",
    )
    if args.request_timeout_ms is not None:
        config["request_timeout_ms"] = args.request_timeout_ms
    return config


def explicit_commit(args: argparse.Namespace) -> bool:
    """The harness commits after each batch itself (--commit manual or both)."""
    return bool(args.commit in ("manual", "both"))


def unsupported(args: argparse.Namespace, library: str,
                assignors: tuple[str, ...] = ASSIGNORS) -> str | None:
    """Why `library`'s harness cannot honour these options, or None. None of the Python
    libraries has a Consume call that runs a whole session or a goroutine-style processing
    model the harness could use, so `--consume-mode once` and `--async-processing` are
    refused everywhere (sarama only)."""
    if args.async_processing:
        return "--async-processing is supported by the sarama harness only"
    if args.consume_mode == "once":
        return (f"{library} has no Consume call that runs a group session; "
                "--consume-mode once is unsupported")
    if args.assignor is not None and args.protocol == "consumer":
        return ("--assignor is a classic-protocol setting; under KIP-848 "
                "(group.protocol=consumer) the broker assigns")
    if args.assignor is not None and args.assignor not in assignors:
        return f"{library} has no {args.assignor} assignor (it has {', '.join(assignors)})"
    return None


def config_event(emitter: Emitter, args: argparse.Namespace, *, assignors: list[str],
                 request_timeout_ms: int | None, library_config: Mapping[str, Any],
                 **extra: Any) -> None:
    """The `config` event (second line, after `started`): the options this member runs with,
    the library's effective assignors and request timeout, and the settings it was given."""
    emitter.emit(
        "config", protocol=args.protocol, commit=args.commit,
        commit_in_revoke=args.commit_in_revoke, session_timeout_ms=args.session_timeout_ms,
        heartbeat_interval_ms=args.heartbeat_interval_ms,
        rebalance_timeout_ms=args.rebalance_timeout_ms, request_timeout_ms=request_timeout_ms,
        assignors=assignors, processing_delay_ms=args.processing_delay_ms,
        async_processing=args.async_processing, consume_mode=args.consume_mode,
        instance_id=args.instance_id, from_beginning=args.from_beginning,
        library_config={k: _plain(v) for k, v in library_config.items() if not callable(v)
                        or isinstance(v, type)},
        **extra)


def _plain(value: Any) -> Any:
    """A library setting as JSON: classes by their name, sequences as lists."""
    if isinstance(value, type):
        return getattr(value, "name", value.__name__)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


class Processed:
    """What the application has finished with: the next offset per partition, which
    `--commit-in-revoke` commits in the revoke callback. Assigned and lost partitions start
    afresh (what they had is not this member's to commit any more)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.offsets: dict[tuple[str, int], int] = {}

    def done(self, topic: str, partition: int, offset: int) -> None:
        with self._lock:
            key = (topic, partition)
            self.offsets[key] = max(self.offsets.get(key, 0), offset + 1)

    def take(self, tps: Iterable[Any]) -> dict[tuple[str, int], int]:
        """Remove and return the offsets of these partitions (TopicPartition-like)."""
        with self._lock:
            out: dict[tuple[str, int], int] = {}
            for tp in tps:
                key = (str(tp.topic), int(tp.partition))
                if key in self.offsets:
                    out[key] = self.offsets.pop(key)
            return out


def refuse(emitter: Emitter, reason: str) -> None:
    """An option this library cannot honour: said, never silently downgraded."""
    emitter.emit("error", error=reason, source="config")
    emitter.exit("returned_error", reason)


class Emitter:
    """Writes contract events as JSON lines on stdout, one per call, flushed, thread-safe.

    Thread-safe because librdkafka and kafka-python call back from their own threads and a
    torn line would make the whole run's evidence unreadable.
    """

    def __init__(self, client: str) -> None:
        self.client = client
        self._lock = threading.Lock()
        self.exited = False
        self.exit_how: str | None = None

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
        self.exit_how = how
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
    if emitter.exit_how == "returned_error":
        sys.exit(1)  # the contract's status, as the Go and Java harnesses end


def _report_crash(emitter: Emitter, exc: BaseException) -> NoReturn:
    emitter.emit("error", error=error_text(exc), source="harness",
                 traceback=traceback.format_exc()[-4000:])
    emitter.exit("crashed", error_text(exc))
    sys.exit(1)


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT: the poll loop checks it and closes the consumer
    gracefully, so a killed harness still reports `exited how=killed`.

    SIGUSR1 writes every thread's stack to stderr and changes nothing else: when a library
    hangs inside a call the poll loop cannot leave, that dump is the only account of where."""
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop
