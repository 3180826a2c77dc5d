"""confluent-kafka (librdkafka) consumer harness for the client x fault matrix.

Contract: harness_common. librdkafka reports almost everything asynchronously, so the harness
wires every channel it offers: `on_assign`/`on_revoke`/`on_lost` for membership, `on_commit` for
auto-commit results, `error_cb` for client-level errors (a fatal one ends the run as
`returned_error`, because the handle is unusable after it), message errors from `consume`, and
the library log (WARNING+) as `log` events. Manual commits are synchronous and reported from
their own result; with `--commit-in-revoke`, `on_revoke` commits what was processed
(synchronously). `--protocol consumer` selects KIP-848 (`group.protocol=consumer`), under which
the session and heartbeat settings belong to the broker and must not be set by the client.
`--request-timeout-ms` is librdkafka's `socket.timeout.ms` (its timeout for broker requests;
its `request.timeout.ms` is a producer setting).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import confluent_kafka
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from harness_common import (
    AUTO_COMMIT_INTERVAL_MS,
    MAX_SAME_ERROR_IN_A_ROW,
    Emitter,
    LogForwarder,
    Processed,
    auto_commit,
    config_event,
    error_text,
    explicit_commit,
    parse_args,
    partitions_by_topic,
    refuse,
    run_reporting_crash,
    stop_on_signals,
    unsupported,
)

CLIENT = "confluent-kafka"
CONSUME_TIMEOUT_S = 0.2
#: librdkafka's names are Kafka's; it has no eager "sticky" assignor.
ASSIGNORS = ("range", "roundrobin", "cooperative-sticky")
#: librdkafka's defaults for what the `config` event reports when the harness sets nothing.
DEFAULT_SOCKET_TIMEOUT_MS = 60000
DEFAULT_ASSIGNMENT_STRATEGY = "range,roundrobin"


def kafka_error_text(err: Any) -> str:
    """librdkafka's error name (what the classifier keys on) plus its message."""
    if isinstance(err, KafkaError):
        return f"{err.name()}: {err.str()}"
    if isinstance(err, KafkaException) and err.args and isinstance(err.args[0], KafkaError):
        return kafka_error_text(err.args[0])
    return error_text(err)


def _tp_offsets(partitions: list[Any]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for tp in partitions or []:
        out.setdefault(tp.topic, {})[str(tp.partition)] = int(tp.offset)
    return out


def _partition_errors(partitions: list[Any]) -> str | None:
    errors = [f"{tp.topic}[{tp.partition}]: {kafka_error_text(tp.error)}"
              for tp in partitions or [] if tp.error is not None]
    return "; ".join(errors) or None


def build_config(args: Any, emitter: Emitter, fatal: threading.Event) -> dict[str, Any]:
    def error_cb(err: KafkaError) -> None:
        emitter.emit("error", error=kafka_error_text(err), source="error_cb",
                     fatal=err.fatal(), retriable=err.retriable())
        if err.fatal():
            fatal.set()

    def on_commit(err: KafkaError | None, partitions: list[Any]) -> None:
        if not auto_commit(args):
            return  # manual commits are synchronous and reported from their own result
        error = kafka_error_text(err) if err is not None else _partition_errors(partitions)
        emitter.emit("commit", ok=error is None, error=error, offsets=_tp_offsets(partitions))

    logger = logging.getLogger("librdkafka")
    logger.setLevel(logging.WARNING)
    logger.addHandler(LogForwarder(emitter))
    logger.propagate = False

    config: dict[str, Any] = {
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "client.id": args.client_id,
        "enable.auto.commit": auto_commit(args),
        "auto.commit.interval.ms": AUTO_COMMIT_INTERVAL_MS,
        "auto.offset.reset": "earliest" if args.from_beginning else "latest",
        "group.protocol": args.protocol,
        "error_cb": error_cb,
        "on_commit": on_commit,
        "logger": logger,
    }
    if args.protocol == "classic":
        config["session.timeout.ms"] = args.session_timeout_ms
        config["heartbeat.interval.ms"] = args.heartbeat_interval_ms
        # librdkafka sends max.poll.interval.ms as the JoinGroup rebalance timeout.
        config["max.poll.interval.ms"] = max(args.rebalance_timeout_ms, args.session_timeout_ms)
    if args.instance_id:
        config["group.instance.id"] = args.instance_id
    if args.request_timeout_ms is not None:
        config["socket.timeout.ms"] = args.request_timeout_ms
    if args.assignor is not None:
        config["partition.assignment.strategy"] = args.assignor
    return config


def consume(args: Any, emitter: Emitter, stop: threading.Event) -> None:
    emitter.emit("started", library="confluent-kafka",
                 version=f"{confluent_kafka.__version__} (librdkafka "
                 f"{confluent_kafka.libversion()[0]})", protocol=args.protocol)
    fatal = threading.Event()
    config = build_config(args, emitter, fatal)
    strategy = config.get("partition.assignment.strategy", DEFAULT_ASSIGNMENT_STRATEGY)
    config_event(emitter, args, library_config=config,
                 assignors=str(strategy).split(",") if args.protocol == "classic" else [],
                 request_timeout_ms=config.get("socket.timeout.ms", DEFAULT_SOCKET_TIMEOUT_MS))
    reason = unsupported(args, "confluent-kafka", ASSIGNORS)
    if reason is not None:
        refuse(emitter, reason)
        return
    processed = Processed()
    try:
        consumer = Consumer(config)
    except Exception as exc:
        emitter.emit("error", error=kafka_error_text(exc), source="start")
        emitter.exit("returned_error", kafka_error_text(exc))
        return

    def on_assign(c: Any, partitions: list[Any]) -> None:
        processed.take(partitions)  # a fresh start from the committed offset
        try:
            member_id: str | None = c.memberid()
        except Exception:
            member_id = None
        emitter.emit("assigned", partitions=partitions_by_topic(partitions),
                     generation=None, member_id=member_id or None)

    def on_revoke(c: Any, partitions: list[Any]) -> None:
        if args.commit_in_revoke:
            done = [TopicPartition(t, p, off) for (t, p), off in
                    processed.take(partitions).items()]
            if done:
                offsets = _tp_offsets(done)
                try:
                    result = c.commit(offsets=done, asynchronous=False)
                    error = _partition_errors(result or [])
                    emitter.emit("commit", ok=error is None, error=error, offsets=offsets,
                                 in_revoke=True)
                except Exception as exc:
                    emitter.emit("commit", ok=False, error=kafka_error_text(exc),
                                 offsets=offsets, in_revoke=True)
        emitter.emit("revoked", partitions=partitions_by_topic(partitions))

    def on_lost(c: Any, partitions: list[Any]) -> None:
        processed.take(partitions)  # gone without a chance to commit
        emitter.emit("lost", partitions=partitions_by_topic(partitions))

    consumer.subscribe([args.topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
    deadline = time.monotonic() + args.max_runtime_s
    how, final_error = "max_runtime", None
    last_error: str | None = None
    same_in_a_row = 0
    try:
        while True:
            if stop.is_set():
                how = "killed"
                break
            if fatal.is_set():
                how, final_error = "returned_error", "fatal error (see error_cb)"
                break
            if time.monotonic() >= deadline:
                how = "max_runtime"
                break
            try:
                messages = consumer.consume(num_messages=500, timeout=CONSUME_TIMEOUT_S)
            except Exception as exc:
                text = kafka_error_text(exc)
                emitter.emit("error", error=text, source="poll")
                same_in_a_row = same_in_a_row + 1 if text == last_error else 1
                last_error = text
                if same_in_a_row >= MAX_SAME_ERROR_IN_A_ROW:
                    how, final_error = "returned_error", text
                    break
                time.sleep(0.1)
                continue
            consumed: dict[tuple[str, int], int] = {}
            for msg in messages:
                err = msg.error()
                if err is not None:
                    # A message carrying _FATAL reports that the handle hit a fatal error
                    # (err.fatal() is False on that wrapper); the consumer is unusable after it.
                    is_fatal = err.fatal() or err.code() == KafkaError._FATAL
                    emitter.emit("error", error=kafka_error_text(err), source="poll",
                                 fatal=is_fatal)
                    if is_fatal:
                        fatal.set()
                    continue
                topic, partition, offset = str(msg.topic()), int(msg.partition() or 0), int(
                    msg.offset() or 0
                )
                emitter.emit("record", topic=topic, partition=partition, offset=offset)
                if args.processing_delay_ms:  # the application's time on one record
                    stop.wait(args.processing_delay_ms / 1000)
                processed.done(topic, partition, offset)
                consumed[(topic, partition)] = offset + 1
            if consumed:
                last_error, same_in_a_row = None, 0
            if explicit_commit(args) and consumed:
                tps = [TopicPartition(t, p, off) for (t, p), off in consumed.items()]
                offsets = _tp_offsets(tps)
                try:
                    result = consumer.commit(offsets=tps, asynchronous=False)
                    error = _partition_errors(result or [])
                    emitter.emit("commit", ok=error is None, error=error, offsets=offsets)
                except Exception as exc:
                    emitter.emit("commit", ok=False, error=kafka_error_text(exc),
                                 offsets=offsets)
    finally:
        try:
            consumer.close()
        except Exception as exc:
            emitter.emit("error", error=kafka_error_text(exc), source="close")
    emitter.exit(how, final_error)


def main() -> None:
    args = parse_args()
    emitter = Emitter(CLIENT)
    stop = stop_on_signals()
    run_reporting_crash(emitter, lambda: consume(args, emitter, stop))


if __name__ == "__main__":
    main()
