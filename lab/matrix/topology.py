"""Real topology changes for scenario steps: move a group's coordinator, stop and restart
brokers, and the brokers' own word on which node is the coordinator before and after.

How the coordinator is moved: a group's coordinator is the leader of one partition of
`__consumer_offsets`, `abs(javaHashCode(group)) % partitions` (Kafka's `Utils.abs`, the
partition count read from the topic's metadata rather than assumed). The partition's replica
list is reordered so that another in-sync replica comes first (the same replica set, so no
data moves and the reassignment completes at once), and a preferred-leader election makes that
replica the leader. The old coordinator unloads the group and answers NOT_COORDINATOR; the new
one loads it from the log; clients find it with FindCoordinator. Those are Kafka's own admin
APIs (AlterPartitionReassignments, ListPartitionReassignments, ElectLeaders), the ones
`kafka-reassign-partitions.sh` and `kafka-leader-election.sh` send, sent here with the project's
codec over a short-lived connection per request: no JVM start per step (a tool run costs
seconds of CPU on a small machine), and no client-side coordinator cache (librdkafka's admin
client keeps asking the old coordinator after a move).

What counts as "the coordinator" (ground truth): the node a broker names in FindCoordinator
*and* that answers DescribeGroups for the group without an error (a node still loading the
group answers COORDINATOR_LOAD_IN_PROGRESS). Every topology action records that before and
after it, with its timings, in the run's evidence.

Actions run one at a time on a worker thread, in the order the steps fired, so a step that
waits for a failover does not hold up the run's monitor (events, triggers, records).
"""

from __future__ import annotations

import contextlib
import queue
import socket
import struct
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from kafka_chaos_proxy.codec import (
    ApiKey,
    decode_response,
    encode_body,
    encode_request_header,
    stable_versions,
)

OFFSETS_TOPIC = "__consumer_offsets"
CLIENT_ID = "kcp-lab-topology"
REQUEST_TIMEOUT_S = 5.0
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
#: Bounds on waiting for the cluster to settle after an action.
REASSIGN_TIMEOUT_S = 30.0
ELECT_TIMEOUT_S = 30.0
COORDINATOR_TIMEOUT_S = 60.0
POLL_S = 0.1
#: How long the run's teardown waits for a topology action still under way.
DRAIN_TIMEOUT_S = 240.0

ERR_NONE = 0
ERR_ELECTION_NOT_NEEDED = 84


class TopologyError(RuntimeError):
    """A topology action could not be done; the message says which part and why."""


def java_string_hash(text: str) -> int:
    """Java's `String.hashCode()`: 31-polynomial over UTF-16 code units, signed 32-bit."""
    h = 0
    data = text.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def offsets_partition(group: str, partitions: int) -> int:
    """The `__consumer_offsets` partition whose leader coordinates `group`:
    `Utils.abs(groupId.hashCode()) % partitions` (Utils.abs maps MIN_VALUE to 0)."""
    if partitions < 1:
        raise ValueError("partitions must be >= 1")
    h = java_string_hash(group)
    return (0 if h == -(1 << 31) else abs(h)) % partitions


# --- one request over one connection --------------------------------------------------------


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks: list[bytes] = []
    while n > 0:
        chunk = sock.recv(min(n, 65536))
        if not chunk:
            raise ConnectionError("connection closed by broker")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _round_trip(sock: socket.socket, api_key: int, version: int, correlation_id: int,
                body: Mapping[str, Any]) -> dict[str, Any]:
    payload = encode_request_header(api_key, version, correlation_id, CLIENT_ID) + \
        encode_body(api_key, version, "request", dict(body))
    sock.sendall(struct.pack(">i", len(payload)) + payload)
    (size,) = struct.unpack(">i", _recv_exact(sock, 4))
    if not 4 <= size <= MAX_RESPONSE_BYTES:
        raise ConnectionError(f"implausible response size {size}")
    got, decoded = decode_response(_recv_exact(sock, size), api_key, version)
    if got != correlation_id:
        raise ConnectionError(f"correlation id {got} != {correlation_id}")
    return decoded


def negotiate(api_key: int, broker: tuple[int, int] | None) -> int:
    """The highest version both the broker and the codec speak."""
    lo, hi = stable_versions(api_key)
    if broker is None:
        raise TopologyError(f"the broker does not serve api {api_key}")
    version = min(hi, broker[1])
    if version < max(lo, broker[0]):
        raise TopologyError(f"no common version of api {api_key}: codec {lo}..{hi}, "
                            f"broker {broker[0]}..{broker[1]}")
    return version


def call(address: tuple[str, int], api_key: int, body: Mapping[str, Any],
         timeout_s: float = REQUEST_TIMEOUT_S) -> dict[str, Any]:
    """ApiVersions, then one request at the highest common version, on a fresh connection."""
    with socket.create_connection(address, timeout=timeout_s) as sock:
        sock.settimeout(timeout_s)
        versions = _round_trip(sock, ApiKey.API_VERSIONS, 0, 1, {})
        if versions.get("error_code"):
            raise ConnectionError(f"ApiVersions error {versions['error_code']}")
        ranges = {int(k["api_key"]): (int(k["min_version"]), int(k["max_version"]))
                  for k in versions.get("api_keys") or []}
        version = negotiate(api_key, ranges.get(int(api_key)))
        return _round_trip(sock, api_key, version, 2, body)


# --- the cluster as the brokers describe it -------------------------------------------------


@dataclass(frozen=True)
class PartitionState:
    partition: int
    leader: int
    replicas: list[int]
    isr: list[int]
    partitions: int  # how many partitions the topic has


@dataclass(frozen=True)
class Coordinator:
    node: int
    state: str | None
    waited_s: float


class ClusterView:
    """Admin requests to a cluster's brokers: `nodes` maps node id -> (host, port);
    `is_running` (when the runner owns the brokers) skips nodes it stopped."""

    def __init__(self, nodes: Callable[[], Mapping[int, tuple[str, int]]],
                 is_running: Callable[[int], bool] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._nodes = nodes
        self._is_running = is_running
        self._clock = clock

    def node_ids(self) -> list[int]:
        return sorted(self._nodes())

    def running(self, node: int) -> bool:
        return True if self._is_running is None else bool(self._is_running(node))

    def call_node(self, node: int, api_key: int, body: Mapping[str, Any]) -> dict[str, Any]:
        return call(self._nodes()[node], api_key, body)

    def call_any(self, api_key: int, body: Mapping[str, Any]) -> dict[str, Any]:
        """The first running node that answers."""
        errors: list[str] = []
        for node in self.node_ids():
            if not self.running(node):
                continue
            try:
                return self.call_node(node, api_key, body)
            except (OSError, ConnectionError) as exc:
                errors.append(f"node {node}: {exc}")
        raise TopologyError(f"no broker answered: {'; '.join(errors) or 'none running'}")

    # -- reads

    def partition(self, topic: str, partition: int | None = None,
                  group: str | None = None) -> PartitionState:
        """One partition's leader, replicas and ISR (by index, or the group's partition)."""
        resp = self.call_any(ApiKey.METADATA, {
            "topics": [{"name": topic}], "allow_auto_topic_creation": False})
        topics = [t for t in resp.get("topics") or [] if t.get("name") == topic]
        if not topics or topics[0].get("error_code"):
            code = topics[0].get("error_code") if topics else "missing"
            raise TopologyError(f"metadata of {topic}: error {code}")
        parts = {int(p["partition_index"]): p for p in topics[0].get("partitions") or []}
        if not parts:
            raise TopologyError(f"metadata of {topic}: no partitions")
        if partition is None:
            if group is None:
                raise ValueError("give a partition or a group")
            partition = offsets_partition(group, len(parts))
        p = parts.get(partition)
        if p is None:
            raise TopologyError(f"{topic} has no partition {partition}")
        return PartitionState(partition, int(p["leader_id"]),
                              [int(r) for r in p.get("replica_nodes") or []],
                              [int(r) for r in p.get("isr_nodes") or []], len(parts))

    def find_coordinator(self, group: str) -> int | None:
        """The node a broker names as the group's coordinator, or None (not available)."""
        resp = self.call_any(ApiKey.FIND_COORDINATOR, {
            "key": group, "key_type": 0, "coordinator_keys": [group]})
        entries = resp.get("coordinators")
        entry = entries[0] if entries else resp
        if entry.get("error_code") or int(entry.get("node_id", -1)) < 0:
            return None
        return int(entry["node_id"])

    def describe_group(self, node: int, group: str) -> tuple[int, str | None]:
        """DescribeGroups on `node`: (error code, group state)."""
        resp = self.call_node(node, ApiKey.DESCRIBE_GROUPS, {"groups": [group]})
        groups = resp.get("groups") or []
        if not groups:
            return -1, None
        return int(groups[0].get("error_code") or 0), groups[0].get("group_state")

    def coordinator(self, group: str, *, not_on: int | None = None, expect: int | None = None,
                    timeout_s: float = COORDINATOR_TIMEOUT_S) -> Coordinator:
        """Wait (bounded) for a node named by FindCoordinator that also serves the group in
        DescribeGroups; with `not_on`/`expect`, for one that is not/is that node."""
        start = self._clock()
        last = "no answer yet"
        while True:
            try:
                node = self.find_coordinator(group)
                if node is None:
                    last = "FindCoordinator: no coordinator available"
                elif not self.running(node):
                    last = f"FindCoordinator names node {node}, which is stopped"
                else:
                    code, state = self.describe_group(node, group)
                    ok = code == ERR_NONE and node != not_on and expect in (None, node)
                    if ok:
                        return Coordinator(node, state, round(self._clock() - start, 3))
                    last = f"node {node}: DescribeGroups error {code}, state {state}"
            except (OSError, ConnectionError, TopologyError) as exc:
                last = str(exc)
            if self._clock() - start >= timeout_s:
                want = f" other than {not_on}" if not_on is not None else \
                    (f" on node {expect}" if expect is not None else "")
                raise TopologyError(f"no coordinator{want} for {group} within "
                                    f"{timeout_s:g} s ({last})")
            time.sleep(POLL_S)

    # -- writes

    def reassign(self, topic: str, partition: int, replicas: list[int]) -> None:
        resp = self.call_any(ApiKey.ALTER_PARTITION_REASSIGNMENTS, {
            "timeout_ms": int(REASSIGN_TIMEOUT_S * 1000),
            "topics": [{"name": topic, "partitions": [
                {"partition_index": partition, "replicas": replicas}]}]})
        if resp.get("error_code"):
            raise TopologyError(f"AlterPartitionReassignments: error {resp['error_code']} "
                                f"{resp.get('error_message') or ''}".rstrip())
        for t in resp.get("responses") or []:
            for p in t.get("partitions") or []:
                if p.get("error_code"):
                    raise TopologyError(f"AlterPartitionReassignments {topic}-{partition}: "
                                        f"error {p['error_code']} "
                                        f"{p.get('error_message') or ''}".rstrip())

    def reassignment_pending(self, topic: str, partition: int) -> bool:
        resp = self.call_any(ApiKey.LIST_PARTITION_REASSIGNMENTS, {
            "timeout_ms": int(REQUEST_TIMEOUT_S * 1000),
            "topics": [{"name": topic, "partition_indexes": [partition]}]})
        if resp.get("error_code"):
            raise TopologyError(f"ListPartitionReassignments: error {resp['error_code']}")
        return any(p.get("partition_index") == partition
                   for t in resp.get("topics") or [] for p in t.get("partitions") or [])

    def elect_preferred(self, topic: str, partition: int) -> int:
        """A preferred-leader election for one partition; its error code (0, or
        ELECTION_NOT_NEEDED when the preferred replica already leads)."""
        resp = self.call_any(ApiKey.ELECT_LEADERS, {
            "election_type": 0, "timeout_ms": int(ELECT_TIMEOUT_S * 1000),
            "topic_partitions": [{"topic": topic, "partitions": [partition]}]})
        if resp.get("error_code"):
            raise TopologyError(f"ElectLeaders: error {resp['error_code']}")
        for t in resp.get("replica_election_results") or []:
            for p in t.get("partition_result") or []:
                if p.get("partition_id") == partition:
                    return int(p.get("error_code") or 0)
        return ERR_NONE

    def wait(self, what: str, done: Callable[[], bool], timeout_s: float) -> float:
        start = self._clock()
        while not done():
            if self._clock() - start >= timeout_s:
                raise TopologyError(f"{what}: not done within {timeout_s:g} s")
            time.sleep(POLL_S)
        return round(self._clock() - start, 3)


def pick_target(state: PartitionState, running: Callable[[int], bool]) -> int:
    """The in-sync replica to lead next: the next node id after the leader (wrapping), among
    running in-sync replicas, so that a move is reproducible."""
    candidates = sorted(n for n in state.isr if n != state.leader and running(n))
    if not candidates:
        raise TopologyError(f"{OFFSETS_TOPIC}-{state.partition}: no running in-sync replica "
                            f"besides the leader {state.leader} (isr {state.isr})")
    after = [n for n in candidates if n > state.leader]
    return (after or candidates)[0]


def move_coordinator(view: ClusterView, group: str) -> dict[str, Any]:
    """Move the group's coordinator to another broker and wait until it serves the group."""
    t0 = time.monotonic()
    before = view.coordinator(group)
    state = view.partition(OFFSETS_TOPIC, group=group)
    if state.leader != before.node:
        raise TopologyError(f"{OFFSETS_TOPIC}-{state.partition} is led by {state.leader} but "
                            f"node {before.node} coordinates {group}: the partition formula "
                            "does not match this broker")
    target = pick_target(state, view.running)
    replicas = [target] + [r for r in state.replicas if r != target]
    view.reassign(OFFSETS_TOPIC, state.partition, replicas)
    reassign_s = view.wait("reassignment", lambda: not view.reassignment_pending(
        OFFSETS_TOPIC, state.partition), REASSIGN_TIMEOUT_S)
    code = view.elect_preferred(OFFSETS_TOPIC, state.partition)
    if code not in (ERR_NONE, ERR_ELECTION_NOT_NEEDED):
        raise TopologyError(f"preferred-leader election of {OFFSETS_TOPIC}-{state.partition}: "
                            f"error {code}")
    elect_s = view.wait("leader election", lambda: view.partition(
        OFFSETS_TOPIC, state.partition).leader == target, ELECT_TIMEOUT_S)
    after = view.coordinator(group, expect=target)
    final = view.partition(OFFSETS_TOPIC, state.partition)
    return {
        "partition": f"{OFFSETS_TOPIC}-{state.partition}",
        "offsets_partitions": state.partitions,
        "replicas_before": state.replicas, "replicas_after": final.replicas,
        "leader_before": state.leader, "leader_after": final.leader,
        "coordinator_before": before.node, "coordinator_after": after.node,
        "group_state_after": after.state,
        "reassign_s": reassign_s, "elect_s": elect_s, "group_loaded_s": after.waited_s,
        "move_s": round(time.monotonic() - t0, 3),
    }


# --- one run's topology actions ---------------------------------------------------------------


class NodeControl(Protocol):
    def stop_node(self, node_id: int, *, graceful: bool = True) -> None: ...

    def start_node(self, node_id: int) -> None: ...

    def is_running(self, node_id: int) -> bool: ...


class TopologyControl:
    """The topology steps of one run, done in order on a worker thread, with their evidence.

    `control` is what stops and starts brokers (the local cluster the runner owns); without it
    only `move_coordinator` can be done, and stop/restart steps record why not.
    """

    def __init__(self, group: str, view: ClusterView, control: NodeControl | None,
                 log: Callable[[str], None] = lambda message: None) -> None:
        self.group = group
        self.view = view
        self.control = control
        self.log = log
        self.records: list[dict[str, Any]] = []
        self.stopped: list[int] = []  # nodes this run stopped, in order
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[dict[str, Any], Callable[[], dict[str, Any]]] | None] \
            = queue.Queue()
        self._pending = 0
        self._thread: threading.Thread | None = None

    # -- submitting (from the run's monitor)

    def move_coordinator(self, step: int) -> None:
        self._submit({"step": step, "action": "move_coordinator"},
                     lambda: move_coordinator(self.view, self.group))

    def stop_broker(self, step: int, node: str | int, mode: str) -> None:
        self._submit({"step": step, "action": "stop_broker", "node": node, "mode": mode},
                     lambda: self._stop(node, mode))

    def restart_broker(self, step: int, node: str | int) -> None:
        self._submit({"step": step, "action": "restart_broker", "node": node},
                     lambda: self._restart(node))

    def _submit(self, record: dict[str, Any], work: Callable[[], dict[str, Any]]) -> None:
        record["requested_at"] = time.time()
        with self._lock:
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="topology",
                                                daemon=True)
                self._thread.start()
        self._queue.put((record, work))

    def busy(self) -> bool:
        with self._lock:
            return self._pending > 0

    # -- the worker

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            record, work = item
            record["started_at"] = time.time()
            try:
                record.update(work())
                record["error"] = None
            except Exception as exc:  # evidence: the step says what did not happen
                record["error"] = f"{type(exc).__name__}: {exc}"
            record["ended_at"] = time.time()
            record["duration_s"] = round(record["ended_at"] - record["started_at"], 3)
            with self._lock:
                self.records.append(record)
                self._pending -= 1
            self.log(f"topology: {record['action']} (step {record['step']}): "
                     + (f"error {record['error']}" if record["error"] else
                        f"coordinator {record.get('coordinator_before')} -> "
                        f"{record.get('coordinator_after')} in {record['duration_s']:g} s"))

    def _need_control(self, what: str) -> NodeControl:
        if self.control is None:
            raise TopologyError(f"{what} needs brokers the runner started (a local cluster); "
                                "this cluster has no node control")
        return self.control

    def _stop(self, node: str | int, mode: str) -> dict[str, Any]:
        control = self._need_control("stop_broker")
        before = self.view.coordinator(self.group)
        target = before.node if node == "coordinator" else int(node)
        if target not in self.view.node_ids():
            raise TopologyError(f"no node {target}; nodes are {self.view.node_ids()}")
        if not control.is_running(target):
            raise TopologyError(f"node {target} is not running")
        t0 = time.monotonic()
        control.stop_node(target, graceful=mode == "graceful")
        stopped_s = round(time.monotonic() - t0, 3)
        with self._lock:
            self.stopped.append(target)
        after = self.view.coordinator(self.group, not_on=target)
        return {"stopped_node": target, "coordinator_before": before.node,
                "coordinator_after": after.node, "group_state_after": after.state,
                "stop_s": stopped_s, "failover_s": round(time.monotonic() - t0, 3)}

    def _restart(self, node: str | int) -> dict[str, Any]:
        control = self._need_control("restart_broker")
        before = self.view.coordinator(self.group)
        if node == "stopped":
            targets = [n for n in dict.fromkeys(self.stopped) if not control.is_running(n)]
        else:
            targets = [int(node)]
        if not targets:
            raise TopologyError("no broker this run stopped is down")
        t0 = time.monotonic()
        for target in targets:
            control.start_node(target)
        started_s = round(time.monotonic() - t0, 3)
        after = self.view.coordinator(self.group)
        return {"started_nodes": targets, "coordinator_before": before.node,
                "coordinator_after": after.node, "group_state_after": after.state,
                "start_s": started_s}

    # -- teardown

    def drain(self, timeout_s: float = DRAIN_TIMEOUT_S) -> bool:
        """Wait for queued actions (bounded); False if some are still under way."""
        deadline = time.monotonic() + timeout_s
        while self.busy():
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_S)
        return True

    def restore(self) -> list[int]:
        """Start every broker this run stopped that is still down, so the next run finds
        the whole cluster; returns those nodes."""
        if self.control is None:
            return []
        with self._lock:
            down = [n for n in dict.fromkeys(self.stopped) if not self.control.is_running(n)]
        for node in down:
            self.control.start_node(node)
        return down

    def close(self) -> None:
        self._queue.put(None)
        if self._thread is not None:
            with contextlib.suppress(RuntimeError):
                self._thread.join(5)

    def report(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self.records]


def proxy_coordinator_answers(events: list[dict[str, Any]], group: str) -> list[tuple[float, int]]:
    """(time, node) of every FindCoordinator answer for `group` in the proxy's events."""
    out: list[tuple[float, int]] = []
    for ev in events:
        if ev.get("api") == "FindCoordinator" and ev.get("group") == group and \
                ev.get("coordinator") is not None:
            out.append((float(ev.get("ts", 0.0)), int(ev["coordinator"])))
    return out


def annotate_with_proxy(records: list[dict[str, Any]], events: list[dict[str, Any]],
                        group: str) -> None:
    """Add what the clients were told, from the proxy's FindCoordinator events: the last
    answer before each action and the first after it (the client's view of the failover)."""
    answers = proxy_coordinator_answers(events, group)
    for record in records:
        start = float(record.get("started_at") or record.get("requested_at") or 0.0)
        before = [(t, n) for t, n in answers if t < start]
        after = [(t, n) for t, n in answers if t >= start]
        record["proxy_coordinator_before"] = before[-1][1] if before else None
        record["proxy_coordinator_after"] = after[0][1] if after else None
        record["proxy_coordinator_after_at"] = after[0][0] if after else None
        target = record.get("coordinator_after")
        named = [(t, n) for t, n in after if n == target]
        record["proxy_names_new_coordinator_at"] = named[0][0] if named else None
