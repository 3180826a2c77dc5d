"""Moving a group's coordinator: the partition formula (Java's hashCode), and the admin
sequence (reassign, wait, elect, wait for the group to load) against loopback stand-ins that
keep a tiny cluster state: three "nodes" sharing one `__consumer_offsets`."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.codec import ApiKey
from kafka_chaos_proxy.lab.matrix.topology import (
    OFFSETS_TOPIC,
    ClusterView,
    PartitionState,
    TopologyControl,
    TopologyError,
    annotate_with_proxy,
    java_string_hash,
    move_coordinator,
    negotiate,
    offsets_partition,
    pick_target,
)

NOT_COORDINATOR = 16


def test_java_string_hash_matches_java() -> None:
    assert java_string_hash("") == 0
    assert java_string_hash("hello") == 99162322
    assert java_string_hash("polygenelubricants") == -(1 << 31)  # Integer.MIN_VALUE
    assert java_string_hash("\U0001F600") == 0xD83D * 31 + 0xDE00  # a surrogate pair


def test_offsets_partition_is_kafkas_formula() -> None:
    assert offsets_partition("polygenelubricants", 50) == 0  # Utils.abs(MIN_VALUE) is 0
    assert offsets_partition("hello", 50) == 99162322 % 50
    # Measured on a real 3-node cluster (offsets.topic.num.partitions=10): the leader of
    # that partition was the group's coordinator.
    assert offsets_partition("exp-group-123", 10) == 2
    assert offsets_partition("exp-group-xyz", 10) == 5
    with pytest.raises(ValueError):
        offsets_partition("g", 0)


def test_negotiate_picks_the_highest_common_version() -> None:
    _lo, hi = codec.stable_versions(ApiKey.FIND_COORDINATOR)
    assert negotiate(ApiKey.FIND_COORDINATOR, (0, hi + 5)) == hi
    assert negotiate(ApiKey.FIND_COORDINATOR, (0, 3)) == 3
    with pytest.raises(TopologyError, match="does not serve"):
        negotiate(ApiKey.FIND_COORDINATOR, None)
    with pytest.raises(TopologyError, match="no common version"):
        negotiate(ApiKey.FIND_COORDINATOR, (hi + 1, hi + 2))


def test_pick_target_is_the_next_running_in_sync_replica() -> None:
    state = PartitionState(4, leader=2, replicas=[2, 3, 1], isr=[2, 3, 1], partitions=10)
    assert pick_target(state, lambda n: True) == 3
    assert pick_target(state, lambda n: n != 3) == 1
    last = PartitionState(4, leader=3, replicas=[3, 1, 2], isr=[3, 1, 2], partitions=10)
    assert pick_target(last, lambda n: True) == 1  # wraps around
    alone = PartitionState(4, leader=1, replicas=[1, 2, 3], isr=[1], partitions=10)
    with pytest.raises(TopologyError, match="no running in-sync replica"):
        pick_target(alone, lambda n: True)


# --- a tiny cluster on loopback ----------------------------------------------------------


class State:
    def __init__(self, partitions: int = 10) -> None:
        self.lock = threading.Lock()
        self.parts = {p: [1 + (p + i) % 3 for i in range(3)] for p in range(partitions)}
        self.leaders = {p: r[0] for p, r in self.parts.items()}
        self.requests: list[str] = []
        self.pending_lists = 1  # ListPartitionReassignments reports it once as ongoing


SERVED = (ApiKey.METADATA, ApiKey.FIND_COORDINATOR, ApiKey.DESCRIBE_GROUPS,
          ApiKey.ALTER_PARTITION_REASSIGNMENTS, ApiKey.LIST_PARTITION_REASSIGNMENTS,
          ApiKey.ELECT_LEADERS)


def answer(state: State, node: int, api_key: int, body: dict[str, Any]) -> dict[str, Any]:
    with state.lock:
        state.requests.append(codec.api_name(api_key))
        if api_key == ApiKey.API_VERSIONS:
            return {"error_code": 0, "api_keys": [
                {"api_key": int(k), "min_version": 0,
                 "max_version": codec.stable_versions(k)[1]}
                for k in (ApiKey.API_VERSIONS, *SERVED)]}
        if api_key == ApiKey.METADATA:
            return {"brokers": [], "topics": [{"name": OFFSETS_TOPIC, "error_code": 0,
                                               "partitions": [
                {"partition_index": p, "leader_id": state.leaders[p], "replica_nodes": r,
                 "isr_nodes": sorted(r), "error_code": 0}
                for p, r in state.parts.items()]}]}
        if api_key == ApiKey.FIND_COORDINATOR:
            group = body["coordinator_keys"][0]
            leader = state.leaders[offsets_partition(group, len(state.parts))]
            return {"coordinators": [{"key": group, "node_id": leader, "host": "127.0.0.1",
                                      "port": 1, "error_code": 0}]}
        if api_key == ApiKey.DESCRIBE_GROUPS:
            group = body["groups"][0]
            leads = state.leaders[offsets_partition(group, len(state.parts))] == node
            return {"groups": [{"group_id": group, "error_code": 0 if leads else
                                NOT_COORDINATOR, "group_state": "Stable" if leads else ""}]}
        if api_key == ApiKey.ALTER_PARTITION_REASSIGNMENTS:
            for t in body["topics"]:
                for p in t["partitions"]:
                    state.parts[p["partition_index"]] = list(p["replicas"])
            return {"error_code": 0, "responses": []}
        if api_key == ApiKey.LIST_PARTITION_REASSIGNMENTS:
            ongoing = state.pending_lists > 0
            state.pending_lists -= 1
            p = body["topics"][0]["partition_indexes"][0]
            return {"error_code": 0, "topics": [{"name": OFFSETS_TOPIC, "partitions": [
                {"partition_index": p, "replicas": state.parts[p]}]}] if ongoing else []}
        if api_key == ApiKey.ELECT_LEADERS:
            results = []
            for t in body["topic_partitions"]:
                for p in t["partitions"]:
                    state.leaders[p] = state.parts[p][0]
                    results.append({"partition_id": p, "error_code": 0})
            return {"error_code": 0, "replica_election_results": [
                {"topic": OFFSETS_TOPIC, "partition_result": results}]}
    raise AssertionError(f"unexpected api {api_key}")


def serve(listener: socket.socket, state: State, node: int) -> None:
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            try:
                while True:
                    head = conn.recv(4, socket.MSG_WAITALL)
                    if len(head) < 4:
                        break
                    frame = conn.recv(struct.unpack(">i", head)[0], socket.MSG_WAITALL)
                    header = codec.parse_request_header(frame)
                    assert header.header_size is not None
                    body = codec.decode_body(header.api_key, header.api_version, "request",
                                             frame[header.header_size:])
                    reply = answer(state, node, header.api_key, body)
                    payload = codec.encode_response_header(
                        header.api_key, header.api_version, header.correlation_id) + \
                        codec.encode_body(header.api_key, header.api_version, "response", reply)
                    conn.sendall(struct.pack(">i", len(payload)) + payload)
            except OSError:
                continue


@pytest.fixture
def cluster() -> Iterator[tuple[ClusterView, State, dict[int, bool]]]:
    state = State()
    running = {1: True, 2: True, 3: True}
    listeners: dict[int, socket.socket] = {}
    for node in running:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        listeners[node] = sock
        threading.Thread(target=serve, args=(sock, state, node), daemon=True).start()
    nodes = {n: ("127.0.0.1", s.getsockname()[1]) for n, s in listeners.items()}
    yield ClusterView(lambda: nodes, lambda n: running[n]), state, running
    for sock in listeners.values():
        sock.close()


def test_move_coordinator_reorders_replicas_elects_and_waits_for_the_group(
        cluster: tuple[ClusterView, State, dict[int, bool]]) -> None:
    view, state, _ = cluster
    group = "exp-group-123"  # partition 2 of 10: replicas [3, 1, 2], led by 3
    assert view.coordinator(group).node == 3
    record = move_coordinator(view, group)
    assert record["partition"] == f"{OFFSETS_TOPIC}-2"
    assert (record["coordinator_before"], record["coordinator_after"]) == (3, 1)
    assert record["replicas_before"] == [3, 1, 2] and record["replicas_after"] == [1, 3, 2]
    assert (record["leader_before"], record["leader_after"]) == (3, 1)
    assert view.coordinator(group).node == 1
    order = [r for r in state.requests if r != "ApiVersions"]
    assert order.index("AlterPartitionReassignments") < order.index("ElectLeaders")
    assert order.count("ListPartitionReassignments") == 2  # waited until it was done


def test_coordinator_wait_is_bounded_and_says_what_it_saw(
        cluster: tuple[ClusterView, State, dict[int, bool]]) -> None:
    view, _, _ = cluster
    with pytest.raises(TopologyError, match=r"no coordinator on node 2 .*within 0.3 s"):
        view.coordinator("exp-group-123", expect=2, timeout_s=0.3)


class FakeNodes:
    def __init__(self, running: dict[int, bool], state: State) -> None:
        self.running, self.state, self.calls = running, state, []

    def stop_node(self, node_id: int, *, graceful: bool = True) -> None:
        self.calls.append(("stop", node_id, graceful))
        self.running[node_id] = False
        with self.state.lock:  # the controller moves leadership off the dead node
            for p, replicas in self.state.parts.items():
                if self.state.leaders[p] == node_id:
                    self.state.leaders[p] = next(r for r in replicas if r != node_id)

    def start_node(self, node_id: int) -> None:
        self.calls.append(("start", node_id))
        self.running[node_id] = True

    def is_running(self, node_id: int) -> bool:
        return self.running[node_id]


def test_stop_and_restart_record_the_coordinator_before_and_after(
        cluster: tuple[ClusterView, State, dict[int, bool]]) -> None:
    view, state, running = cluster
    nodes = FakeNodes(running, state)
    control = TopologyControl("exp-group-123", view, nodes)
    control.stop_broker(1, "coordinator", "kill")
    control.restart_broker(2, "stopped")
    assert control.drain(10)
    stop, restart = control.report()
    assert nodes.calls == [("stop", 3, False), ("start", 3)]
    assert stop["error"] is None and stop["stopped_node"] == 3
    assert (stop["coordinator_before"], stop["coordinator_after"]) == (3, 1)
    assert restart["started_nodes"] == [3] and restart["coordinator_after"] == 1
    assert control.restore() == []  # nothing left down
    control.close()


def test_without_node_control_stop_is_an_error_in_the_evidence(
        cluster: tuple[ClusterView, State, dict[int, bool]]) -> None:
    view, _, _ = cluster
    control = TopologyControl("exp-group-123", view, None)
    control.stop_broker(0, 2, "graceful")
    assert control.drain(10)
    (record,) = control.report()
    assert "needs brokers the runner started" in record["error"]
    control.close()


def test_teardown_restarts_what_the_run_left_down(
        cluster: tuple[ClusterView, State, dict[int, bool]]) -> None:
    view, state, running = cluster
    nodes = FakeNodes(running, state)
    control = TopologyControl("exp-group-123", view, nodes)
    control.stop_broker(0, 2, "graceful")
    assert control.drain(10)
    assert control.report()[0]["coordinator_after"] == 3  # node 2 was not the coordinator
    assert control.restore() == [2] and running[2]
    control.close()


def test_the_proxys_answers_are_matched_to_each_action() -> None:
    records = [{"action": "move_coordinator", "started_at": 10.0, "coordinator_after": 1}]
    events = [
        {"api": "FindCoordinator", "group": "g", "coordinator": 3, "ts": 5.0},
        {"api": "FindCoordinator", "group": "other", "coordinator": 2, "ts": 11.0},
        {"api": "FindCoordinator", "group": "g", "coordinator": 3, "ts": 10.5},
        {"api": "FindCoordinator", "group": "g", "coordinator": 1, "ts": 12.0},
        {"api": "Heartbeat", "group": "g", "coordinator": None, "ts": 13.0},
    ]
    annotate_with_proxy(records, events, "g")
    (r,) = records
    assert (r["proxy_coordinator_before"], r["proxy_coordinator_after"]) == (3, 3)
    assert r["proxy_names_new_coordinator_at"] == 12.0
