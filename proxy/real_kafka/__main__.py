"""`python -m kafka_chaos_proxy.proxy.real_kafka`: run a real local Kafka for demos and manual
testing.

Why: people without Docker still want a broker to point the proxy at; this is the same
code path the tests use, so what works in a demo works in CI. `--fetch-only` warms the jar
cache (e.g. in a CI bootstrap step) without starting anything.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from kafka_chaos_proxy.proxy.real_kafka.kraft import LocalKraftCluster
from kafka_chaos_proxy.proxy.real_kafka.maven import fetch_classpath
from kafka_chaos_proxy.proxy.real_kafka.versions import DEFAULT_KAFKA_VERSION, distribution


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kafka_chaos_proxy.proxy.real_kafka",
                                     description=__doc__)
    parser.add_argument("--nodes", type=int, default=1, help="1 or 3 combined KRaft nodes")
    parser.add_argument("--version", default=DEFAULT_KAFKA_VERSION, help="Kafka release")
    parser.add_argument("--fetch-only", action="store_true", help="only fill the jar cache")
    args = parser.parse_args(argv)

    if args.fetch_only:
        dist = distribution(args.version)
        jars = fetch_classpath(list(dist.artifacts), dist.cache_name)
        print(f"{len(jars)} jars in {jars[0].parent}")
        return 0

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with LocalKraftCluster(args.nodes, args.version) as cluster:
        print(f"Kafka {cluster.version} ready", flush=True)
        print(f"bootstrap servers: {cluster.bootstrap_servers}", flush=True)
        for path in cluster.log_paths():
            print(f"log: {path}", flush=True)
        print("Ctrl-C stops it.", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
