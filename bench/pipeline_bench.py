#!/usr/bin/env python3
"""The pipeline's own CPU per frame, without sockets: small Produce requests and their
responses pushed through one `Connection` whose transports only count what is written.

Why a second benchmark: `bench/throughput.py` measures what a user sees (real broker, real
clients, real sockets), but on a shared 2-core machine its ratios swing by 2x between runs, so
a 10-20% change in the proxy's Python cost per frame is lost in it. Here the same Python work
runs (header parse, request context, slot, fault decision, response match, counters, ordered
write) and nothing else, measured in CPU time (`time.process_time`), so a change to the hot
path shows up as a number that repeats within a few percent. It says nothing about syscalls,
the kernel or the broker: read it next to `throughput.py`, never instead of it.

    .venv/bin/python bench/pipeline_bench.py                    # 200,000 frames, no rules
    .venv/bin/python bench/pipeline_bench.py --rules 100        # 100 rules that never match
    .venv/bin/python bench/pipeline_bench.py --rules 10000      # (--max-rules raised for it)

The rules are what a test suite installs for coordination faults: SyncGroup errors, each for
its own group, none of which a Produce can match. Runs against older checkouts too (the
imports fall back to the layout before the `kafka_chaos_proxy` package), so a before/after
is one command per worktree.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's code, not whatever the venv has installed

# Before the package rename the layers were top-level packages; named by string here so
# that nothing in this project imports a layer by its folder name.
_PREFIX = "kafka_chaos_proxy." if (ROOT / "kafka_chaos_proxy").is_dir() else ""
codec: Any = importlib.import_module(f"{_PREFIX}codec")
FaultEngine: Any = importlib.import_module(f"{_PREFIX}faults.engine").FaultEngine
ProxyConfig: Any = importlib.import_module(f"{_PREFIX}proxy.config").ProxyConfig
Connection: Any = importlib.import_module(f"{_PREFIX}proxy.pipeline.connection").Connection
ProxyServer: Any = importlib.import_module(f"{_PREFIX}proxy.server").ProxyServer
with_size: Any = importlib.import_module(f"{_PREFIX}proxy.pipeline.framing").with_size

PRODUCE_VERSION = 9


class CountingTransport(asyncio.Transport):
    """A transport that accepts every write at once and counts the bytes."""

    def __init__(self) -> None:
        super().__init__()
        self.written = 0

    def write(self, data: Any) -> None:
        self.written += len(data)

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.written += len(data)

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def close(self) -> None:
        pass


def produce_frames(batch: int, record_bytes: int) -> tuple[bytes, bytes]:
    """`batch` Produce requests (acks=1, one partition, a records blob of `record_bytes`) in
    one chunk, and their responses in another, correlation ids 0..batch-1."""
    body = {"transactional_id": None, "acks": 1, "timeout_ms": 30000,
            "topic_data": [{"name": "bench", "partition_data": [
                {"index": 0, "records": b"\0" * record_bytes}]}]}
    key = codec.api_key_of("Produce")
    requests, responses = b"", b""
    req_dir, resp_dir = codec.Direction.REQUEST, codec.Direction.RESPONSE
    for corr in range(batch):
        requests += with_size(
            codec.encode_request_header(key, PRODUCE_VERSION, corr, "bench-producer")
            + codec.encode_body(key, PRODUCE_VERSION, req_dir, body))
        responses += with_size(
            codec.encode_response_header(key, PRODUCE_VERSION, corr)
            + codec.encode_body(key, PRODUCE_VERSION, resp_dir, {}))
    return requests, responses


def engine_with(rules: int, shape: str = "group") -> Any:
    """The engine a proxy always has (empty: no rules), with `rules` that never match: per
    group (SyncGroup errors, each for its own group) or per client (`bench/peers.py`'s: a
    delay on Produce and Fetch for a client id glob no client of the load uses)."""
    engine = FaultEngine(max_rules=max(rules, 1000))
    if shape == "group":
        specs = [{"id": f"sync-{n}", "match": {"apis": ["SyncGroup"], "group_id": f"g-{n}"},
                  "action": {"type": "error", "error": "REBALANCE_IN_PROGRESS"}}
                 for n in range(rules)]
    else:
        specs = [{"id": f"client-{n}", "match": {"apis": ["Produce", "Fetch"],
                                                 "client_id": f"bench-no-such-client-{n:05d}-*"},
                  "action": {"type": "delay", "side": "request", "fixed_ms": 1000}}
                 for n in range(rules)]
    engine.load(specs)
    return engine


async def run_once(frames: int, batch: int, record_bytes: int, rules: int,
                   shape: str = "group") -> dict[str, float]:
    server = ProxyServer(ProxyConfig([("127.0.0.1", 9)], port=0), engine_with(rules, shape))
    conn = Connection(server, 1)
    client, upstream = CountingTransport(), CountingTransport()
    conn.client = client
    conn.upstream = upstream
    requests, responses = produce_frames(batch, record_bytes)
    rounds = max(1, frames // batch)
    gc.collect()
    start = time.process_time()
    for _ in range(rounds):
        conn.client_data(requests)
        conn.upstream_data(responses)
    cpu = time.process_time() - start
    if conn.closed:
        raise SystemExit(f"the connection closed during the run: {conn.close_reason}")
    moved = client.written + upstream.written
    if upstream.written != rounds * len(requests) or client.written != rounds * len(responses):
        raise SystemExit("bytes went missing: the benchmark is not measuring a pass-through")
    return {"us_per_exchange": cpu / (rounds * batch) * 1e6,
            "core_s_per_gb": cpu / (moved / 1e9)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=200_000, help="requests per run")
    ap.add_argument("--batch", type=int, default=16,
                    help="requests per chunk read from the client (and responses per chunk "
                         "from the broker)")
    ap.add_argument("--record-bytes", type=int, default=1024)
    ap.add_argument("--rules", type=int, default=0, help="rules that never match a Produce")
    ap.add_argument("--rule-shape", choices=["group", "client"], default="group",
                    help="what the rules aim at: a group each (SyncGroup) or a client id "
                         "glob each (Produce and Fetch, as bench/peers.py's)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", action="store_true", help="one JSON line instead of text")
    args = ap.parse_args()
    # Older checkouts' run_once takes no shape: they are only asked for the group shape.
    shape = () if args.rule_shape == "group" else (args.rule_shape,)
    runs = [asyncio.run(run_once(args.frames, args.batch, args.record_bytes, args.rules, *shape))
            for _ in range(args.repeat)]
    us = sorted(r["us_per_exchange"] for r in runs)
    gb = sorted(r["core_s_per_gb"] for r in runs)
    result = {"code": str(Path(codec.__file__).resolve().parent.parent),
              "frames": args.frames, "batch": args.batch, "record_bytes": args.record_bytes,
              "rules": args.rules, "rule_shape": args.rule_shape, "repeat": args.repeat,
              "us_per_exchange_median": round(statistics.median(us), 3),
              "us_per_exchange_min": round(us[0], 3), "us_per_exchange_max": round(us[-1], 3),
              "core_s_per_gb_median": round(statistics.median(gb), 3)}
    if args.json:
        print(json.dumps(result))
        return
    print(f"{args.frames} Produce exchanges of {args.record_bytes} B records, {args.batch} per "
          f"chunk, {args.rules} {args.rule_shape} rules: {result['us_per_exchange_median']} us "
          f"CPU per exchange "
          f"(min {result['us_per_exchange_min']}, max {result['us_per_exchange_max']}, "
          f"{args.repeat} runs), {result['core_s_per_gb_median']} core-s/GB")


if __name__ == "__main__":
    main()
