"""The same load direct, through this proxy and through two peer proxies, interleaved.

Targets, in this order within every repetition (A B C D E, A B C D E, ...):
  direct        the clients talk to the broker
  proxy-0       `kafka-chaos-proxy run`, no rules
  proxy-100     `kafka-chaos-proxy run --faults FILE` with 100 rules that match no request of
                the load, so every Produce and Fetch request is tried against all of them
  toxiproxy     Toxiproxy (a plain TCP proxy), one proxy and no toxics
  kroxylicious  Kroxylicious (a Kafka protocol proxy), one virtual cluster and no filters

Each target but direct runs as one long-lived subprocess (its CPU time and RSS read from
/proc); after an untimed warm-up transfer through every target, bench/throughput.py's phases
run once per target and repetition, each phase for every target before the next phase, so
that what the machine does meanwhile hits all of them alike:
  1KiB, 100KiB  produce then consume N records of that size on a fresh topic (MB/s each way,
                the proxy process's CPU core-seconds per GB moved)
  latency       single-record produce round trips under a background load (p50/p99)
  connections   on a fresh process of the target: RSS growth per idle connection (each did
                one ApiVersions exchange), then a storm: `--storm-connections` TCP
                connections opened back to back, each completing one ApiVersions exchange,
                all held until the last, then closed (total seconds, failures)

Medians and interquartile ranges over the repetitions are reported per target; ratios to
direct and added latencies are taken per repetition (against the direct run of the same
repetition) before the median. The broker is a local Kafka started here with an extra
listener that advertises the Toxiproxy port (a TCP proxy rewrites no Metadata). Toxiproxy
and Kroxylicious are built or fetched once into the cache (bench/peer_procs.py).

    .venv/bin/python bench/peers.py                                   # 5 repetitions
    .venv/bin/python bench/peers.py --out bench/results/peers-$(date +%F).json
    .venv/bin/python bench/peers.py --targets direct,proxy-0,kroxylicious --repeat 1
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import resource
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import confluent_kafka
import peer_procs
from throughput import (
    ROOT,
    ProxyProcess,
    api_versions_request,
    free_port,
    idle_rss_per_connection,
    latency_under_load,
    recv_exact,
    run_proxy,
    transfer,
)

from kafka_chaos_proxy.proxy.real_kafka.kraft import ExtraListener, LocalKraftCluster

TARGETS = ("direct", "proxy-0", "proxy-100", "toxiproxy", "kroxylicious")
LABELS = {
    "direct": "direct",
    "proxy-0": "this proxy, 0 rules",
    "proxy-100": "this proxy, 100 rules",
    "toxiproxy": f"Toxiproxy {peer_procs.TOXIPROXY_VERSION.lstrip('v')}",
    "kroxylicious": f"Kroxylicious {peer_procs.KROXYLICIOUS_VERSION}",
}
PHASES = ("1KiB", "100KiB", "latency", "connections")
SIZES = {"1KiB": 1024, "100KiB": 102_400}
#: The listener of the bench's broker that Toxiproxy forwards to.
PEER_LISTENER = "PEER"


# --------------------------------------------------------------------------- pure helpers


@dataclass(frozen=True)
class Step:
    """One measurement of the schedule: repetition (from 0), phase, target."""

    rep: int
    phase: str
    target: str


def schedule(targets: Sequence[str], phases: Sequence[str], repeat: int) -> list[Step]:
    """Every phase for every target before the next phase, every phase before the next
    repetition: A B C D E for 1KiB, A B C D E for 100KiB, ..., then again."""
    return [Step(rep, phase, target) for rep in range(repeat) for phase in phases
            for target in targets]


def parse_targets(text: str) -> list[str]:
    """A comma-separated choice of TARGETS, put in their canonical order; direct is always
    measured (every ratio is taken against it)."""
    wanted = {t.strip() for t in text.split(",") if t.strip()}
    unknown = sorted(wanted - set(TARGETS))
    if unknown:
        raise ValueError(f"unknown target(s) {', '.join(unknown)}; choose from "
                         f"{', '.join(TARGETS)}")
    return [t for t in TARGETS if t in wanted or t == "direct"]


@dataclass(frozen=True)
class Spread:
    """Median and quartiles of one measure over the repetitions that produced it."""

    median: float
    q1: float
    q3: float
    n: int

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1

    def as_dict(self) -> dict[str, float]:
        return {"median": self.median, "q1": self.q1, "q3": self.q3, "iqr": self.iqr,
                "n": self.n}


def spread(values: Sequence[float]) -> Spread | None:
    """Median and quartiles (linear interpolation between the sorted values, as numpy's
    default and `statistics.quantiles(method="inclusive")` do); None without values."""
    if not values:
        return None
    if len(values) == 1:
        return Spread(values[0], values[0], values[0], 1)
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return Spread(median, q1, q3, len(values))


#: Measures whose ratio to direct is reported (higher is better).
RATIO_MEASURES = ("produce_1KiB_mbps", "consume_1KiB_mbps",
                  "produce_100KiB_mbps", "consume_100KiB_mbps")
#: Measures whose difference to direct is reported (added latency).
ADDED_MEASURES = ("p50_ms", "p99_ms")


def derived(runs: Mapping[str, Mapping[str, Mapping[int, float]]]
            ) -> dict[str, dict[str, dict[int, float]]]:
    """Per target, ratio_<measure> and added_<measure> for each repetition where both the
    target and direct have the measure: pairs taken within one repetition, so a slow moment
    of the machine weighs on both sides of the same pair."""
    direct = runs.get("direct", {})
    out: dict[str, dict[str, dict[int, float]]] = {}
    for target, measures in runs.items():
        mine: dict[str, dict[int, float]] = {}
        for name in RATIO_MEASURES:
            pairs = {rep: v / direct[name][rep] for rep, v in measures.get(name, {}).items()
                     if rep in direct.get(name, {}) and direct[name][rep] > 0}
            if pairs:
                mine[f"ratio_{name}"] = pairs
        for name in ADDED_MEASURES:
            pairs = {rep: v - direct[name][rep] for rep, v in measures.get(name, {}).items()
                     if rep in direct.get(name, {})}
            if pairs and target != "direct":
                mine[f"added_{name}"] = pairs
        out[target] = mine
    return out


def with_derived(runs: Mapping[str, Mapping[str, Mapping[int, float]]]
                 ) -> dict[str, dict[str, dict[int, float]]]:
    """Every measure of every target, measured and derived, by repetition."""
    extra = derived(runs)
    return {target: {**{k: dict(v) for k, v in measures.items()}, **extra.get(target, {})}
            for target, measures in runs.items()}


def summarize(runs: Mapping[str, Mapping[str, Mapping[int, float]]]
              ) -> dict[str, dict[str, Spread]]:
    """Spread of every measured and derived measure, per target."""
    out: dict[str, dict[str, Spread]] = {}
    for target, measures in with_derived(runs).items():
        out[target] = {name: s for name, values in measures.items()
                       if (s := spread([values[r] for r in sorted(values)])) is not None}
    return out


def non_matching_rules(count: int) -> list[dict[str, Any]]:
    """`count` fault rules that no request of the load matches, yet every Produce and Fetch
    request is tried against: each names those APIs (so the API check passes) and a client id
    glob no client uses (librdkafka's default client id is "rdkafka"), the last and costliest
    header check before the body. Their action (a 1 s delay) would show at once if one hit."""
    return [{"id": f"bench-nomatch-{i:03d}",
             "description": "benchmark: matches no client of the load",
             "match": {"apis": ["Produce", "Fetch"],
                       "client_id": f"bench-no-such-client-{i:03d}-*"},
             "action": {"type": "delay", "side": "request", "fixed_ms": 1000}}
            for i in range(1, count + 1)]


def _num(value: float) -> str:
    """Three significant digits or so, never in exponent form."""
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def cell(s: Spread | None, fmt: Callable[[float], str] = _num) -> str:
    """`median (Q1-Q3)`; `-` where the measure does not apply or never succeeded."""
    if s is None:
        return "-"
    if s.n == 1 or s.q1 == s.q3:
        return fmt(s.median)
    return f"{fmt(s.median)} ({fmt(s.q1)}-{fmt(s.q3)})"


def _ratio(value: float) -> str:
    return f"{value:.2f}"


def render_tables(summary: Mapping[str, Mapping[str, Spread]], targets: Sequence[str]) -> str:
    """The report's two markdown tables (throughput, then costs), one row per target."""
    head1 = ("| target | produce 1 KiB MB/s | / direct | consume 1 KiB MB/s | / direct "
             "| produce 100 KiB MB/s | / direct | consume 100 KiB MB/s | / direct |")
    lines = [head1, "|---|" + "---:|" * 8]
    for t in targets:
        s = summary.get(t, {})
        row = [LABELS[t]]
        for name in RATIO_MEASURES:
            row += [cell(s.get(name)), cell(s.get(f"ratio_{name}"), _ratio)]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "| target | CPU core-s/GB 1 KiB | CPU core-s/GB 100 KiB | consume phase "
              "core-s/GB 100 KiB | RSS KiB per idle connection | added p50 ms | added p99 ms | "
              "storm s | storm failures |",
              "|---|" + "---:|" * 8]
    for t in targets:
        s = summary.get(t, {})
        row = [LABELS[t], cell(s.get("core_s_per_gb_1KiB")), cell(s.get("core_s_per_gb_100KiB")),
               cell(s.get("consume_core_s_per_gb_100KiB")),
               cell(s.get("rss_kib_per_idle_connection")), cell(s.get("added_p50_ms")),
               cell(s.get("added_p99_ms")), cell(s.get("storm_s")),
               cell(s.get("storm_failures"), lambda v: f"{v:.0f}")]
        lines.append("| " + " | ".join(row) + " |")
    direct = summary.get("direct", {})
    lines += ["", f"Direct latency: p50 {cell(direct.get('p50_ms'))} ms, "
              f"p99 {cell(direct.get('p99_ms'))} ms. Cells: median (Q1-Q3) over the "
              "repetitions; ratios and added latencies are per repetition against direct."]
    return "\n".join(lines)


# --------------------------------------------------------------------------- the storm


@dataclass(frozen=True)
class Storm:
    """`count` connections asked for; how long opening them took; how many failed (could not
    connect, got no ApiVersions answer, or were not tried before the deadline)."""

    count: int
    seconds: float
    failures: int


def connection_storm(bootstrap: str, count: int, deadline_s: float,
                     per_connection_s: float = 10.0) -> Storm:
    """Open `count` TCP connections to `bootstrap` one after the other, each completing one
    ApiVersions exchange before the next starts, all held open until the last; then close
    them. Bounded: after `deadline_s` the remaining ones count as failures, untried."""
    host, port = bootstrap.rsplit(":", 1)
    request = api_versions_request()
    socks: list[socket.socket] = []
    failures = 0
    start = time.perf_counter()
    end = start + deadline_s
    try:
        for i in range(count):
            left = end - time.perf_counter()
            if left <= 0:
                failures += count - i
                break
            try:
                s = socket.create_connection((host, int(port)), timeout=min(per_connection_s,
                                                                            left))
            except OSError:
                failures += 1
                continue
            socks.append(s)
            try:
                s.sendall(request)
                (size,) = struct.unpack(">i", recv_exact(s, 4))
                recv_exact(s, size)
            except OSError:
                failures += 1
        seconds = time.perf_counter() - start
    finally:
        for s in socks:
            s.close()
    return Storm(count, seconds, failures)


def raise_fd_limit(needed: int) -> None:
    """Let this process (and the targets it starts, which inherit it) hold `needed` files:
    the storm keeps every connection open, and a proxy holds two sockets per connection."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise SystemExit(f"the storm needs {needed} open files, the hard limit is {hard}: "
                         "lower --storm-connections or raise `ulimit -Hn`")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


# --------------------------------------------------------------------------- the targets


@dataclass
class Bench:
    """Everything one run needs: the broker's addresses, where the peers listen, and what
    was measured so far (`runs[target][measure][rep]`; `errors` for steps that failed)."""

    args: argparse.Namespace
    upstream: str
    peer_upstream: str
    toxiproxy_port: int
    log_dir: Path
    rules_file: Path
    toxiproxy: Path | None = None
    kroxylicious_cp: str | None = None
    main: dict[str, ProxyProcess] = field(default_factory=dict)
    runs: dict[str, dict[str, dict[int, float]]] = field(default_factory=dict)
    errors: list[dict[str, object]] = field(default_factory=list)

    def launch(self, target: str, fresh_rep: int | None = None
               ) -> contextlib.AbstractContextManager[ProxyProcess]:
        """A process of `target` in the clients' path: the long-lived one, or one started
        for the connections phase of repetition `fresh_rep`, on ports of its own beside it.
        Each has a log file of its own in the log folder."""
        fresh = fresh_rep is not None
        log = self.log_dir / (f"{target}.log" if fresh_rep is None
                              else f"{target}-connections-{fresh_rep + 1}.log")
        if target == "proxy-0":
            return run_proxy(self.upstream, log)
        if target == "proxy-100":
            return run_proxy(self.upstream, log, ["--faults", str(self.rules_file)])
        if target == "toxiproxy":
            assert self.toxiproxy is not None
            # Only the long-lived one listens where the broker sends clients; a fresh one is
            # only ever asked ApiVersions, which needs no Metadata.
            port = free_port() if fresh else self.toxiproxy_port
            return peer_procs.run_toxiproxy(self.toxiproxy, port, self.peer_upstream, log)
        if target == "kroxylicious":
            assert self.kroxylicious_cp is not None
            return peer_procs.run_kroxylicious(self.kroxylicious_cp, self.upstream, log,
                                               self.args.kroxylicious_java_opts.split())
        raise ValueError(f"no process for target {target!r}")

    def bootstrap(self, target: str) -> str:
        return self.upstream if target == "direct" else self.main[target].bootstrap

    def record(self, step: Step, values: Mapping[str, float | None]) -> None:
        for name, value in values.items():
            if value is not None:
                self.runs.setdefault(step.target, {}).setdefault(name, {})[step.rep] = value

    def measure(self, step: Step) -> dict[str, float | None]:
        """One step of the schedule: its measures by name."""
        args = self.args
        conf = {"bootstrap.servers": self.bootstrap(step.target)}
        admin = {"bootstrap.servers": self.upstream}
        if step.phase in SIZES:
            size = SIZES[step.phase]
            n = args.small_count if size == 1024 else args.large_count
            moved = transfer(conf, admin, n, size, self.main.get(step.target),
                             delete_topic=True)
            return {f"produce_{step.phase}_mbps": moved.produce_mbps,
                    f"consume_{step.phase}_mbps": moved.consume_mbps,
                    f"core_s_per_gb_{step.phase}": moved.core_s_per_gb,
                    f"produce_core_s_per_gb_{step.phase}": moved.produce_core_s_per_gb,
                    f"consume_core_s_per_gb_{step.phase}": moved.consume_core_s_per_gb}
        if step.phase == "latency":
            p50, p99 = latency_under_load(conf, admin, args.latency_count, args.load_mbps)
            return {"p50_ms": p50, "p99_ms": p99}
        return self.connections(step.target, step.rep)

    def connections(self, target: str, rep: int) -> dict[str, float | None]:
        """Idle RSS and the storm, on a process of the target started for them alone (the
        long-lived one has moved gigabytes: its heap would hide what connections cost)."""
        args = self.args
        if target == "direct":
            storm = connection_storm(self.upstream, args.storm_connections, args.storm_deadline)
            return {"storm_s": storm.seconds, "storm_failures": float(storm.failures)}
        with self.launch(target, fresh_rep=rep) as proc:
            time.sleep(0.5)
            per_conn = idle_rss_per_connection(proc, args.idle_connections)
            storm = connection_storm(proc.bootstrap, args.storm_connections, args.storm_deadline)
        return {"rss_kib_per_idle_connection": per_conn / 1024, "storm_s": storm.seconds,
                "storm_failures": float(storm.failures)}


def _progress(step: Step, repeat: int, values: Mapping[str, float | None]) -> None:
    shown = " ".join(f"{k}={_num(v)}" for k, v in values.items() if v is not None)
    print(f"[{step.rep + 1}/{repeat}] {step.phase:<11} {step.target:<12} {shown}",
          file=sys.stderr, flush=True)


def warm_up(bench: Bench, targets: Sequence[str]) -> None:
    """One untimed transfer of `--warmup-count` 1 KiB records through every target before the
    schedule starts: the broker's first produce and a JVM's first seconds (Kroxylicious runs
    interpreted until its JIT compiler has seen the data path) would otherwise land on
    whichever target comes first."""
    count = bench.args.warmup_count
    if count <= 0:
        return
    admin = {"bootstrap.servers": bench.upstream}
    for target in targets:
        transfer({"bootstrap.servers": bench.bootstrap(target)}, admin, count, 1024,
                 delete_topic=True)
        print(f"[warm-up] {target}: {count} records", file=sys.stderr, flush=True)


def run(bench: Bench, targets: Sequence[str]) -> None:
    """The long-lived processes of every target, a warm-up, then the schedule, step by step.
    A failed step is recorded and the run goes on (its measure is missing from that
    repetition)."""
    with contextlib.ExitStack() as stack:
        for target in targets:
            if target != "direct":
                bench.main[target] = stack.enter_context(bench.launch(target))
        warm_up(bench, targets)
        for step in schedule(targets, PHASES, bench.args.repeat):
            try:
                values = bench.measure(step)
            except Exception as exc:  # one bad step must not cost the whole run
                bench.errors.append({"rep": step.rep, "phase": step.phase,
                                     "target": step.target, "error": repr(exc)})
                print(f"[{step.rep + 1}/{bench.args.repeat}] {step.phase:<11} "
                      f"{step.target:<12} FAILED: {exc!r}", file=sys.stderr, flush=True)
                continue
            bench.record(step, values)
            _progress(step, bench.args.repeat, values)


# --------------------------------------------------------------------------- main


def _git_commit() -> str | None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                             capture_output=True, text=True, timeout=10, check=False)
        return out.stdout.strip() or None
    return None


def meta(args: argparse.Namespace, targets: Sequence[str], kafka_version: str,
         log_dir: Path) -> dict[str, object]:
    """What a reader of the JSON needs to know about the run besides its numbers."""
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": _git_commit(), "targets": list(targets), "labels": LABELS,
        "repeat": args.repeat, "order": "per repetition, per phase: " + " ".join(targets),
        "kafka": kafka_version, "toxiproxy": peer_procs.TOXIPROXY_VERSION,
        "kroxylicious": peer_procs.KROXYLICIOUS_VERSION,
        "confluent_kafka": confluent_kafka.version(),
        "librdkafka": confluent_kafka.libversion()[0],
        "python": platform.python_version(), "cpus": os.cpu_count(),
        "load_average_start": os.getloadavg(),
        "settings": {k: v for k, v in vars(args).items()
                     if k not in ("out", "log_dir", "target_list")},
        "logs": str(log_dir),
    }


@contextlib.contextmanager
def broker(toxiproxy_port: int) -> Iterator[tuple[LocalKraftCluster, str]]:
    """A one-node local Kafka with the usual PLAINTEXT listener (direct clients, this proxy,
    Kroxylicious) and one more that advertises the Toxiproxy port: yields the cluster and
    that listener's own address, Toxiproxy's upstream."""
    peer_port = free_port()
    extra = ExtraListener(PEER_LISTENER, peer_port, f"127.0.0.1:{toxiproxy_port}")
    with LocalKraftCluster(1, extra_listeners=(extra,)) as cluster:
        yield cluster, f"127.0.0.1:{peer_port}"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5, help="repetitions (medians, IQR)")
    ap.add_argument("--targets", default=",".join(TARGETS),
                    help="comma-separated subset of " + ",".join(TARGETS))
    ap.add_argument("--warmup-count", type=int, default=20_000,
                    help="untimed 1 KiB records through every target first (0: none)")
    ap.add_argument("--small-count", type=int, default=100_000, help="1 KiB records")
    ap.add_argument("--large-count", type=int, default=2_000, help="100 KiB records")
    ap.add_argument("--latency-count", type=int, default=2_000)
    ap.add_argument("--load-mbps", type=float, default=5.0,
                    help="background produce load during the latency phase (0: none)")
    ap.add_argument("--idle-connections", type=int, default=1000)
    ap.add_argument("--storm-connections", type=int, default=5000)
    ap.add_argument("--storm-deadline", type=float, default=120.0,
                    help="seconds a storm may take; connections not tried by then fail")
    ap.add_argument("--rules", type=int, default=100,
                    help="non-matching rules of the proxy-100 target")
    ap.add_argument("--kroxylicious-java-opts", default="",
                    help="JVM options for Kroxylicious (default: the JVM's own defaults)")
    ap.add_argument("--out", type=Path, help="also write the results as JSON to this file")
    ap.add_argument("--log-dir", type=Path, help="where the targets' logs and the rules file "
                    "go (default: a new temp folder, kept and named in the results)")
    args = ap.parse_args(argv)
    try:
        args.target_list = parse_targets(args.targets)
    except ValueError as exc:
        ap.error(str(exc))
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    targets: list[str] = args.target_list
    raise_fd_limit(args.storm_connections + args.idle_connections + 4096)
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="kcp-bench-peers-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    rules_file = log_dir / "rules.json"
    rules_file.write_text(json.dumps({"rules": non_matching_rules(args.rules)}, indent=1))
    # Built before the broker starts: a first run's Go build and Maven fetch take minutes.
    toxiproxy = peer_procs.toxiproxy_binary() if "toxiproxy" in targets else None
    kroxylicious_cp = (peer_procs.kroxylicious_classpath() if "kroxylicious" in targets
                       else None)
    toxiproxy_port = free_port()
    with broker(toxiproxy_port) as (cluster, peer_upstream):
        bench = Bench(args, cluster.bootstrap_servers, peer_upstream, toxiproxy_port, log_dir,
                      rules_file, toxiproxy, kroxylicious_cp)
        info = meta(args, targets, cluster.version, log_dir)
        run(bench, targets)
    info["load_average_end"] = os.getloadavg()
    summary = summarize(bench.runs)
    print(render_tables(summary, targets))
    if bench.errors:
        print(f"\n{len(bench.errors)} step(s) failed: see `errors` in the JSON, logs in "
              f"{log_dir}")
        for err in bench.errors:
            print(f"- rep {int(str(err['rep'])) + 1} {err['phase']} {err['target']}: "
                  f"{err['error']}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        result = {"meta": info, "errors": bench.errors,
                  "summary": {t: {k: v.as_dict() for k, v in m.items()}
                              for t, m in summary.items()},
                  "runs": {t: {k: [v.get(r) for r in range(args.repeat)]
                               for k, v in m.items()}
                           for t, m in with_derived(bench.runs).items()}}
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nresults: {args.out}")
    return 1 if bench.errors else 0



if __name__ == "__main__":
    sys.exit(main())
