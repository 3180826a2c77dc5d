"""Attacks on the admin plane, and client-chosen ids that carry terminal escape sequences to
whoever watches the proxy with the CLI."""

from __future__ import annotations

import select
import socket
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx
from typer.testing import CliRunner

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.codec import consumer_protocol
from kafka_chaos_proxy.proxy.cli import app
from tests.abuse import helpers as h

BODY_BYTES = 100 * 1000 * 1000
CHUNK = 64 * 1024


def _upload(admin_url: str, chunked: bool) -> tuple[int, int]:
    """POST a 100 MB body to /faults, raw, 64 KiB at a time, until the server answers;
    returns (HTTP status, body bytes sent before the answer)."""
    url = urlsplit(admin_url)
    assert url.hostname is not None and url.port is not None
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {BODY_BYTES}"
    head = (f"POST /faults HTTP/1.1\r\nHost: {url.hostname}:{url.port}\r\n"
            f"Content-Type: application/json\r\n{framing}\r\n\r\n").encode()
    piece = b"x" * CHUNK
    if chunked:
        piece = f"{CHUNK:x}\r\n".encode() + piece + b"\r\n"
    sent = 0
    answer = b""
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(head)
        try:
            while sent < BODY_BYTES:
                readable, _, _ = select.select([sock], [], [], 0)
                if readable:
                    break
                sock.sendall(piece)
                sent += CHUNK
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            while b"\r\n" not in answer:
                data = sock.recv(4096)
                if not data:
                    break
                answer += data
        except ConnectionResetError:
            pass
    assert answer.startswith(b"HTTP/1.1 "), f"no HTTP answer after {sent} bytes: {answer!r}"
    return int(answer.split()[1]), sent


def test_admin_plane(target: Any, well_behaved: Any, probe: Any) -> None:
    proxy = target(control=True)
    rss0 = h.rss_bytes()
    good = well_behaved(proxy.bootstrap)
    p = probe(proxy.bootstrap)
    before = p.measure(200)
    victim = {"id": "victim", "match": {"apis": ["Heartbeat"], "group_id": "nobody"},
              "action": {"type": "delay", "side": "request", "fixed_ms": 10}}
    with httpx.Client(base_url=proxy.admin_url, timeout=30) as admin:
        assert admin.post("/faults", json=victim).status_code == 201
        with p.running() as during:
            chunked = _upload(proxy.admin_url, chunked=True)
            declared = _upload(proxy.admin_url, chunked=False)
            time.sleep(0.3)
        assert chunked[0] == 413 and declared[0] == 413, (chunked, declared)
        assert declared[1] < 16 * h.MIB, "a declared 100 MB body was read before the 413"
        rebound = admin.get("/faults", headers={"Host": "attacker.example"})
        assert rebound.status_code == 403, rebound.text
        forged = admin.post("/faults/victim/disable", content=b"{}",
                            headers={"Content-Type": "text/plain",
                                     "Origin": "http://attacker.example"})
        no_origin = admin.post("/faults/victim/disable", content=b"{}",
                               headers={"Content-Type": "text/plain"})
        assert forged.status_code == 403 and no_origin.status_code == 415
        rules = admin.get("/faults").json()
    assert [(r["id"], r["enabled"]) for r in rules] == [("victim", True)]
    latency = h.assert_latency_kept(before, during, "100 MB admin bodies")
    n = good.finish()
    h.round_trip(proxy.bootstrap)
    growth = h.rss_bytes() - rss0
    assert growth < 300 * h.MIB, f"RSS grew {growth / h.MIB:.0f} MiB"
    print(f"\nABUSE admin: {latency}, chunked 100 MB -> {chunked[0]} after "
          f"{chunked[1] / h.MIB:.1f} MiB, Content-Length 100 MB -> {declared[0]} after "
          f"{declared[1] / h.MIB:.1f} MiB, Host -> {rebound.status_code}, cross-origin "
          f"text/plain -> {forged.status_code} ({no_origin.status_code} without Origin), "
          f"records {n}, RSS +{growth / h.MIB:.1f} MiB")


ESCAPE = "\x1b]0;x\x07"  # OSC 0: retitles the terminal; BEL ends it


def _join(sock: socket.socket, corr: int, body: dict[str, Any], client_id: str) -> dict[str, Any]:
    sock.sendall(h.request(11, 5, corr, body, client_id))
    frame = h.recv_frame(sock)
    return codec.decode_response(frame[4:], 11, 5)[1]


def _join_as_leader(bootstrap: str, group: str, client_id: str) -> dict[str, Any]:
    """JoinGroup v5 until the coordinator is ready and the member id is known."""
    meta = consumer_protocol.encode_subscription({"topics": ["x"], "user_data": None}, 0)
    body = {"group_id": group, "session_timeout_ms": 10000, "rebalance_timeout_ms": 10000,
            "member_id": "", "group_instance_id": None, "protocol_type": "consumer",
            "protocols": [{"name": "range", "metadata": meta}]}
    with h.connect(bootstrap) as sock:
        for corr in range(1, 100):
            reply = _join(sock, corr, body, client_id)
            code = reply["error_code"]
            if code == 79:  # MEMBER_ID_REQUIRED: join again with the id
                body["member_id"] = reply["member_id"]
            elif code in (14, 15, 16):  # coordinator loading / not available / not it
                time.sleep(0.2)
            else:
                assert code == 0, reply
                return reply
    raise AssertionError("JoinGroup never succeeded")


def test_escape_sequences_in_client_chosen_ids(target: Any, well_behaved: Any,
                                               probe: Any) -> None:
    proxy = target(control=True)
    good = well_behaved(proxy.bootstrap)
    p = probe(proxy.bootstrap)
    before = p.measure(100)
    group = f"{ESCAPE}kcp-{uuid.uuid4().hex[:6]}"
    with p.running() as during:
        joined = _join_as_leader(proxy.bootstrap, group, client_id=EVIL_CLIENT)
    assert joined["leader"] == joined["member_id"]
    runner = CliRunner()
    url = ["--admin-url", proxy.admin_url]
    tail = runner.invoke(app, ["events", "tail", "--group", group, "--since", "0",
                               "--limit", "2", *url])
    listed = runner.invoke(app, ["groups", *url])
    for result in (tail, listed):
        _assert_escaped(result)
    latency = h.assert_latency_kept(before, during, "JoinGroups with escape sequences")
    n = good.finish()
    h.round_trip(proxy.bootstrap)
    print(f"\nABUSE escapes: {latency}, events tail / groups escaped, records {n}; "
          f"tail line: {tail.output.splitlines()[-1]!r}")


EVIL_CLIENT = "\x1b[2Jevil"  # CSI 2J: clears the screen


def _assert_escaped(result: Any) -> None:
    assert result.exit_code == 0, repr(result.exception) + result.output
    assert "\\x1b]0;x\\x07kcp-" in result.output, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output, repr(result.output)


def test_groups_detail_of_an_id_with_escape_sequences(target: Any) -> None:
    proxy = target(control=True)
    group = f"{ESCAPE}kcp-{uuid.uuid4().hex[:6]}"
    _join_as_leader(proxy.bootstrap, group, client_id=EVIL_CLIENT)
    detail = CliRunner().invoke(app, ["groups", group, "--admin-url", proxy.admin_url])
    _assert_escaped(detail)
    assert "\\x1b[2Jevil" in detail.output  # the member's client id, escaped too
