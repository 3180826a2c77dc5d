"""`kafka-chaos-proxy decode` on real encoded frames and on bad input."""

from __future__ import annotations

import base64
import json
import struct
import uuid
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.proxy.cli import decode as decode_cli

runner = CliRunner()


def _app() -> typer.Typer:
    """An app holding the command the way proxy.cli's does, forced into group mode so that
    `decode` is a subcommand however many other commands the real app has."""
    app = typer.Typer(add_completion=False)
    app.callback()(lambda: None)
    decode_cli.register(app)
    return app


app = _app()

METADATA = b"\x00\x00\x00\x00\x00\x01\x00\x01a"
JOIN_V5 = {
    "group_id": "orders-consumers",
    "session_timeout_ms": 45000,
    "rebalance_timeout_ms": 300000,
    "member_id": "",
    "group_instance_id": None,
    "protocol_type": "consumer",
    "protocols": [{"name": "range", "metadata": METADATA}],
}
BODY = codec.encode_body(11, 5, codec.Direction.REQUEST, JOIN_V5)
FRAME_BODY = codec.encode_request_header(11, 5, 77, "rdkafka") + BODY
FRAME = struct.pack(">i", len(FRAME_BODY)) + FRAME_BODY


def run(args: list[str], stdin: bytes | str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, ["decode", *args], input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_decodes_binary_body_from_stdin() -> None:
    code, out, err = run(["--api", "JoinGroup", "--version", "5", "--request", "-"], BODY)
    assert code == 0, err
    body = json.loads(out)
    assert body["group_id"] == "orders-consumers"
    assert body["session_timeout_ms"] == 45000
    assert body["protocols"][0] == {"name": "range", "metadata": METADATA.hex()}


def test_hex_input_from_file_and_numeric_api(tmp_path: Path) -> None:
    path = tmp_path / "join.hex"
    spaced = " ".join(BODY.hex()[i : i + 8] for i in range(0, len(BODY.hex()), 8))
    path.write_text(spaced + "\n")
    code, out, err = run(["--api", "11", "--version", "5", "--request", "--hex", str(path)])
    assert code == 0, err
    assert json.loads(out)["protocol_type"] == "consumer"


def test_bytes_as_base64() -> None:
    code, out, _ = run(
        ["--api", "JoinGroup", "--version", "5", "--request", "--bytes-as", "base64"], BODY
    )
    assert code == 0
    metadata = json.loads(out)["protocols"][0]["metadata"]
    assert base64.b64decode(metadata) == METADATA


def test_whole_request_frame_takes_api_and_version_from_header() -> None:
    code, out, err = run(["--frame", "--show-header"], FRAME)
    assert code == 0, err
    decoded = json.loads(out)
    assert decoded["header"] == {
        "api_key": 11, "api_version": 5, "correlation_id": 77, "client_id": "rdkafka",
    }
    assert decoded["body"]["group_id"] == "orders-consumers"


def test_frame_prints_body_by_default() -> None:
    code, out, _ = run(["--frame", "--hex"], FRAME.hex())
    assert code == 0
    assert json.loads(out)["member_id"] == ""


def test_response_frame_with_flexible_header() -> None:
    body = {"throttle_time_ms": 0, "error_code": 0, "assignment": b"\x00\x01"}
    frame = codec.encode_response_header(14, 5, 9) + codec.encode_body(
        14, 5, codec.Direction.RESPONSE, {**body, "protocol_type": "consumer",
                                          "protocol_name": "range"}
    )
    data = struct.pack(">i", len(frame)) + frame
    code, out, err = run(
        ["--frame", "--response", "--api", "SyncGroup", "--version", "5", "--show-header"], data
    )
    assert code == 0, err
    decoded = json.loads(out)
    assert decoded["header"] == {"correlation_id": 9}
    assert decoded["body"]["assignment"] == "0001"


def test_uuid_printed_as_text() -> None:
    topic_id = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
    body = codec.encode_body(
        3, 12, codec.Direction.REQUEST,
        {"topics": [{"topic_id": uuid.UUID(topic_id), "name": None}],
         "allow_auto_topic_creation": False, "include_topic_authorized_operations": False},
    )
    code, out, _ = run(["--api", "Metadata", "--version", "12", "--request"], body)
    assert code == 0
    assert json.loads(out)["topics"][0]["topic_id"] == topic_id


def one_line_error(args: list[str], stdin: bytes | str) -> str:
    code, out, err = run(args, stdin)
    assert code == 2, (code, out, err)
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_truncated_body_names_field_and_offset() -> None:
    line = one_line_error(["--api", "JoinGroup", "--version", "5", "--request"], BODY[:-3])
    assert "protocols" in line
    assert "offset" in line


def test_length_beyond_input_names_field_and_offset() -> None:
    # group_id claims 0x7fff bytes; only a few follow.
    line = one_line_error(["--api", "Heartbeat", "--version", "0", "--request"], b"\x7f\xffabc")
    assert "group_id" in line
    assert "offset" in line


def test_bad_hex() -> None:
    line = one_line_error(["--api", "11", "--version", "5", "--request", "--hex"], "zz12")
    assert "hex" in line


@pytest.mark.parametrize(
    "args",
    [
        ["--api", "NoSuchApi", "--version", "1", "--request"],
        ["--api", "JoinGroup", "--version", "99", "--request"],
        ["--api", "JoinGroup", "--version", "5"],
        ["--api", "JoinGroup", "--request", "--response", "--version", "5"],
        ["--request"],
        ["--frame", "--response"],
    ],
)
def test_bad_arguments_are_one_line(args: list[str]) -> None:
    one_line_error(args, BODY)


def test_frame_size_prefix_mismatch() -> None:
    line = one_line_error(["--frame"], FRAME[:-1])
    assert "offset 0" in line


def test_missing_file() -> None:
    line = one_line_error(["--api", "11", "--version", "5", "--request", "/no/such/file"], "")
    assert "/no/such/file" in line


def test_bad_body_inside_a_frame_says_where_the_body_starts() -> None:
    broken = FRAME_BODY[:-3]
    line = one_line_error(["--frame"], struct.pack(">i", len(broken)) + broken)
    header_size = len(FRAME_BODY) - len(BODY)
    assert f"body starts at input offset {4 + header_size}" in line
    assert "protocols" in line
