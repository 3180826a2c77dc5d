"""Attacks with connections: a slowloris that trickles a frame, and more connections than the
proxy admits."""

from __future__ import annotations

import socket
import struct
import threading
import time
from typing import Any

import structlog

from tests.abuse import helpers as h


def test_slowloris_and_too_many_connections(target: Any, well_behaved: Any,
                                            probe: Any) -> None:
    limit = 50
    proxy = target(control=True, request_timeout_s=2.0, max_connections=limit)
    rss0 = h.rss_bytes()
    good = well_behaved(proxy.bootstrap)  # connected first: it keeps its connections
    p = probe(proxy.bootstrap)
    before = p.measure(200)
    timeouts0 = h.sample("kcp_connection_closes_total", reason="request_timeout")
    refusals0 = h.sample("kcp_connection_refusals_total", reason="max_connections")

    # Slowloris: a valid ApiVersions frame, one byte every 0.2 s (it would take ~10 s).
    frame = h.request(18, 3, 1, h.API_VERSIONS_BODY, "kcp-abuse-slow")
    slow_result: dict[str, float] = {}

    def slowloris() -> None:
        with h.connect(proxy.bootstrap) as sock:
            started = time.monotonic()
            try:
                for byte in frame:
                    sock.sendall(bytes([byte]))
                    time.sleep(0.2)
                slow_result["completed"] = 1
            except (BrokenPipeError, ConnectionResetError):
                pass
            if h.closed_by_peer(sock, 10):
                slow_result["closed_after_s"] = time.monotonic() - started

    with p.running() as during, structlog.testing.capture_logs() as logs:
        slow = threading.Thread(target=slowloris)
        slow.start()
        time.sleep(0.5)  # the slowloris is connected (and counted) before the crowd comes
        open_before = len(proxy.proxy.list_connections())
        crowd: list[socket.socket] = []
        for _ in range(limit + 30):
            crowd.append(h.connect(proxy.bootstrap))
        time.sleep(1.0)
        refused = [sock for sock in crowd if h.closed_by_peer(sock, 0.05)]
        slow.join(30)
        admitted = [sock for sock in crowd if sock not in refused]
        # The admitted crowd is still served (each an ApiVersions round trip).
        served = 0
        for corr, sock in enumerate(admitted, start=1):
            try:
                sock.sendall(h.request(18, 3, corr, h.API_VERSIONS_BODY, "kcp-abuse-crowd"))
                sock.settimeout(5)
                reply = h.recv_frame(sock)
                served += struct.unpack_from(">i", reply, 4)[0] == corr
            except (ConnectionError, OSError):
                pass
        for sock in crowd:
            sock.close()
    assert "completed" not in slow_result and "closed_after_s" in slow_result, slow_result
    assert slow_result["closed_after_s"] < 8.0  # 2 s timeout + 1 s sweep, with slack
    timeouts = h.sample("kcp_connection_closes_total", reason="request_timeout") - timeouts0
    refusals = h.sample("kcp_connection_refusals_total", reason="max_connections") - refusals0
    assert timeouts == 1
    expected_refusals = len(crowd) - (limit - open_before)
    assert refusals >= expected_refusals >= 30, (refusals, expected_refusals, open_before)
    assert len(refused) == refusals
    refusal_logs = [e for e in logs if e.get("event") == "connection_refused"]
    assert len(refusal_logs) == refusals and refusal_logs[0]["reason"] == "max_connections"
    timeout_logs = [e for e in logs if e.get("event") == "connection_timeout"]
    assert [e["reason"] for e in timeout_logs] == ["request_timeout"]
    latency = h.assert_latency_kept(before, during, "a slowloris and 80 connections")
    n = good.finish()
    h.round_trip(proxy.bootstrap)
    growth = h.rss_bytes() - rss0
    assert growth < 300 * h.MIB
    print(f"\nABUSE connections: {latency}, slowloris closed after "
          f"{slow_result['closed_after_s']:.1f} s (request_timeout +{timeouts:.0f}), "
          f"{len(crowd)} opened with {open_before} open: refusals +{refusals:.0f} "
          f"(expected {expected_refusals}), admitted {len(admitted)} served {served}, "
          f"records {n}, RSS +{growth / h.MIB:.1f} MiB")
