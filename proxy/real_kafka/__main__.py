"""`python -m kafka_chaos_proxy.proxy.real_kafka`: run a real local Kafka for demos and manual
testing.

Why: people without Docker still want a broker to point the proxy at; this is the same
code path the tests use, so what works in a demo works in CI. `--fetch-only` warms the jar
cache (e.g. in a CI bootstrap step) without starting anything. `--secured` adds an SSL (mTLS)
and a SASL_SSL listener (`proxy.real_kafka.security`) and prints what a client needs.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from kafka_chaos_proxy.proxy.real_kafka.kraft import LocalKraftCluster
from kafka_chaos_proxy.proxy.real_kafka.maven import fetch_classpath
from kafka_chaos_proxy.proxy.real_kafka.security import DEFAULT_USERS, SASL_MECHANISMS, Secured
from kafka_chaos_proxy.proxy.real_kafka.versions import DEFAULT_KAFKA_VERSION, distribution


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kafka_chaos_proxy.proxy.real_kafka",
                                     description=__doc__)
    parser.add_argument("--nodes", type=int, default=1, help="1 or 3 combined KRaft nodes")
    parser.add_argument("--version", default=DEFAULT_KAFKA_VERSION, help="Kafka release")
    parser.add_argument("--fetch-only", action="store_true", help="only fill the jar cache")
    parser.add_argument("--secured", action="store_true",
                        help="also an SSL (mTLS) and a SASL_SSL listener on every node")
    parser.add_argument("--tls-dir", type=Path, help="with --secured: write the CA, the "
                        "brokers' key store and a client certificate here (kept after exit)")
    parser.add_argument("--ssl-port", type=int, help="with --secured and one node: the SSL "
                        "listener's port (default: a free one)")
    parser.add_argument("--sasl-ssl-port", type=int, help="with --secured and one node: the "
                        "SASL_SSL listener's port (default: a free one)")
    args = parser.parse_args(argv)
    fixed = args.ssl_port or args.sasl_ssl_port
    if ((args.tls_dir or fixed) and not args.secured) or (fixed and args.nodes != 1):
        parser.error("--tls-dir needs --secured; --ssl-port/--sasl-ssl-port need --secured "
                     "and --nodes 1")

    if args.fetch_only:
        dist = distribution(args.version)
        jars = fetch_classpath(list(dist.artifacts), dist.cache_name)
        print(f"{len(jars)} jars in {jars[0].parent}")
        return 0

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    security = (Secured(tls_dir=args.tls_dir, ssl_port=args.ssl_port,
                        sasl_ssl_port=args.sasl_ssl_port) if args.secured else None)
    with LocalKraftCluster(args.nodes, args.version, security=security) as cluster:
        print(f"Kafka {cluster.version} ready", flush=True)
        print(f"bootstrap servers: {cluster.bootstrap_servers}", flush=True)
        if cluster.tls_files is not None:
            files = cluster.tls_files
            print(f"SSL (client certificate required): {cluster.ssl_bootstrap_servers}",
                  flush=True)
            print(f"SASL_SSL ({', '.join(SASL_MECHANISMS)}): "
                  f"{cluster.sasl_ssl_bootstrap_servers}", flush=True)
            print(f"CA: {files.ca_file}; client certificate: {files.client_cert_file}, key: "
                  f"{files.client_key_file}", flush=True)
            print("users (PLAIN and SCRAM): " + ", ".join(
                f"{name} / {password}" for name, password in DEFAULT_USERS), flush=True)
        for path in cluster.log_paths():
            print(f"log: {path}", flush=True)
        print("Ctrl-C stops it.", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
