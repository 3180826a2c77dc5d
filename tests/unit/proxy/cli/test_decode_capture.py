"""`run --capture`'s file format (`proxy.capture`) and what `decode` makes of it: the side of a
frame inferred, consumer-protocol payloads decoded, a capture read back frame by frame."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import structlog
import typer
from typer.testing import CliRunner

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.codec import consumer_protocol
from kafka_chaos_proxy.proxy.capture import (
    MAGIC,
    CaptureFormatError,
    Direction,
    FrameCapture,
    read_capture,
    resolve_apis,
)
from kafka_chaos_proxy.proxy.cli import decode as decode_cli

REQ, RESP = codec.Direction.REQUEST, codec.Direction.RESPONSE
SUBSCRIPTION = consumer_protocol.encode_subscription(
    {"version": 1, "topics": ["orders"], "user_data": None, "owned_partitions": []}, 1)
ASSIGNMENT = consumer_protocol.encode_assignment(
    {"version": 1, "assigned_partitions": [{"topic": "orders", "partitions": [0, 2]}],
     "user_data": None}, 1)


def _sized(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def join_request(version: int = 5) -> bytes:
    body = {"group_id": "orders-consumers", "session_timeout_ms": 45000,
            "rebalance_timeout_ms": 300000, "member_id": "", "group_instance_id": None,
            "protocol_type": "consumer",
            "protocols": [{"name": "range", "metadata": SUBSCRIPTION}]}
    return _sized(codec.encode_request_header(11, version, 7, "rdkafka")
                  + codec.encode_body(11, version, REQ, body))


def sync_response(version: int = 5) -> bytes:
    body = {"throttle_time_ms": 0, "error_code": 0, "protocol_type": "consumer",
            "protocol_name": "range", "assignment": ASSIGNMENT}
    return _sized(codec.encode_response_header(14, version, 8)
                  + codec.encode_body(14, version, RESP, body))


def sync_request(version: int = 5) -> bytes:
    body = {"group_id": "orders-consumers", "generation_id": 1, "member_id": "m-1",
            "group_instance_id": None, "protocol_type": "consumer", "protocol_name": "range",
            "assignments": [{"member_id": "m-1", "assignment": ASSIGNMENT}]}
    return _sized(codec.encode_request_header(14, version, 8, "rdkafka")
                  + codec.encode_body(14, version, REQ, body))


def _app() -> typer.Typer:
    app = typer.Typer(add_completion=False)
    app.callback()(lambda: None)
    decode_cli.register(app)
    return app


def run(args: list[str], stdin: bytes | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(_app(), ["decode", *args], input=stdin)
    return result.exit_code, result.stdout, result.stderr


# ---------------------------------------------------------------- the file format


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    path = tmp_path / "c.kcpcap"
    ticks = iter([100.5, 101.25])
    cap = FrameCapture(path, clock=lambda: next(ticks))
    cap.request(3, 11, 5, join_request())
    cap.response(3, 14, 5, sync_response())
    cap.close()
    assert path.read_bytes().startswith(MAGIC)
    frames = list(read_capture(path))
    assert [(f.time, f.direction, f.connection_id, f.api_key, f.api_version) for f in frames] == [
        (100.5, Direction.CLIENT_TO_BROKER, 3, 11, 5),
        (101.25, Direction.BROKER_TO_CLIENT, 3, 14, 5),
    ]
    assert frames[0].frame == join_request() and frames[1].frame == sync_response()


def test_only_the_chosen_apis_are_written(tmp_path: Path) -> None:
    path = tmp_path / "c.kcpcap"
    cap = FrameCapture(path, apis=("SyncGroup",))
    cap.request(1, 11, 5, join_request())
    cap.request(1, 14, 5, sync_request())
    cap.close()
    assert [f.api_key for f in read_capture(path)] == [14]
    with pytest.raises(ValueError, match="NoSuchApi"):
        resolve_apis(["NoSuchApi"])
    assert resolve_apis([]) is None


def test_the_size_cap_stops_capturing_with_one_warning(tmp_path: Path) -> None:
    path = tmp_path / "c.kcpcap"
    frame = join_request()
    cap = FrameCapture(path, max_bytes=len(MAGIC) + 2 * (21 + len(frame)) + 10)
    with structlog.testing.capture_logs() as logs:
        for _ in range(5):
            cap.request(1, 11, 5, frame)
    cap.close()
    assert len(list(read_capture(path))) == 2
    stopped = [e for e in logs if e["event"] == "capture_stopped"]
    assert len(stopped) == 1 and stopped[0]["reason"] == "full"
    assert "cap" in stopped[0]["detail"] and str(path) in stopped[0]["detail"]
    assert path.stat().st_size <= cap.max_bytes


def test_writes_are_buffered_until_flushed(tmp_path: Path) -> None:
    path = tmp_path / "c.kcpcap"
    cap = FrameCapture(path)
    cap.request(1, 11, 5, join_request())
    assert path.stat().st_size == 0  # still in the buffer: no write per frame
    cap.flush()
    assert len(list(read_capture(path))) == 1
    cap.close()


def test_a_foreign_or_cut_file_is_refused_with_its_offset(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.write_bytes(b"PK\x03\x04 not a capture")
    with pytest.raises(CaptureFormatError, match="not a capture"):
        list(read_capture(other))
    path = tmp_path / "c.kcpcap"
    cap = FrameCapture(path)
    cap.request(1, 11, 5, join_request())
    cap.request(1, 11, 5, join_request())
    cap.close()
    cut = tmp_path / "cut"
    cut.write_bytes(path.read_bytes()[:-5])
    frames = read_capture(cut)
    assert next(frames).api_key == 11
    with pytest.raises(CaptureFormatError, match="offset"):
        next(frames)


# ---------------------------------------------------------------- decode


def test_a_request_frame_is_recognised_without_flags() -> None:
    code, out, err = run([], join_request())
    assert code == 0, err
    body = json.loads(out)
    assert body["group_id"] == "orders-consumers"
    assert body["protocols"][0]["subscription"]["topics"] == ["orders"]
    assert "metadata" not in body["protocols"][0]


def test_a_response_frame_gets_told_what_it_needs() -> None:
    for args in ([], ["--frame"]):
        code, out, err = run(args, sync_response())
        assert code == 2 and out == ""
        assert err.startswith("error: a response needs --response --api NAME --version N"), err


def test_a_response_frame_with_its_api_decodes_the_assignment() -> None:
    code, out, err = run(["--response", "--frame", "--api", "SyncGroup", "--version", "5"],
                         sync_response())
    assert code == 0, err
    assignment = json.loads(out)["assignment"]
    assert assignment["assigned_partitions"] == [{"topic": "orders", "partitions": [0, 2]}]


def test_sync_group_request_assignments_and_raw_payloads() -> None:
    code, out, err = run(["--frame"], sync_request())
    assert code == 0, err
    member = json.loads(out)["assignments"][0]
    assert member["assignment"]["assigned_partitions"][0]["partitions"] == [0, 2]
    code, out, err = run(["--frame", "--raw-payloads"], sync_request())
    assert json.loads(out)["assignments"][0]["assignment"] == ASSIGNMENT.hex()


def test_another_protocols_payload_stays_bytes() -> None:
    body = {"group_id": "connect", "session_timeout_ms": 1, "rebalance_timeout_ms": 1,
            "member_id": "", "group_instance_id": None, "protocol_type": "connect",
            "protocols": [{"name": "sessioned", "metadata": SUBSCRIPTION}]}
    decoded = decode_cli.decode_consumer_payloads(11, REQ, body)
    assert decoded["protocols"][0]["metadata"] == SUBSCRIPTION


def test_decode_capture_prints_each_frame_and_filters_by_api(tmp_path: Path) -> None:
    path = tmp_path / "c.kcpcap"
    cap = FrameCapture(path)
    cap.request(4, 11, 5, join_request())
    cap.request(4, 14, 5, sync_request())
    cap.response(4, 14, 5, sync_response())
    cap.close()
    code, out, err = run(["--capture", str(path)])
    assert code == 0, err
    frames = [json.loads(chunk) for chunk in _objects(out)]
    assert [(f["api"], f["direction"]) for f in frames] == [
        ("JoinGroup", "client->broker"), ("SyncGroup", "client->broker"),
        ("SyncGroup", "broker->client")]
    assert frames[0]["connection"] == 4 and frames[0]["header"]["client_id"] == "rdkafka"
    assert frames[0]["body"]["protocols"][0]["subscription"]["topics"] == ["orders"]
    assert frames[2]["body"]["assignment"]["assigned_partitions"][0]["topic"] == "orders"
    code, out, _ = run(["--capture", str(path), "--api", "JoinGroup"])
    assert [json.loads(c)["api"] for c in _objects(out)] == ["JoinGroup"]


def test_decode_capture_of_a_foreign_file_is_one_line(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.write_bytes(b"nope")
    code, _, err = run(["--capture", str(other)])
    assert code == 2 and "not a capture" in err and len(err.strip().splitlines()) == 1


def _objects(text: str) -> list[str]:
    """Split concatenated pretty-printed JSON objects."""
    decoder = json.JSONDecoder()
    out, pos, text = [], 0, text.strip()
    while pos < len(text):
        obj, end = decoder.raw_decode(text, pos)
        out.append(json.dumps(obj))
        pos = end
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out
