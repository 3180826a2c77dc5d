"""Throughput, latency, CPU and memory of the proxy against a direct connection, same run.

The proxy runs as `kafka-chaos-proxy run` in a subprocess (no admin server, JSON logs to a
file), so its CPU time and RSS are read from /proc/<pid> without counting the clients. Clients
are confluent-kafka (librdkafka): fast enough that the proxy, not the client, is what limits.

Phases, each first direct then through the proxy, on fresh topics:
  produce   N records of SIZE bytes, acks=1, linger 5 ms: MB/s
  consume   the same N records with assign() from offset 0: MB/s
  latency   single-record produce round trips, one in flight, acks=1: p50/p99 (ms),
            optionally under a background load (--load-mbps)
  paced     1 KiB records at --rate a second (20,000), linger.ms 1: each record's
            delivery latency p50/p99 and the proxy's core-seconds per GB of records
  idle      RSS growth of the proxy per idle client connection (1000 connections, each
            having done one ApiVersions exchange, so its upstream connection exists too)

With --tls every connection is TLS: a local broker with an SSL listener (mTLS,
`proxy.real_kafka.security`) is started, the direct clients use it, and the proxy serves a
self-signed TLS listener in front of it (TLS <-> TLS, the proxy's client certificate towards
the broker), so the ratios are TLS through the proxy against TLS direct.

Bounded: record counts and a per-phase deadline; nothing runs after the report.

    .venv/bin/python bench/throughput.py                      # starts a local broker
    .venv/bin/python bench/throughput.py --bootstrap HOST:PORT
    .venv/bin/python bench/throughput.py --tls                # TLS on every connection
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import resource
import socket
import ssl
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[1]
PHASE_DEADLINE_S = 120.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Setup:
    """Where the direct clients go and how each side is secured: `direct` and `proxied` are
    the client settings (beyond bootstrap.servers) for the broker and for the proxy,
    `proxy_args` the proxy's extra `run` flags, `proxy_ca` the CA the idle phase's raw
    sockets trust the proxy's TLS listener with (None: plaintext)."""

    upstream: str
    direct: dict[str, Any] = field(default_factory=dict)
    proxied: dict[str, Any] = field(default_factory=dict)
    proxy_args: list[str] = field(default_factory=list)
    proxy_ca: Path | None = None

    def conf(self, bootstrap: str) -> dict[str, Any]:
        """The client settings for `bootstrap`, the broker's or the proxy's."""
        extra = self.direct if bootstrap == self.upstream else self.proxied
        return {"bootstrap.servers": bootstrap, **extra}


def free_port() -> int:
    """A loopback port free right now (another process may take it before it is bound)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ProxyProcess:
    """A process in the clients' path (this proxy, or a peer proxy) and the address clients
    bootstrap from; its CPU time and RSS come from /proc, so they are its own."""

    proc: subprocess.Popen[bytes]
    bootstrap: str

    def cpu_s(self) -> float:
        user, system = self.cpu_split()
        return user + system

    def cpu_split(self) -> tuple[float, float]:
        """(user, kernel) CPU seconds: Python's share against the syscalls' and copies'."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK  # utime, stime

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0


@contextlib.contextmanager
def run_proxy(upstream: str, log_path: Path, extra: list[str] | None = None
              ) -> Iterator[ProxyProcess]:
    port, base = free_port(), free_port()
    cmd = [sys.executable, "-c", "from kafka_chaos_proxy.proxy.cli import main; main()", "run",
           "--bootstrap-server", upstream, "--port", str(port), "--port-base", str(base),
           "--no-admin", "--log-format", "json", *(extra or [])]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=log)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        if "bootstrap servers for clients:" not in line:
            raise RuntimeError(f"proxy did not start: {line!r} (see {log_path})")
        yield ProxyProcess(proc, line.rsplit(" ", 1)[1].strip())
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def create_topic(conf: dict[str, Any], partitions: int = 3) -> str:
    name = f"bench-{uuid.uuid4().hex[:10]}"
    admin = AdminClient(conf)
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(30)
    return name


# The producer's batch.size: 1 MB batches make few large Produce requests (the proxy streams
# them cut-through); `--batch-size 16384`, librdkafka's own default, makes many medium ones.
BATCH_BYTES = 1_000_000


def produce(conf: dict[str, Any], topic: str, n: int, size: int,
            batch_bytes: int = BATCH_BYTES) -> float:
    """Seconds to produce and flush n records of size bytes."""
    payload = os.urandom(size)
    p = Producer({**conf, "acks": "1", "linger.ms": 5,
                  "batch.size": batch_bytes, "queue.buffering.max.kbytes": 512 * 1024,
                  "message.max.bytes": 2_000_000})
    p.list_topics(topic, timeout=10)  # connect before the clock starts
    start = time.perf_counter()
    deadline = start + PHASE_DEADLINE_S
    for i in range(n):
        while True:  # bounded by the phase deadline below
            try:
                p.produce(topic, payload, partition=i % 3)
                break
            except BufferError:
                p.poll(0.005)
                if time.perf_counter() > deadline:
                    raise TimeoutError("produce phase over deadline") from None
    remaining = p.flush(PHASE_DEADLINE_S)
    if remaining:
        raise TimeoutError(f"{remaining} records not delivered")
    return time.perf_counter() - start


#: librdkafka stops fetching a partition once its local queue passes queued.min.messages or
#: queued.max.messages.kbytes (64 MB), and postpones the next fetch by fetch.queue.backoff.ms,
#: 1000 ms by default, while the benchmark drains that queue in a fraction of it and then waits
#: out the rest. Whether a run crosses the threshold depends on how fast it drains, so direct
#: consume of 100 KiB records was bimodal (about 175 or 800 MB/s, bench/README.md). 10 ms
#: keeps the wait below the drain time.
FETCH_QUEUE_BACKOFF_MS = 10


def consume(conf: dict[str, Any], topic: str, n: int) -> float:
    """Seconds to consume n records from offset 0 of the topic's three partitions."""
    c = Consumer({**conf, "group.id": f"bench-{uuid.uuid4().hex[:6]}",
                  "enable.auto.commit": False, "fetch.max.bytes": 52_428_800,
                  "max.partition.fetch.bytes": 10_485_760,
                  "fetch.queue.backoff.ms": FETCH_QUEUE_BACKOFF_MS})
    c.assign([TopicPartition(topic, p, 0) for p in range(3)])
    got = 0
    first = c.consume(num_messages=1, timeout=30)
    got += len(first)
    start = time.perf_counter()
    deadline = start + PHASE_DEADLINE_S
    while got < n and time.perf_counter() < deadline:
        got += len(c.consume(num_messages=1000, timeout=0.05))
    elapsed = time.perf_counter() - start
    c.close()
    if got < n:
        raise TimeoutError(f"consumed {got}/{n}")
    return elapsed


def latency(conf: dict[str, Any], topic: str, count: int, size: int) -> tuple[float, float]:
    """p50, p99 in ms of single-record produce round trips (one in flight)."""
    p = Producer({**conf, "acks": "1", "linger.ms": 0})
    p.list_topics(topic, timeout=10)
    payload = os.urandom(size)
    samples: list[float] = []
    for _ in range(count):
        t0 = time.perf_counter()
        p.produce(topic, payload, partition=0)
        p.flush(10)
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def paced(conf: dict[str, Any], topic: str, rate: float, seconds: float, size: int,
          proc: ProxyProcess | None = None, linger_ms: float = 1.0) -> dict[str, float]:
    """`rate` records of `size` bytes a second for `seconds`, produced as they come due
    (acks=1, `linger_ms`: a steady stream of small Produce requests, as an application
    sending events one by one makes; at 0, 20,000 requests a second queue up in the broker
    of this 2-core machine, direct, and the latency measured is that queue): each record's
    latency from `produce()` to its delivery report, the rate reached, and `proc`'s
    core-seconds per GB of record bytes."""
    p = Producer({**conf, "acks": "1", "linger.ms": linger_ms,
                  "queue.buffering.max.kbytes": 512 * 1024})
    p.list_topics(topic, timeout=10)
    payload = os.urandom(size)
    for partition in range(3):  # the fresh topic's leaders found and connected: not timed
        p.produce(topic, payload, partition=partition)
    if p.flush(30):
        raise TimeoutError("paced phase: the warm-up records were not delivered")
    samples: list[float] = []
    failed = 0

    def delivered(sent_at: float, err: object, _msg: object) -> None:
        nonlocal failed
        if err is not None:
            failed += 1
        else:
            samples.append((time.perf_counter() - sent_at) * 1000)

    n = int(rate * seconds)
    cpu0 = proc.cpu_split() if proc is not None else (0.0, 0.0)
    send_s = send_paced(p, topic, payload, n, rate, seconds + PHASE_DEADLINE_S, delivered)
    if p.flush(PHASE_DEADLINE_S):
        raise TimeoutError("paced phase: records not delivered")
    cpu1 = proc.cpu_split() if proc is not None else (0.0, 0.0)
    if failed or len(samples) != n:
        raise RuntimeError(f"paced phase: {failed} of {n} records failed")
    samples.sort()
    out = {"records": n, "rate_reached": round(n / send_s), "p50_ms": statistics.median(samples),
           "p99_ms": samples[int(len(samples) * 0.99) - 1]}
    if proc is not None:
        used = sum(cpu1) - sum(cpu0)
        out["core_s_per_gb"] = used / (n * size / 1e9)
        out["user_share"] = (cpu1[0] - cpu0[0]) / used if used else 0.0
    return out


def send_paced(p: Producer, topic: str, payload: bytes, n: int, rate: float,
               deadline_s: float, delivered: Callable[..., None]) -> float:
    """Produce `n` records, each as it comes due at `rate` a second (a late loop catches
    up at once), `delivered(sent_at, err, msg)` called for each; returns the seconds taken."""
    start = time.perf_counter()
    sent = 0
    while sent < n:
        now = time.perf_counter()
        if now > start + deadline_s:
            raise TimeoutError("paced phase over deadline")
        due = min(n, int((now - start) * rate) + 1)
        while sent < due:
            try:
                p.produce(topic, payload, partition=sent % 3,
                          on_delivery=functools.partial(delivered, time.perf_counter()))
            except BufferError:
                break
            sent += 1
        p.poll(0)
        if sent >= due:
            time.sleep(0.0005)
    return time.perf_counter() - start


class BackgroundLoad:
    """A producer pushing about `mbps` MB/s while latency is measured ("moderate load")."""

    def __init__(self, conf: dict[str, Any], topic: str, mbps: float) -> None:
        self.conf, self.topic, self.mbps = conf, topic, mbps
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        p = Producer({**self.conf, "acks": "1", "linger.ms": 2})
        payload = os.urandom(10_240)
        per_tick = max(1, int(self.mbps * 1e6 / 10_240 / 100))
        deadline = time.monotonic() + PHASE_DEADLINE_S
        while not self.stop.is_set() and time.monotonic() < deadline:
            for _ in range(per_tick):
                with contextlib.suppress(BufferError):
                    p.produce(self.topic, payload, partition=1)
            p.poll(0)
            time.sleep(0.01)
        p.flush(10)

    def __enter__(self) -> BackgroundLoad:
        if self.mbps > 0:
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(20)


@dataclass(frozen=True)
class Transfer:
    """One produce-then-consume of the same records through one path: MB/s each way, and
    the core-seconds per GB moved (produce + consume bytes) of the process in the path, if
    one was measured; also per phase (the fetch path and the produce path cost differently)."""

    produce_mbps: float
    consume_mbps: float
    core_s_per_gb: float | None
    produce_core_s_per_gb: float | None = None
    consume_core_s_per_gb: float | None = None
    produce_user_share: float | None = None  # of the produce phase's CPU, user space
    consume_user_share: float | None = None


def transfer(conf: dict[str, Any], admin: dict[str, Any], n: int, size: int,
             proc: ProxyProcess | None = None, *, delete_topic: bool = False,
             batch_bytes: int = BATCH_BYTES) -> Transfer:
    """The produce and consume phases on a fresh topic (created through `admin`, the
    broker's own settings); `proc`'s CPU time is read around both. With `delete_topic` the
    topic is dropped afterwards, so that many runs do not fill the broker's disk."""
    mb = size * n / 1e6
    topic = create_topic(admin)
    cpu0 = proc.cpu_split() if proc is not None else (0.0, 0.0)
    t_prod = produce(conf, topic, n, size, batch_bytes)
    cpu1 = proc.cpu_split() if proc is not None else (0.0, 0.0)
    t_cons = consume(conf, topic, n)
    if delete_topic:
        drop_topic(admin, topic)
    if proc is None:
        return Transfer(mb / t_prod, mb / t_cons, None)
    cpu2 = proc.cpu_split()
    gb = mb / 1000
    produced, consumed = sum(cpu1) - sum(cpu0), sum(cpu2) - sum(cpu1)
    return Transfer(mb / t_prod, mb / t_cons, (produced + consumed) / (2 * gb),
                    produced / gb, consumed / gb,
                    (cpu1[0] - cpu0[0]) / produced if produced else None,
                    (cpu2[0] - cpu1[0]) / consumed if consumed else None)


def drop_topic(conf: dict[str, Any], name: str) -> None:
    """Delete a topic and wait for the broker to accept it (its files go a minute later)."""
    admin = AdminClient(conf)  # held until the answer is in: its handle serves the future
    admin.delete_topics([name])[name].result(30)


def latency_under_load(conf: dict[str, Any], admin: dict[str, Any], count: int,
                       load_mbps: float) -> tuple[float, float]:
    """p50, p99 (ms) of `count` 1 KiB produce round trips on a fresh topic while a
    background producer pushes `load_mbps` MB/s through the same path."""
    topic = create_topic(admin)
    with BackgroundLoad(conf, topic, load_mbps):
        return latency(conf, topic, count, 1024)


def idle_rss_per_connection(proxy: ProxyProcess, count: int,
                            proxy_ca: Path | None = None) -> float:
    host, port = proxy.bootstrap.rsplit(":", 1)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count * 2 + 100), hard))
    request = api_versions_request()
    tls = None if proxy_ca is None else ssl.create_default_context(cafile=str(proxy_ca))
    base = proxy.rss_bytes()
    socks = []
    try:
        for _ in range(count):
            s = socket.create_connection((host, int(port)), timeout=10)
            if tls is not None:
                s = tls.wrap_socket(s, server_hostname=host)
            s.sendall(request)
            socks.append(s)
        for s in socks:  # every pair is connected end to end once its response came back
            (size,) = struct.unpack(">i", recv_exact(s, 4))
            recv_exact(s, size)
        time.sleep(0.5)
        return (proxy.rss_bytes() - base) / count
    finally:
        for s in socks:
            s.close()


def api_versions_request() -> bytes:
    """An ApiVersions v0 request frame (correlation id 5, client id "bench"): the smallest
    exchange that makes a proxy open its upstream connection."""
    payload = struct.pack(">hhih", 18, 0, 1, 5) + b"bench"
    return struct.pack(">i", len(payload)) + payload


def recv_exact(s: socket.socket, n: int) -> bytes:
    """Exactly n bytes from s; ConnectionError if it closes first."""
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def bench(setup: Setup, args: argparse.Namespace) -> dict[str, object]:
    upstream = setup.upstream
    log_path = Path(tempfile.mkstemp(prefix="kcp-bench-", suffix=".log")[1])
    results: dict[str, object] = {"upstream": upstream, "proxy_log": str(log_path),
                                  "tls": setup.proxy_ca is not None}
    admin = setup.conf(upstream)
    with run_proxy(upstream, log_path, setup.proxy_args) as proxy:  # fresh: nothing freed later
        time.sleep(0.5)
        rss0 = proxy.rss_bytes()
        per_conn = idle_rss_per_connection(proxy, args.idle_connections, setup.proxy_ca)
        results["idle"] = {"connections": args.idle_connections,
                           "rss_kib_per_connection": round(per_conn / 1024, 1),
                           "proxy_rss_mib_before": round(rss0 / 2**20, 1)}
        print(json.dumps({"idle": results["idle"]}), flush=True)
    with run_proxy(upstream, log_path, setup.proxy_args) as proxy:
        for size, n in ((1024, args.small_count), (102_400, args.large_count)):
            mb = size * n / 1e6
            row: dict[str, float] = {"records": n, "mb": round(mb, 1), "runs": args.repeat}
            runs: dict[str, list[float]] = {}
            for _ in range(args.repeat):  # interleaved, so machine noise hits both sides
                for label, bs in (("direct", upstream), ("proxy", proxy.bootstrap)):
                    moved = transfer(setup.conf(bs), admin, n, size,
                                     proxy if label == "proxy" else None,
                                     batch_bytes=args.batch_size)
                    runs.setdefault(f"{label}_produce_mbps", []).append(moved.produce_mbps)
                    runs.setdefault(f"{label}_consume_mbps", []).append(moved.consume_mbps)
                    if moved.core_s_per_gb is not None:
                        runs.setdefault("proxy_core_s_per_gb", []).append(moved.core_s_per_gb)
                        runs.setdefault("proxy_produce_core_s_per_gb", []).append(
                            moved.produce_core_s_per_gb or 0.0)
                        runs.setdefault("proxy_consume_core_s_per_gb", []).append(
                            moved.consume_core_s_per_gb or 0.0)
                        runs.setdefault("proxy_produce_user_share", []).append(
                            moved.produce_user_share or 0.0)
                        runs.setdefault("proxy_consume_user_share", []).append(
                            moved.consume_user_share or 0.0)
            for name, values in runs.items():
                row[name] = round(statistics.median(values), 2)
            row["produce_ratio"] = round(row["proxy_produce_mbps"] / row["direct_produce_mbps"], 3)
            row["consume_ratio"] = round(row["proxy_consume_mbps"] / row["direct_consume_mbps"], 3)
            results[f"size_{size}"] = row
            print(json.dumps({f"size_{size}": row}), flush=True)
        lat: dict[str, float] = {"samples": args.latency_count,
                                 "background_mbps": args.load_mbps}
        for label, bs in (("direct", upstream), ("proxy", proxy.bootstrap)):
            p50, p99 = latency_under_load(setup.conf(bs), admin, args.latency_count,
                                          args.load_mbps)
            lat[f"{label}_p50_ms"], lat[f"{label}_p99_ms"] = round(p50, 3), round(p99, 3)
        lat["added_p50_ms"] = round(lat["proxy_p50_ms"] - lat["direct_p50_ms"], 3)
        lat["added_p99_ms"] = round(lat["proxy_p99_ms"] - lat["direct_p99_ms"], 3)
        results["latency_1KiB"] = lat
        print(json.dumps({"latency_1KiB": lat}), flush=True)
        if args.rate > 0:
            results["paced_1KiB"] = paced_phase(setup, admin, proxy, args)
            print(json.dumps({"paced_1KiB": results["paced_1KiB"]}), flush=True)
    return results


def paced_phase(setup: Setup, admin: dict[str, Any], proxy: ProxyProcess,
                args: argparse.Namespace) -> dict[str, Any]:
    """`paced` direct and through the proxy, interleaved `--repeat` times on fresh topics:
    medians, the added p50/p99 (each repetition's proxy minus its direct), the proxy's CPU."""
    runs: dict[str, list[float]] = {}
    for _ in range(args.repeat):
        got = {}
        for label, bs in (("direct", setup.upstream), ("proxy", proxy.bootstrap)):
            topic = create_topic(admin)
            got[label] = paced(setup.conf(bs), topic, args.rate, args.rate_seconds, 1024,
                               proxy if label == "proxy" else None, args.rate_linger_ms)
            drop_topic(admin, topic)
            for key, value in got[label].items():
                runs.setdefault(f"{label}_{key}", []).append(value)
        runs.setdefault("added_p50_ms", []).append(got["proxy"]["p50_ms"] - got["direct"]["p50_ms"])
        runs.setdefault("added_p99_ms", []).append(got["proxy"]["p99_ms"] - got["direct"]["p99_ms"])
    row: dict[str, Any] = {"rate": args.rate, "seconds": args.rate_seconds,
                           "linger_ms": args.rate_linger_ms, "runs": args.repeat}
    for name, values in runs.items():
        row[name] = round(statistics.median(values), 3)
        if name in ("added_p50_ms", "proxy_core_s_per_gb"):
            row[f"{name}_all"] = [round(v, 3) for v in values]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", help="real cluster; default: start a local broker")
    ap.add_argument("--small-count", type=int, default=100_000, help="1 KiB records")
    ap.add_argument("--large-count", type=int, default=2_000, help="100 KiB records")
    ap.add_argument("--latency-count", type=int, default=2_000)
    ap.add_argument("--load-mbps", type=float, default=5.0,
                    help="background produce load during the latency phase (0: none)")
    ap.add_argument("--idle-connections", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3, help="runs per phase; medians reported")
    ap.add_argument("--batch-size", type=int, default=BATCH_BYTES,
                    help="the producer's batch.size (16384: librdkafka's default, many "
                         "medium Produce requests instead of few large ones)")
    ap.add_argument("--rate", type=float, default=20_000,
                    help="records a second of the paced phase (1 KiB records produced as "
                         "they come due); 0: no paced phase")
    ap.add_argument("--rate-seconds", type=float, default=5.0,
                    help="length of each paced run")
    ap.add_argument("--rate-linger-ms", type=float, default=1.0,
                    help="the paced producer's linger.ms")
    ap.add_argument("--tls", action="store_true", help="TLS on every connection: a local "
                    "broker's SSL listener direct, a TLS <-> TLS proxy in front of it")
    args = ap.parse_args()
    if args.tls and args.bootstrap:
        ap.error("--tls starts its own local broker with an SSL listener; drop --bootstrap")
    sys.path.insert(0, str(ROOT))
    if args.tls:
        results = bench_tls(args)
    elif args.bootstrap:
        results = bench(Setup(args.bootstrap), args)
    else:
        from kafka_chaos_proxy.proxy.real_kafka import provide_kafka

        with provide_kafka() as cluster:
            results = bench(Setup(cluster.bootstrap_servers), args)
    print(json.dumps(results, indent=2))


def bench_tls(args: argparse.Namespace) -> dict[str, object]:
    """`bench` with TLS everywhere: the broker's SSL listener (which wants a client
    certificate) direct, and a self-signed TLS listener of the proxy in front of it."""
    from kafka_chaos_proxy.proxy.real_kafka.provider import provide_secured_kafka

    with provide_secured_kafka() as cluster, tempfile.TemporaryDirectory(
            prefix="kcp-bench-tls-") as tmp:
        tls = cluster.tls
        self_signed = Path(tmp) / "self-signed"
        direct = {"security.protocol": "SSL", "ssl.ca.location": str(tls.ca_file),
                  "ssl.certificate.location": str(tls.client_cert_file),
                  "ssl.key.location": str(tls.client_key_file)}
        proxy_ca = self_signed / "ca.pem"  # made by the proxy at start-up
        setup = Setup(
            upstream=cluster.ssl_bootstrap_servers, direct=direct,
            proxied={"security.protocol": "SSL", "ssl.ca.location": str(proxy_ca)},
            proxy_args=["--upstream-tls-ca", str(tls.ca_file),
                        "--upstream-tls-cert", str(tls.client_cert_file),
                        "--upstream-tls-key", str(tls.client_key_file),
                        "--tls-self-signed", "--tls-self-signed-dir", str(self_signed)],
            proxy_ca=proxy_ca)
        return bench(setup, args)



if __name__ == "__main__":
    main()
