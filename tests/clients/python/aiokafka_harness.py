"""aiokafka consumer harness for the client x fault matrix (contract: harness_common).

A plain consume loop as an application would write it: subscribe with a
ConsumerRebalanceListener, `getmany` in a loop, commit after each batch when `--commit manual`
(or `both`), and, with `--commit-in-revoke`, commit what was processed in
`on_partitions_revoked` (the pattern aiokafka's documentation shows).
Exceptions the library raises are reported as `error` events and the loop goes on, because
that is what a long-running consumer does; only errors that mean the consumer is unusable end
the run (`returned_error`). aiokafka does not speak the KIP-848 `consumer` protocol, which the
harness says instead of silently falling back.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from typing import Any

import aiokafka
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor
from aiokafka.errors import ConsumerStoppedError, IllegalStateError
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
    unsupported,
)

CLIENT = "aiokafka"
CLOSE_TIMEOUT_S = 15.0
ASSIGNORS: dict[str, Any] = {
    "range": RangePartitionAssignor,
    "roundrobin": RoundRobinPartitionAssignor,
    "sticky": StickyPartitionAssignor,
}


class Listener(ConsumerRebalanceListener):
    """Reports every assignment change the library announces, with the generation it joined."""

    def __init__(self, emitter: Emitter, processed: Processed | None = None) -> None:
        self.emitter = emitter
        self.consumer: AIOKafkaConsumer | None = None
        #: With --commit-in-revoke: what was processed, committed as partitions go.
        self.processed = processed
        self.commit_in_revoke = False

    def _membership(self) -> tuple[int | None, str | None]:
        coordinator = getattr(self.consumer, "_coordinator", None)
        if coordinator is None:
            return None, None
        generation = getattr(coordinator, "generation", None)
        member_id = getattr(coordinator, "member_id", None)
        return (int(generation) if generation is not None else None), (member_id or None)

    async def on_partitions_revoked(self, revoked: Any) -> None:
        if self.commit_in_revoke and self.processed is not None and self.consumer is not None:
            done = {TopicPartition(t, p): off for (t, p), off in
                    self.processed.take(revoked).items()}
            if done:
                try:
                    await self.consumer.commit(done)
                    self.emitter.emit("commit", ok=True, error=None,
                                      offsets=offsets_by_topic(done), in_revoke=True)
                except Exception as exc:
                    self.emitter.emit("commit", ok=False, error=error_text(exc),
                                      offsets=offsets_by_topic(done), in_revoke=True)
        self.emitter.emit("revoked", partitions=partitions_by_topic(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        if self.processed is not None:
            self.processed.take(assigned)  # a fresh start from the committed offset
        generation, member_id = self._membership()
        self.emitter.emit(
            "assigned",
            partitions=partitions_by_topic(assigned),
            generation=generation,
            member_id=member_id,
        )


def consumer_config(args: Any) -> dict[str, Any]:
    config = keyword_config(args)
    config["rebalance_timeout_ms"] = args.rebalance_timeout_ms
    if args.assignor in ASSIGNORS:
        config["partition_assignment_strategy"] = (ASSIGNORS[args.assignor],)
    return config


async def process(stop: asyncio.Event, delay_ms: int) -> None:
    """--processing-delay-ms: the application's time on one record (a stop cuts it short)."""
    if delay_ms > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay_ms / 1000)


async def consume(args: Any, emitter: Emitter) -> None:
    emitter.emit("started", library="aiokafka", version=aiokafka.__version__,
                 protocol=args.protocol)
    config = consumer_config(args)
    # Built (not started) only to read its effective settings; nothing connects yet.
    probe = AIOKafkaConsumer(**config)
    config_event(emitter, args, library_config=config,
                 assignors=[a.name for a in probe._partition_assignment_strategy],
                 request_timeout_ms=probe._request_timeout_ms)
    if args.protocol == "consumer":
        await probe.stop()
        emitter.emit("error", error="aiokafka does not implement group.protocol=consumer "
                     "(KIP-848)", source="config")
        emitter.exit("returned_error", "unsupported protocol: consumer")
        return
    reason = unsupported(args, "aiokafka", tuple(ASSIGNORS))
    if reason is not None:
        await probe.stop()
        refuse(emitter, reason)
        return

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)

    consumer = probe
    processed = Processed()
    listener = Listener(emitter, processed)
    listener.consumer = consumer
    listener.commit_in_revoke = args.commit_in_revoke
    deadline = time.monotonic() + args.max_runtime_s
    try:
        await consumer.start()
    except Exception as exc:
        emitter.emit("error", error=error_text(exc), source="start")
        emitter.exit("returned_error", error_text(exc))
        return
    consumer.subscribe([args.topic], listener=listener)

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
                batches = await consumer.getmany(timeout_ms=200)
            except (ConsumerStoppedError, IllegalStateError) as exc:
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
                await asyncio.sleep(0.1)
                continue
            if not batches:
                continue
            last_error, same_in_a_row = None, 0
            consumed: dict[TopicPartition, int] = {}
            for tp, records in batches.items():
                for rec in records:
                    emitter.emit("record", topic=rec.topic, partition=rec.partition,
                                 offset=rec.offset)
                    await process(stop, args.processing_delay_ms)
                    processed.done(rec.topic, rec.partition, rec.offset)
                    consumed[tp] = rec.offset + 1
            if explicit_commit(args) and consumed:
                try:
                    await consumer.commit(consumed)
                    emitter.emit("commit", ok=True, error=None,
                                 offsets=offsets_by_topic(consumed))
                except Exception as exc:
                    emitter.emit("commit", ok=False, error=error_text(exc),
                                 offsets=offsets_by_topic(consumed))
    finally:
        try:
            await asyncio.wait_for(consumer.stop(), CLOSE_TIMEOUT_S)
        except Exception as exc:
            emitter.emit("error", error=error_text(exc), source="close")
    emitter.exit(how, final_error)


def main() -> None:
    args = parse_args()
    emitter = Emitter(CLIENT)
    forward_library_logs(emitter, "aiokafka")
    run_reporting_crash(emitter, lambda: asyncio.run(consume(args, emitter)))


if __name__ == "__main__":
    main()
