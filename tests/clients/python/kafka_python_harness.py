"""kafka-python consumer harness for the client x fault matrix (contract: harness_common).

A plain poll loop: subscribe with a ConsumerRebalanceListener (including KIP-429
`on_partitions_lost`), `poll` in a loop, synchronous `commit` after each batch when
`--commit manual` (or `both`), and with `--commit-in-revoke` a commit of what was processed in
`on_partitions_revoked`, awaited before the rebalance goes on. kafka-python 3 runs listeners
on its IO loop and refuses a blocking `commit()` there, so that listener is its
`AsyncConsumerRebalanceListener` awaiting `commit_async` (what the library's own error message
prescribes). Auto-commits report through
`default_offset_commit_callback`, which the library otherwise discards, so every commit mode
leaves `commit` events. kafka-python does not speak the KIP-848 `consumer` protocol, which
the harness says instead of falling back.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import kafka
from harness_common import (
    MAX_SAME_ERROR_IN_A_ROW,
    Emitter,
    Processed,
    config_event,
    error_text,
    explicit_commit,
    forward_library_logs,
    keyword_config,
    offsets_by_topic,
    parse_args,
    partitions_by_topic,
    refuse,
    run_reporting_crash,
    stop_on_signals,
    unsupported,
)
from kafka import (
    AsyncConsumerRebalanceListener,
    ConsumerRebalanceListener,
    KafkaConsumer,
    TopicPartition,
)
from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from kafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor
from kafka.errors import IllegalStateError, KafkaConfigurationError
from kafka.structs import OffsetAndMetadata

CLIENT = "kafka-python"
POLL_TIMEOUT_MS = 200
ASSIGNORS: dict[str, Any] = {
    "range": RangePartitionAssignor,
    "roundrobin": RoundRobinPartitionAssignor,
    "sticky": StickyPartitionAssignor,
    "cooperative-sticky": CooperativeStickyAssignor,
}


class Listener(ConsumerRebalanceListener):
    """Reports every assignment change the library announces, with the generation it joined."""

    def __init__(self, emitter: Emitter, processed: Processed | None = None) -> None:
        self.emitter = emitter
        self.consumer: KafkaConsumer | None = None
        self.processed = processed

    def _membership(self) -> tuple[int | None, str | None]:
        coordinator = getattr(self.consumer, "_coordinator", None)
        if coordinator is None:
            return None, None
        try:
            meta = coordinator.group_metadata()
        except Exception:
            return None, None
        generation = getattr(meta, "generation_id", None)
        member_id = getattr(meta, "member_id", None)
        return (int(generation) if generation is not None else None), (member_id or None)

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.emitter.emit("revoked", partitions=partitions_by_topic(revoked))

    def on_partitions_assigned(self, assigned: Any) -> None:
        if self.processed is not None:
            self.processed.take(assigned)  # a fresh start from the committed offset
        generation, member_id = self._membership()
        self.emitter.emit(
            "assigned",
            partitions=partitions_by_topic(assigned),
            generation=generation,
            member_id=member_id,
        )

    def on_partitions_lost(self, lost: Any) -> None:
        if self.processed is not None:
            self.processed.take(lost)  # gone without a chance to commit
        self.emitter.emit("lost", partitions=partitions_by_topic(lost))


class CommittingListener(AsyncConsumerRebalanceListener):
    """--commit-in-revoke: the same events as `Listener`, and the processed offsets of the
    revoked partitions committed (and awaited) in `on_partitions_revoked`, before `revoked`."""

    def __init__(self, inner: Listener) -> None:
        self.inner = inner

    async def on_partitions_revoked(self, revoked: Any) -> None:
        inner = self.inner
        done = {TopicPartition(t, p): off for (t, p), off in
                (inner.processed.take(revoked) if inner.processed is not None else {}).items()}
        if done and inner.consumer is not None:
            try:
                await inner.consumer.commit_async(
                    {tp: OffsetAndMetadata(off, "", -1) for tp, off in done.items()})
                inner.emitter.emit("commit", ok=True, error=None,
                                   offsets=offsets_by_topic(done), in_revoke=True)
            except Exception as exc:
                inner.emitter.emit("commit", ok=False, error=error_text(exc),
                                   offsets=offsets_by_topic(done), in_revoke=True)
        inner.on_partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.inner.on_partitions_assigned(assigned)

    async def on_partitions_lost(self, lost: Any) -> None:
        self.inner.on_partitions_lost(lost)


def _auto_commit_callback(emitter: Emitter) -> Any:
    """Turns the library's async (auto-)commit completion into a `commit` event."""

    def callback(offsets: Any, res_or_exc: Any) -> None:
        plain: dict[Any, int] = {
            tp: int(getattr(om, "offset", om) or 0) for tp, om in dict(offsets or {}).items()
        }
        if isinstance(res_or_exc, BaseException):
            emitter.emit("commit", ok=False, error=error_text(res_or_exc),
                         offsets=offsets_by_topic(plain))
        else:
            emitter.emit("commit", ok=True, error=None, offsets=offsets_by_topic(plain))

    return callback


def consumer_config(args: Any, emitter: Emitter) -> dict[str, Any]:
    config = keyword_config(args)
    # kafka-python sends max_poll_interval_ms as the JoinGroup rebalance timeout.
    config["max_poll_interval_ms"] = args.rebalance_timeout_ms
    config["default_offset_commit_callback"] = _auto_commit_callback(emitter)
    if args.assignor is not None:
        config["partition_assignment_strategy"] = (ASSIGNORS[args.assignor],)
    return config


def consume(args: Any, emitter: Emitter, stop: threading.Event) -> None:
    emitter.emit("started", library="kafka-python", version=kafka.__version__,
                 protocol=args.protocol)
    config = consumer_config(args, emitter)
    # The constructor already connects, so the effective values are the library's defaults
    # merged with what is given, as KafkaConsumer merges them.
    effective = {**KafkaConsumer.DEFAULT_CONFIG, **config}
    config_event(emitter, args, library_config=config,
                 assignors=[a.name for a in effective["partition_assignment_strategy"]],
                 request_timeout_ms=effective["request_timeout_ms"])
    if args.protocol == "consumer":
        emitter.emit("error", error="kafka-python does not implement group.protocol=consumer "
                     "(KIP-848)", source="config")
        emitter.exit("returned_error", "unsupported protocol: consumer")
        return
    reason = unsupported(args, "kafka-python")
    if reason is not None:
        refuse(emitter, reason)
        return
    deadline = time.monotonic() + args.max_runtime_s
    processed = Processed()
    listener = Listener(emitter, processed)
    try:
        consumer = KafkaConsumer(**config)
    except (KafkaConfigurationError, Exception) as exc:
        emitter.emit("error", error=error_text(exc), source="start")
        emitter.exit("returned_error", error_text(exc))
        return
    listener.consumer = consumer
    consumer.subscribe([args.topic], listener=CommittingListener(listener)
                       if args.commit_in_revoke else listener)

    how, final_error = "max_runtime", None
    last_error: str | None = None
    same_in_a_row = 0
    try:
        while True:
            if stop.is_set():
                how = "killed"
                break
            if time.monotonic() >= deadline:
                how = "max_runtime"
                break
            try:
                batches = consumer.poll(timeout_ms=POLL_TIMEOUT_MS)
            except IllegalStateError as exc:
                emitter.emit("error", error=error_text(exc), source="poll")
                how, final_error = "returned_error", error_text(exc)
                break
            except Exception as exc:
                text = error_text(exc)
                emitter.emit("error", error=text, source="poll")
                same_in_a_row = same_in_a_row + 1 if text == last_error else 1
                last_error = text
                if same_in_a_row >= MAX_SAME_ERROR_IN_A_ROW:
                    how, final_error = "returned_error", text
                    break
                time.sleep(0.1)
                continue
            if not batches:
                continue
            last_error, same_in_a_row = None, 0
            consumed: dict[TopicPartition, int] = {}
            for tp, records in batches.items():
                for rec in records:
                    emitter.emit("record", topic=rec.topic, partition=rec.partition,
                                 offset=rec.offset)
                    if args.processing_delay_ms:  # the application's time on one record
                        stop.wait(args.processing_delay_ms / 1000)
                    processed.done(rec.topic, rec.partition, rec.offset)
                    consumed[tp] = rec.offset + 1
            if explicit_commit(args) and consumed:
                try:
                    consumer.commit(
                        {tp: OffsetAndMetadata(off, "", -1) for tp, off in consumed.items()}
                    )
                    emitter.emit("commit", ok=True, error=None,
                                 offsets=offsets_by_topic(consumed))
                except Exception as exc:
                    emitter.emit("commit", ok=False, error=error_text(exc),
                                 offsets=offsets_by_topic(consumed))
    finally:
        try:
            consumer.close()
        except Exception as exc:
            emitter.emit("error", error=error_text(exc), source="close")
    emitter.exit(how, final_error)


def main() -> None:
    args = parse_args()
    emitter = Emitter(CLIENT)
    forward_library_logs(emitter, "kafka")
    stop = stop_on_signals()
    run_reporting_crash(emitter, lambda: consume(args, emitter, stop))


if __name__ == "__main__":
    main()
