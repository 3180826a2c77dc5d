"""Run Apache Kafka in KRaft mode as local JVM processes, straight from the Maven jars.

Why local processes: there is no Docker engine on the machines this project runs on, yet
tests must talk to a real broker. Every node is a combined broker+controller; with three
nodes they form a three-voter quorum, which is what coordinator-failover tests need. All
listeners bind 127.0.0.1 on free ports, data lives in a temp dir, and start-up is declared
done only after a Metadata round trip lists every node. With `security` every node also gets
an SSL (mTLS) and a SASL_SSL listener (`proxy.real_kafka.security`).
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from kafka_chaos_proxy.proxy.real_kafka import procs
from kafka_chaos_proxy.proxy.real_kafka.maven import (
    MAVEN_INSTALL_HINT,
    cache_root,
    fetch_classpath,
    is_cached,
)
from kafka_chaos_proxy.proxy.real_kafka.probe import metadata_brokers
from kafka_chaos_proxy.proxy.real_kafka.security import (
    ADVERTISED_HOST,
    Secured,
    TlsFiles,
    listener_properties,
    scram_format_args,
    write_tls_files,
)
from kafka_chaos_proxy.proxy.real_kafka.versions import (
    DEFAULT_KAFKA_VERSION,
    SUPPORTED_VERSIONS,
    distribution,
)

__all__ = [
    "DEFAULT_KAFKA_VERSION",
    "SUPPORTED_VERSIONS",
    "BrokerStartError",
    "ExtraListener",
    "LocalKraftCluster",
    "MissingToolError",
    "check_tools",
]

#: Generous because a cold JVM on a loaded 2-core machine is slow; the loop also stops as
#: soon as the process dies, so a broken config fails fast.
START_TIMEOUT_S = 180.0
_FORMAT_TIMEOUT_S = 120.0
_POLL_INTERVAL_S = 0.25

#: Overridable through KCP_KAFKA_JAVA_OPTS. C1-only JIT and serial GC start faster and use
#: less CPU, which matters more for tests than peak throughput (benchmarks can override).
DEFAULT_JAVA_OPTS = (
    "-Xms128m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true"
)


class BrokerStartError(RuntimeError):
    """A local node did not come up; the message names its log file."""


class MissingToolError(BrokerStartError):
    """Java or Maven is not installed: the one-line message names the tool and how to get it.
    Raised before anything is created, so nothing is left to clean up."""


#: The packages that bring both tools on Debian/Ubuntu (the machines this project runs on).
JAVA_INSTALL_HINT = "install a JDK 17+, e.g. `apt-get install openjdk-17-jre-headless`"
BOTH_INSTALL_HINT = "install them, e.g. `apt-get install openjdk-17-jre-headless maven`"


#: Another process can grab a probed-free port before the JVM binds it (other engineers'
#: brokers and tests share the machine); such a start is retried on fresh ports.
_BIND_ATTEMPTS = 3


def _free_ports(count: int) -> list[int]:
    """Distinct free loopback ports: all sockets stay open until every port is picked."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(sock)
            sock.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for sock in socks:
            sock.close()


def new_cluster_id(random_bytes: Callable[[int], bytes] = os.urandom) -> str:
    """16 random bytes, URL-safe base64 without padding: the format KRaft expects.

    An id starting with "-" is drawn again, as Kafka's own Uuid.randomUuid() does: the storage
    tool's argument parser would read it as an option ("--cluster-id expected one argument").
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(random_bytes(16)).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _find_java() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def _java() -> str:
    found = _find_java()
    if found is None:
        raise MissingToolError(f"java not found on PATH nor in JAVA_HOME: {JAVA_INSTALL_HINT}")
    return found


def check_tools(version: str | None = None) -> None:
    """Fail before any temp dir or process exists when a local broker cannot start here:
    Java always, Maven only while the jars of `version` are not in the cache yet."""
    dist = distribution(version or DEFAULT_KAFKA_VERSION)
    java = _find_java() is not None
    mvn = shutil.which("mvn") is not None or is_cached(list(dist.artifacts), dist.cache_name)
    if not java and not mvn:
        raise MissingToolError(
            "java and mvn not found on PATH (a local Kafka broker runs on Java; Maven fetches "
            f"its jars once into {cache_root()}): {BOTH_INSTALL_HINT}")
    if not java:
        _java()
    if not mvn:
        raise MissingToolError(f"mvn not found on PATH (needed once to fetch the Kafka "
                               f"{dist.version} jars into {cache_root()}): {MAVEN_INSTALL_HINT}")


@dataclass(frozen=True)
class ExtraListener:
    """One more PLAINTEXT listener on a one-node cluster: bound to 127.0.0.1:`port`, and
    advertised to clients as `advertised` (host:port) instead of its own address.

    Why: a plain TCP proxy (one that does not rewrite Metadata) in front of a broker works only
    if the broker tells clients to come back through that proxy, i.e. advertises the proxy's
    address on the listener the proxy forwards to. The usual PLAINTEXT listener stays as it is
    (inter-broker traffic, start-up probes, direct clients). `name` is the listener's name in
    `listeners` (letters, digits, underscores; not PLAINTEXT, CONTROLLER, SSL or SASL_SSL)."""

    name: str
    port: int
    advertised: str

    def __post_init__(self) -> None:
        if not self.name.replace("_", "").isalnum() or not self.name.isupper():
            raise ValueError(f"listener name {self.name!r}: upper-case letters, digits and _")
        if self.name in _OWN_LISTENERS:
            raise ValueError(f"listener name {self.name!r} is one of the cluster's own")
        host, sep, port = self.advertised.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"advertised address {self.advertised!r}: expected host:port")


_OWN_LISTENERS = frozenset({"PLAINTEXT", "CONTROLLER", "SSL", "SASL_SSL"})


@dataclass
class _Node:
    node_id: int
    broker_port: int
    controller_port: int
    workdir: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    ssl_port: int | None = None  # secured clusters only
    sasl_ssl_port: int | None = None
    extra_listeners: tuple[ExtraListener, ...] = ()

    @property
    def config_path(self) -> Path:
        return self.workdir / "server.properties"

    @property
    def log_path(self) -> Path:
        return self.workdir / "server.log"

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def _listeners(node: _Node) -> dict[str, str]:
    """listeners, advertised.listeners and the protocol map of one node."""
    listeners = [f"PLAINTEXT://127.0.0.1:{node.broker_port}",
                 f"CONTROLLER://127.0.0.1:{node.controller_port}"]
    advertised = [f"PLAINTEXT://127.0.0.1:{node.broker_port}"]
    protocols = ["PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT"]
    for name, port in (("SSL", node.ssl_port), ("SASL_SSL", node.sasl_ssl_port)):
        if port is not None:
            listeners.append(f"{name}://127.0.0.1:{port}")
            advertised.append(f"{name}://{ADVERTISED_HOST}:{port}")
            protocols.append(f"{name}:{name}")
    for extra in node.extra_listeners:
        listeners.append(f"{extra.name}://127.0.0.1:{extra.port}")
        advertised.append(f"{extra.name}://{extra.advertised}")
        protocols.append(f"{extra.name}:PLAINTEXT")
    return {"listeners": ",".join(listeners), "advertised.listeners": ",".join(advertised),
            "listener.security.protocol.map": ",".join(protocols)}


def _render_properties(
    node: _Node, voters: str, node_count: int, overrides: dict[str, str]
) -> str:
    replication = str(min(node_count, 3))
    props: dict[str, str] = {
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        "controller.quorum.voters": voters,
        **_listeners(node),
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(node.data_dir),
        "num.partitions": "1",
        "default.replication.factor": replication,
        "offsets.topic.replication.factor": replication,
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": replication,
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": replication,
        "share.coordinator.state.topic.min.isr": "1",
        "min.insync.replicas": "1",
        "auto.create.topics.enable": "true",
        "group.initial.rebalance.delay.ms": "0",
        "group.min.session.timeout.ms": "1000",
        "group.consumer.min.session.timeout.ms": "1000",
        "group.consumer.min.heartbeat.interval.ms": "500",
        "group.consumer.session.timeout.ms": "10000",
        "group.consumer.heartbeat.interval.ms": "1000",
        # Fence a dead node in a few seconds so failover tests do not wait the 9 s default.
        "broker.heartbeat.interval.ms": "500",
        "broker.session.timeout.ms": "3000",
        "log.flush.interval.messages": "9223372036854775807",
        "num.network.threads": "2",
        "num.io.threads": "4",
    }
    props.update(overrides)
    return "".join(f"{key}={value}\n" for key, value in props.items())


class LocalKraftCluster:
    """One or three KRaft nodes run from the official jars; implements `NodeControl`."""

    def __init__(
        self,
        nodes: int = 1,
        version: str | None = None,
        *,
        overrides: dict[str, str] | None = None,
        workdir: Path | None = None,
        start_timeout_s: float = START_TIMEOUT_S,
        security: Secured | None = None,
        extra_listeners: tuple[ExtraListener, ...] = (),
    ) -> None:
        """`extra_listeners`: further PLAINTEXT listeners with an advertised address of their
        own (`ExtraListener`), one-node clusters only (each node would need its own)."""
        if nodes < 1 or nodes > 9:
            raise ValueError("nodes must be between 1 and 9")
        if extra_listeners and nodes != 1:
            raise ValueError("extra_listeners are for one-node clusters")
        if len({e.name for e in extra_listeners}) != len(extra_listeners):
            raise ValueError("extra_listeners need distinct names")
        self.dist = distribution(version or DEFAULT_KAFKA_VERSION)
        check_tools(self.dist.version)  # before the temp dir: a missing tool leaves nothing
        self.node_count = nodes
        self.overrides = {**dict(self.dist.properties), **(overrides or {})}
        self.start_timeout_s = start_timeout_s
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="kcp-kafka-"))
        self.cluster_id = new_cluster_id()
        self._keep_dir = bool(os.environ.get("KCP_KEEP_KAFKA_DIR")) or not self._own_workdir
        procs.remove_on_exit(self.workdir, enabled=not self._keep_dir)
        self.nodes: dict[int, _Node] = {}
        self.lib: Path | None = None
        self.security = security
        self.extra_listeners = tuple(extra_listeners)
        self.tls_files: TlsFiles | None = None

    @property
    def version(self) -> str:
        return self.dist.version

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"127.0.0.1:{n.broker_port}" for n in self.nodes.values())

    @property
    def ssl_bootstrap_servers(self) -> str:
        """The SSL (mTLS) listeners, as clients reach them (secured clusters only)."""
        return ",".join(f"{ADVERTISED_HOST}:{n.ssl_port}" for n in self.nodes.values()
                        if n.ssl_port is not None)

    @property
    def sasl_ssl_bootstrap_servers(self) -> str:
        """The SASL_SSL listeners, as clients reach them (secured clusters only)."""
        return ",".join(f"{ADVERTISED_HOST}:{n.sasl_ssl_port}" for n in self.nodes.values()
                        if n.sasl_ssl_port is not None)

    def log_paths(self) -> list[Path]:
        return [n.log_path for n in self.nodes.values()]

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Fetch jars (cached), write configs, format storage, start every node, wait."""
        jars = fetch_classpath(list(self.dist.artifacts), self.dist.cache_name)
        self.lib = jars[0].parent
        self._log_config = self.workdir / self.dist.log_config_resource
        resource = resources.files(__package__ or "kafka_chaos_proxy.proxy.real_kafka").joinpath(
            self.dist.log_config_resource)
        self._log_config.write_text(resource.read_text())
        if self.security is not None and self.tls_files is None:
            self.tls_files = write_tls_files(self.security.tls_dir or self.workdir / "tls")
            self.overrides = {**listener_properties(self.tls_files, self.security),
                              **self.overrides}
        for attempt in range(1, _BIND_ATTEMPTS + 1):
            self._prepare_nodes()
            try:
                self._format_all()
                for node in self.nodes.values():
                    self._launch(node)
                self._wait_ready(list(self.nodes))
                return
            except BrokerStartError:
                if attempt == _BIND_ATTEMPTS or not self._lost_port_race():
                    raise
                self._stop_nodes()

    def _prepare_nodes(self) -> None:
        """Pick ports, write each node's server.properties into a fresh node folder."""
        per_node = 2 if self.security is None else 4
        ports = _free_ports(per_node * self.node_count)
        self.nodes = {}
        for node_id in range(1, self.node_count + 1):
            mine = ports[per_node * (node_id - 1):per_node * node_id]
            node = _Node(node_id, mine[0], mine[1], self.workdir / f"node-{node_id}",
                         extra_listeners=self.extra_listeners)
            if self.security is not None:
                fixed = node_id == 1
                node.ssl_port = (self.security.ssl_port if fixed else None) or mine[2]
                node.sasl_ssl_port = (self.security.sasl_ssl_port if fixed else None) or mine[3]
            shutil.rmtree(node.workdir, ignore_errors=True)
            node.workdir.mkdir(parents=True)
            self.nodes[node_id] = node
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes.values())
        for node in self.nodes.values():
            node.config_path.write_text(
                _render_properties(node, voters, self.node_count, self.overrides)
            )

    def _lost_port_race(self) -> bool:
        return any(
            "Address already in use" in _tail(node.log_path, 200) for node in self.nodes.values()
        )

    def _stop_nodes(self) -> None:
        for node in self.nodes.values():
            if node.proc is not None:
                procs.stop(node.proc, graceful=False)
                node.proc = None

    def close(self) -> None:
        """Stop every node and drop the temp dir (kept if KCP_KEEP_KAFKA_DIR is set)."""
        self._stop_nodes()
        if not self._keep_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            procs.remove_on_exit(self.workdir, enabled=False)

    def __enter__(self) -> LocalKraftCluster:
        try:
            self.start()
        except BaseException:
            # A failed start leaves nothing behind (the error carries the log's tail);
            # KCP_KEEP_KAFKA_DIR keeps the folder the message points at, for a closer look.
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- NodeControl -----------------------------------------------------------------

    def stop_node(self, node_id: int, *, graceful: bool = True) -> None:
        node = self._node(node_id)
        if node.proc is not None:
            procs.stop(node.proc, graceful=graceful)
            node.proc = None

    def start_node(self, node_id: int) -> None:
        node = self._node(node_id)
        if node.running():
            return
        self._launch(node)
        self._wait_ready([node_id], via=[node_id])

    def is_running(self, node_id: int) -> bool:
        return self._node(node_id).running()

    # -- internals -------------------------------------------------------------------

    def _node(self, node_id: int) -> _Node:
        try:
            return self.nodes[node_id]
        except KeyError:
            raise KeyError(f"no node {node_id}; nodes are {sorted(self.nodes)}") from None

    def _classpath(self) -> str:
        assert self.lib is not None
        return f"{self.lib}/*"

    def _java_base(self, node: _Node) -> list[str]:
        opts = os.environ.get("KCP_KAFKA_JAVA_OPTS", DEFAULT_JAVA_OPTS).split()
        return [
            _java(),
            *opts,
            self.dist.log_config_flag(str(self._log_config)),
            f"-Dkafka.logs.dir={node.workdir}",
            "-cp",
            self._classpath(),
        ]

    def _format_all(self) -> None:
        """Format every node's storage in parallel (each is a JVM start of its own)."""
        running: list[tuple[_Node, subprocess.Popen[bytes]]] = []
        for node in self.nodes.values():
            cmd = [
                *self._java_base(node),
                "kafka.tools.StorageTool",
                "format",
                "-t",
                self.cluster_id,
                "-c",
                str(node.config_path),
                "--ignore-formatted",
                *self.dist.format_args,
                *(scram_format_args(self.security) if self.security is not None else ()),
            ]
            running.append((node, procs.spawn(cmd, log_path=node.log_path, cwd=node.workdir)))
        deadline = time.monotonic() + _FORMAT_TIMEOUT_S
        for node, proc in running:
            try:
                code = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                code = None
            procs.stop(proc, graceful=False)
            if code != 0:
                raise BrokerStartError(
                    f"formatting storage of node {node.node_id} failed (exit {code}); "
                    f"{self._see(node.log_path)}\n{_tail(node.log_path)}"
                )

    def _launch(self, node: _Node) -> None:
        cmd = [*self._java_base(node), "kafka.Kafka", str(node.config_path)]
        node.proc = procs.spawn(cmd, log_path=node.log_path, cwd=node.workdir)

    def _see(self, logs: object) -> str:
        """Where to look: a failed start removes its folder unless told to keep it."""
        if self._keep_dir:
            return f"see {logs}"
        return f"see {logs} (removed on failure; KCP_KEEP_KAFKA_DIR=1 keeps it)"

    def _wait_ready(self, expect: list[int], via: list[int] | None = None) -> None:
        """Poll Metadata until every node in `expect` is listed by the brokers in `via`."""
        probe_nodes = [self.nodes[i] for i in (via or expect)]
        deadline = time.monotonic() + self.start_timeout_s
        last_error = "no attempt yet"
        max_polls = int(self.start_timeout_s / _POLL_INTERVAL_S) + 1
        for _ in range(max_polls):
            for node in probe_nodes:
                if not node.running():
                    code = node.proc.poll() if node.proc else None
                    raise BrokerStartError(
                        f"Kafka node {node.node_id} exited with {code} during start-up; "
                        f"{self._see(node.log_path)}\n{_tail(node.log_path)}"
                    )
            ready = True
            for node in probe_nodes:
                try:
                    listed = {b.node_id for b in metadata_brokers("127.0.0.1", node.broker_port)}
                except OSError as exc:
                    last_error = f"node {node.node_id}: {exc!r}"
                    ready = False
                    break
                if not set(expect) <= listed:
                    last_error = f"node {node.node_id} lists {sorted(listed)}, want {expect}"
                    ready = False
                    break
            if ready:
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(_POLL_INTERVAL_S)
        logs = ", ".join(str(self.nodes[i].log_path) for i in expect)
        raise BrokerStartError(
            f"Kafka {self.version} not ready after {self.start_timeout_s:.0f}s "
            f"({last_error}); {self._see(logs)}"
        )


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
