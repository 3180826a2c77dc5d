"""aiokafka consumer harness for the client x fault matrix (contract: harness_common).

A plain consume loop as an application would write it: subscribe with a
ConsumerRebalanceListener, `getmany` in a loop, commit after each batch when `--commit manual`.
Exceptions the library raises are reported as `error` events and the loop goes on, because
that is what a long-running consumer does; only errors that mean the consumer is unusable end
the run (`returned_error`). aiokafka does not speak the KIP-848 `consumer` protocol, which the
harness says instead of silently falling back.
"""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import aiokafka
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import ConsumerStoppedError, IllegalStateError
from harness_common import (
    AUTO_COMMIT_INTERVAL_MS,
    MAX_SAME_ERROR_IN_A_ROW,
    Emitter,
    error_text,
    forward_library_logs,
    offsets_by_topic,
    parse_args,
    partitions_by_topic,
    run_reporting_crash,
)

CLIENT = "aiokafka"
CLOSE_TIMEOUT_S = 15.0


class Listener(ConsumerRebalanceListener):
    """Reports every assignment change the library announces, with the generation it joined."""

    def __init__(self, emitter: Emitter) -> None:
        self.emitter = emitter
        self.consumer: AIOKafkaConsumer | None = None

    def _membership(self) -> tuple[int | None, str | None]:
        coordinator = getattr(self.consumer, "_coordinator", None)
        if coordinator is None:
            return None, None
        generation = getattr(coordinator, "generation", None)
        member_id = getattr(coordinator, "member_id", None)
        return (int(generation) if generation is not None else None), (member_id or None)

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.emitter.emit("revoked", partitions=partitions_by_topic(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        generation, member_id = self._membership()
        self.emitter.emit(
            "assigned",
            partitions=partitions_by_topic(assigned),
            generation=generation,
            member_id=member_id,
        )


async def consume(args: Any, emitter: Emitter) -> None:
    if args.protocol == "consumer":
        emitter.emit("started", library="aiokafka", version=aiokafka.__version__,
                     protocol="consumer")
        emitter.emit("error", error="aiokafka does not implement group.protocol=consumer "
                     "(KIP-848)", source="config")
        emitter.exit("returned_error", "unsupported protocol: consumer")
        return

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)

    consumer = AIOKafkaConsumer(
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        client_id=args.client_id,
        group_instance_id=args.instance_id,
        session_timeout_ms=args.session_timeout_ms,
        heartbeat_interval_ms=args.heartbeat_interval_ms,
        rebalance_timeout_ms=args.rebalance_timeout_ms,
        enable_auto_commit=args.commit == "auto",
        auto_commit_interval_ms=AUTO_COMMIT_INTERVAL_MS,
        auto_offset_reset="earliest" if args.from_beginning else "latest",
    )
    listener = Listener(emitter)
    listener.consumer = consumer
    emitter.emit("started", library="aiokafka", version=aiokafka.__version__,
                 protocol="classic")
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
                    consumed[tp] = rec.offset + 1
            if args.commit == "manual" and consumed:
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
