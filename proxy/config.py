"""Settings of the data plane, in one immutable value.

The CLI, the tests and the benchmarks all build a `ProxyConfig`; nothing in the pipeline reads
flags or environment variables, so a test can start exactly the proxy a user would run.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path

from kafka_chaos_proxy.proxy.tls.settings import ListenerTls, UpstreamSasl, UpstreamTls

# Like the broker's socket.request.max.bytes: a client cannot make the proxy allocate more.
DEFAULT_MAX_FRAME_BYTES = 104_857_600
# Kafka clients keep at most a handful of requests in flight (5 for idempotent producers);
# 1000 leaves room for pipelining clients while bounding the per-connection slot queue.
DEFAULT_MAX_INFLIGHT = 1000
# Transport write buffer high-water mark: above it the other side stops being read.
DEFAULT_HIGH_WATER = 4 * 1024 * 1024
# Broker listeners the proxy opens at most: a Metadata response naming thousands of node ids
# (a broken or hostile upstream) must not take every file descriptor.
DEFAULT_MAX_BROKERS = 64
# Like the broker's socket.listen.backlog.size: a reconnect storm after a broker restart queues
# in the kernel instead of being refused.
DEFAULT_LISTEN_BACKLOG = 1024
# Client bytes held in memory for one connection while a frame is assembled whole (decoded
# APIs, faulted or queued requests; a cut-through frame streams and holds only its head).
# Just above max_frame_bytes, so that by default every frame a broker accepts (up to its
# socket.request.max.bytes, 100 MiB) still passes; lower it to keep decoded frames small
# while large Produce requests go on streaming up to max_frame_bytes.
DEFAULT_MAX_BUFFERED_BYTES_PER_CONNECTION = 128 * 1024 * 1024
# The same, summed over every connection of the process: four or five frames of the largest
# size at once. Past it the connection whose frame crosses the line is closed, so a burst of
# huge JoinGroups costs those connections, not the process its memory.
DEFAULT_MAX_BUFFERED_BYTES_TOTAL = 512 * 1024 * 1024
# Client connections open at once (each costs two descriptors: client and upstream), beyond
# which new ones are closed on accept; a reconnect storm must not take every descriptor.
DEFAULT_MAX_CONNECTIONS = 10_000
# Per client IP address; off by default (tests and NAT put many clients behind one address).
DEFAULT_MAX_CONNECTIONS_PER_IP: int | None = None
# No byte either way and nothing owed: closed, as the broker's connections.max.idle.ms (10
# min) would; clients close theirs after 9 minutes (their connections.max.idle.ms) first.
DEFAULT_IDLE_TIMEOUT_S: float | None = 600.0
# First byte of a frame to its last: a frame still trickling in after a minute is one its
# client gave up on (request.timeout.ms is 30 s in the Java clients), or a slowloris.
DEFAULT_REQUEST_TIMEOUT_S: float | None = 60.0
# Accept to the first complete request: clients send ApiVersions (or SaslHandshake) at once.
DEFAULT_HANDSHAKE_TIMEOUT_S: float | None = 30.0
# Coordination frames above this are forwarded (and faulted) as usual but not decoded for the
# event log and group state: decoding is work per element, and one valid OffsetCommit of
# 160,000 partitions (2.7 MiB) held the event loop for a second; at this bound the worst is
# ~15,000 partitions, ~0.1 s. A group's own traffic stays below it (a JoinGroup answer listing
# 100 members is ~100 KiB; a commit of 1,000 partitions ~25 KiB).
DEFAULT_MAX_OBSERVED_BYTES = 256 * 1024


class ListenerLimitError(OSError):
    """A broker listener the proxy will not open (over --max-brokers, or no valid port)."""


def parse_host_port(text: str, default_port: int = 9092) -> tuple[str, int]:
    """`host:port`, `[v6]:port` or bare `host` -> (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else default_port
        return host, port
    if text.count(":") == 1:
        host, port_s = text.split(":")
        return host, int(port_s)
    return text, default_port


def parse_bootstrap(text: str) -> list[tuple[str, int]]:
    """Comma-separated bootstrap list as clients accept it (`host:port`, `[v6]:port`, bare
    `host`); the one parser of bootstrap strings in the project."""
    pairs = [parse_host_port(part) for part in text.split(",") if part.strip()]
    if not pairs:
        raise ValueError(f"no host:port in {text!r}")
    return pairs


@dataclass(frozen=True)
class ProxyConfig:
    bootstrap_servers: list[tuple[str, int]]
    listen_host: str = "127.0.0.1"
    advertised_host: str | None = None  # None: same as listen_host
    port: int = 9192  # bootstrap listener; 0 = ephemeral
    port_base: int | None = None  # None: port + 1 (ephemeral when port is 0)
    node_ports: dict[int, int] = field(default_factory=dict)
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    max_inflight: int = DEFAULT_MAX_INFLIGHT
    high_water: int = DEFAULT_HIGH_WATER
    upstream_connect_timeout_s: float = 10.0
    drain_timeout_s: float = 5.0
    max_brokers: int = DEFAULT_MAX_BROKERS
    listen_backlog: int = DEFAULT_LISTEN_BACKLOG
    max_buffered_bytes_per_connection: int = DEFAULT_MAX_BUFFERED_BYTES_PER_CONNECTION
    max_buffered_bytes_total: int = DEFAULT_MAX_BUFFERED_BYTES_TOTAL
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_connections_per_ip: int | None = DEFAULT_MAX_CONNECTIONS_PER_IP
    # Timeouts in seconds; None turns one off.
    idle_timeout_s: float | None = DEFAULT_IDLE_TIMEOUT_S
    request_timeout_s: float | None = DEFAULT_REQUEST_TIMEOUT_S
    handshake_timeout_s: float | None = DEFAULT_HANDSHAKE_TIMEOUT_S
    max_observed_bytes: int = DEFAULT_MAX_OBSERVED_BYTES
    # `run --capture FILE`: write the frames of these APIs (names; empty = all) to FILE
    # (`proxy.capture`). None: no capture, and the pipeline pays one attribute check a frame.
    capture_path: Path | None = None
    capture_apis: tuple[str, ...] = ()
    # `run --fetch-events`: decode every Fetch request (up to max_observed_bytes) and tell the
    # event log which partitions each connection's fetch session covers (`proxy.fetch_sessions`),
    # and decode Metadata answers whole to name topic ids. False: the pipeline pays one boolean
    # test a frame.
    fetch_events: bool = False
    # TLS on the client side (every listener serves it) and to the brokers, each side on its
    # own, and the login of the proxy's own connections (`proxy.tls.settings`). None:
    # plaintext on that side, no login of our own (clients' SASL passes through regardless).
    listener_tls: ListenerTls | None = None
    upstream_tls: UpstreamTls | None = None
    upstream_sasl: UpstreamSasl | None = None

    @property
    def advertised(self) -> str:
        """The host clients are told to use. A wildcard listen address is not reachable as
        such, so then the machine's host name stands in (what a container peer resolves)."""
        if self.advertised_host:
            return self.advertised_host
        if self.listen_host in ("0.0.0.0", "::", ""):
            return socket.gethostname()
        return self.listen_host

    @property
    def listener_port_base(self) -> int:
        """The first broker listener's port: `port_base`, else `port` + 1; 0 (ephemeral
        broker listeners) when it is 0 or the bootstrap port itself is ephemeral (tests)."""
        if self.port_base is not None:
            return self.port_base
        return self.port + 1 if self.port else 0

    def node_listen_port(self, node_id: int, discovery_index: int) -> int:
        """Port for the listener of a broker: explicit map first, else base + index."""
        if node_id in self.node_ports:
            return self.node_ports[node_id]
        base = self.listener_port_base
        if not base:
            return 0
        port = base + discovery_index
        if port > 65535:
            raise ListenerLimitError(
                f"broker {node_id} would get port {base} + {discovery_index} = {port}, beyond "
                "65535; lower --port-base or map it with --node-port")
        return port
