"""Address rewriting (invariant 3) and ApiVersions clamping (invariant 4), pure."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.proxy.rewrite import (
    rewrite_describe_cluster,
    rewrite_find_coordinator,
    rewrite_metadata,
)
from kafka_chaos_proxy.proxy.versions import VERSION_CAPS, clamp_api_versions_response, clamp_range
from tests.support.wire_fakes import decode_response, response_frame

RESP = codec.Direction.RESPONSE


def route(node_id: int, host: str, port: int, rack: str | None) -> tuple[str, int]:
    return "proxy.local", 20000 + node_id


def _metadata_body(version: int) -> dict[str, Any]:
    topics: list[dict[str, Any]] = [{
        "error_code": 0, "name": f"topic-{t}", "topic_id": None, "is_internal": False,
        "partitions": [{"error_code": 0, "partition_index": p, "leader_id": p % 3,
                        "leader_epoch": 7, "replica_nodes": [0, 1, 2], "isr_nodes": [0, 1],
                        "offline_replicas": []} for p in range(6)],
        "topic_authorized_operations": -2147483648,
    } for t in range(4)]
    body: dict[str, Any] = {
        "throttle_time_ms": 3,
        "brokers": [{"node_id": i, "host": f"broker-{i}.internal", "port": 9092 + i,
                     "rack": f"r{i}"} for i in range(3)],
        "cluster_id": "cluster-x", "controller_id": 1, "topics": topics,
    }
    if version >= 10:
        for t in topics:
            t["topic_id"] = uuid.UUID("5f6a2c36-5c5e-4d1e-9b55-1f1a2b3c4d5e")
    return body


@pytest.mark.parametrize("version", range(0, 13))
def test_metadata_rewrites_brokers_and_splices_the_rest_byte_exact(version: int) -> None:
    lo, hi = codec.supported_versions(3)
    if not lo <= version <= hi:
        pytest.skip("codec does not know this version")
    frame = response_frame(3, version, 77, _metadata_body(version))
    before_prefix, off = codec.decode_body_prefix(
        3, version, RESP, frame[4 + _hsize(version):], upto="brokers")
    remainder = frame[4 + _hsize(version) + off:]

    out = rewrite_metadata(version, frame, route)

    assert out.endswith(remainder)  # topics/partitions untouched, byte for byte
    corr, after = decode_response(out, 3, version)
    assert corr == 77
    assert [(b["node_id"], b["host"], b["port"]) for b in after["brokers"]] == [
        (i, "proxy.local", 20000 + i) for i in range(3)]
    _, before = decode_response(frame, 3, version)
    for key in before:
        if key != "brokers":
            assert after[key] == before[key]
    assert len(out) - 4 == int.from_bytes(out[:4], "big")
    assert before_prefix["brokers"][0]["host"] == "broker-0.internal"


def _hsize(version: int) -> int:
    return 5 if version >= 9 else 4


@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_find_coordinator_single(version: int) -> None:
    frame = response_frame(10, version, 5, {"node_id": 2, "host": "b2", "port": 9094})
    _, body = decode_response(rewrite_find_coordinator(version, frame, route) or b"", 10,
                              version)
    assert (body["node_id"], body["host"], body["port"]) == (2, "proxy.local", 20002)


def test_find_coordinator_error_is_left_alone() -> None:
    frame = response_frame(10, 3, 5, {"error_code": 15, "node_id": -1, "host": "", "port": -1})
    assert rewrite_find_coordinator(3, frame, route) is None


@pytest.mark.parametrize("version", [4, 5, 6])
def test_find_coordinator_batched(version: int) -> None:
    coordinators = [
        {"key": "g1", "node_id": 0, "host": "b0", "port": 9092, "error_code": 0},
        {"key": "g2", "node_id": -1, "host": "", "port": -1, "error_code": 15},
        {"key": "g3", "node_id": 1, "host": "b1", "port": 9093, "error_code": 0},
    ]
    frame = response_frame(10, version, 5, {"coordinators": coordinators})
    _, body = decode_response(rewrite_find_coordinator(version, frame, route) or b"", 10,
                              version)
    assert [(c["key"], c["host"], c["port"]) for c in body["coordinators"]] == [
        ("g1", "proxy.local", 20000), ("g2", "", -1), ("g3", "proxy.local", 20001)]


@pytest.mark.parametrize("version", [0, 1])
def test_describe_cluster(version: int) -> None:
    brokers = [{"broker_id": 3, "host": "b3", "port": 9, "rack": None}]
    frame = response_frame(60, version, 9, {"brokers": brokers, "cluster_id": "c"})
    _, body = decode_response(rewrite_describe_cluster(version, frame, route) or b"", 60,
                              version)
    assert body["brokers"][0]["host"] == "proxy.local"
    assert body["brokers"][0]["port"] == 20003


def _api_versions(version: int, entries: list[tuple[int, int, int]], error: int = 0) -> bytes:
    return response_frame(18, version, 1, {"error_code": error, "api_keys": [
        {"api_key": k, "min_version": lo, "max_version": hi} for k, lo, hi in entries]})


@pytest.mark.parametrize("version", [0, 1, 2, 3, 4])
def test_api_versions_clamped_for_decoded_apis_only(version: int) -> None:
    meta_max = codec.supported_versions(3)[1]
    entries = [(0, 0, 12), (1, 0, 18), (3, 0, meta_max + 5), (11, 0, 99), (22, 0, 77),
               (999, 0, 3)]
    out = clamp_api_versions_response(version, _api_versions(version, entries))
    assert out is not None
    _, body = decode_response(out, 18, version)
    got = {e["api_key"]: (e["min_version"], e["max_version"]) for e in body["api_keys"]}
    assert got[0] == (0, VERSION_CAPS[0])
    assert got[1] == (0, VERSION_CAPS[1])
    assert got[3] == (0, meta_max)
    assert got[11] == (0, codec.supported_versions(11)[1])
    assert got[22] == (0, 77)  # pass-through API: broker's range
    assert got[999] == (0, 3)


def test_api_versions_unchanged_is_not_reencoded() -> None:
    frame = _api_versions(3, [(22, 0, 7)])
    assert clamp_api_versions_response(3, frame) is None


def test_unsupported_version_answer_is_read_as_v0() -> None:
    frame = _api_versions(0, [(3, 0, 99)], error=35)  # broker answers v0 to an unknown version
    out = clamp_api_versions_response(7, frame)
    assert out is not None
    _, body = decode_response(out, 18, 0)
    assert body["error_code"] == 35
    assert body["api_keys"][0]["max_version"] == codec.supported_versions(3)[1]


def test_describe_quorum_is_clamped_below_the_version_with_controller_endpoints() -> None:
    """v2 responses carry `nodes[].listeners[]` (controller host/port): never negotiated."""
    spec = codec.decode_body(55, 2, codec.Direction.RESPONSE, codec.encode_body(
        55, 2, codec.Direction.RESPONSE, {"nodes": [{"node_id": 1, "listeners": [
            {"name": "CONTROLLER", "host": "controller.internal", "port": 9093}]}]}))
    assert spec["nodes"][0]["listeners"][0]["host"] == "controller.internal"
    v1 = codec.encode_body(55, 1, codec.Direction.RESPONSE, {})
    assert "nodes" not in codec.decode_body(55, 1, codec.Direction.RESPONSE, v1)
    assert clamp_range(55, 0, 2) == (0, 1)
    assert clamp_range(55, 0, 1) == (0, 1)
    out = clamp_api_versions_response(3, _api_versions(3, [(55, 0, 2), (22, 0, 7)]))
    assert out is not None
    _, body = decode_response(out, 18, 3)
    got = {e["api_key"]: (e["min_version"], e["max_version"]) for e in body["api_keys"]}
    assert got == {55: (0, 1), 22: (0, 7)}


def test_clamp_range_drops_an_api_the_codec_cannot_decode_at_all() -> None:
    assert clamp_range(3, 50, 60) is None
    assert clamp_range(22, 50, 60) == (50, 60)


def test_metadata_routes_brokers_in_node_id_order() -> None:
    order: list[int] = []

    def recording(node_id: int, host: str, port: int, rack: str | None) -> tuple[str, int]:
        order.append(node_id)
        return route(node_id, host, port, rack)

    body = _metadata_body(12)
    body["brokers"].reverse()
    out = rewrite_metadata(12, response_frame(3, 12, 1, body), recording)
    assert order == [0, 1, 2]
    _, after = decode_response(out, 3, 12)
    assert [b["node_id"] for b in after["brokers"]] == [2, 1, 0]  # response order kept
    assert [b["port"] for b in after["brokers"]] == [20002, 20001, 20000]
