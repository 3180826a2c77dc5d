"""Attacks through fault rules: patterns that would backtrack, rules too big, too many, or
matching everything by accident (invariant 5: rules bounded in count and size, no work a peer
can make super-linear)."""

from __future__ import annotations

import struct
import time
from typing import Any

import httpx

from kafka_chaos_proxy.proxy.control_plane import ControlPlaneOptions
from tests.abuse import helpers as h

EVIL_ID = "a" * 30 + "b"  # ^(a+)+$ on this backtracks 2^30 steps in Python's re
MATCHING_ID = "a" * 30


def _delay_rule(rule_id: str, match: dict[str, Any], ms: int = 1) -> dict[str, Any]:
    return {"id": rule_id, "match": match,
            "action": {"type": "delay", "side": "request", "fixed_ms": ms}}


def _api_versions_times(bootstrap: str, client_id: str, n: int) -> list[float]:
    times = []
    with h.connect(bootstrap) as sock:
        for corr in range(1, n + 1):
            started = time.perf_counter()
            sock.sendall(h.request(18, 3, corr, h.API_VERSIONS_BODY, client_id))
            frame = h.recv_frame(sock)
            times.append(time.perf_counter() - started)
            assert struct.unpack_from(">i", frame, 4)[0] == corr
    return times


def test_backtracking_regex_and_a_10_mb_glob(target: Any, well_behaved: Any, probe: Any) -> None:
    proxy = target(control=True)
    rss0 = h.rss_bytes()
    good = well_behaved(proxy.bootstrap)
    p = probe(proxy.bootstrap)
    before = p.measure(200)
    with httpx.Client(base_url=proxy.admin_url, timeout=30) as admin:
        redos = _delay_rule("redos", {"apis": ["ApiVersions"], "client_id_regex": "^(a+)+$"})
        assert admin.post("/faults", json=redos).status_code == 201
        with p.running() as during:
            evil = _api_versions_times(proxy.bootstrap, EVIL_ID, 200)
            matching = _api_versions_times(proxy.bootstrap, MATCHING_ID, 5)
            huge = {"id": "huge", "match": {"client_id": "*" * (10 * h.MIB)},
                    "action": {"type": "delay", "side": "request", "fixed_ms": 1}}
            refused = admin.post("/faults", json=huge)
            time.sleep(0.5)  # a few more probe round trips after the upload
        assert refused.status_code == 413, refused.text
        stored = admin.get("/faults").json()
        stats = admin.get("/faults/redos").json()["stats"]
    assert [r["id"] for r in stored] == ["redos"], "the 10 MB rule left something behind"
    # The regex really ran on every request of both ids, and matched only the all-`a` one.
    assert stats["matched"] == len(matching) == 5
    latency = h.assert_latency_kept(before, during, "a backtracking regex and a 10 MB glob")
    evil_p99 = h.p99(evil)
    assert evil_p99 < max(h.P99_RATIO * h.p99(before), h.P99_FLOOR_S), \
        f"requests with client id {EVIL_ID!r}: p99 {evil_p99 * 1000:.1f} ms"
    assert max(matching) < 5.0
    n = good.finish()
    h.round_trip(proxy.bootstrap)
    growth = h.rss_bytes() - rss0
    assert growth < 300 * h.MIB, f"RSS grew {growth / h.MIB:.0f} MiB"
    print(f"\nABUSE rules-patterns: {latency}, evil-id p99 {evil_p99 * 1000:.2f} ms, "
          f"10 MB rule -> {refused.status_code}, records {n}, RSS +{growth / h.MIB:.1f} MiB")


def test_rules_that_would_break_everything(target: Any, well_behaved: Any, probe: Any) -> None:
    proxy = target(control=ControlPlaneOptions(max_rules=50))
    rss0 = h.rss_bytes()
    good = well_behaved(proxy.bootstrap)
    p = probe(proxy.bootstrap)
    before = p.measure(200)
    with httpx.Client(base_url=proxy.admin_url, timeout=30) as admin:
        no_match = {"id": "everything",
                    "action": {"type": "delay", "side": "request", "fixed_ms": 5000}}
        for rule in (no_match, {**no_match, "match": {}}):
            refused = admin.post("/faults", json=rule)
            assert refused.status_code == 422 and "match" in refused.text, refused.text
        with p.running() as during:
            # Fifty rules that name the hot APIs (so the engine weighs each one on every
            # request) with a 5 s delay that would wreck the probe if any matched.
            for i in range(50):
                rule = _delay_rule(f"never-{i}", {"apis": ["ApiVersions", "Produce", "Fetch",
                                                           "Metadata"],
                                                  "client_id": f"nobody-{i}-*"}, ms=5000)
                assert admin.post("/faults", json=rule).status_code == 201
            over = admin.post("/faults", json=_delay_rule("one-too-many", {"any": True}))
            time.sleep(3.0)  # the well-behaved client and the probe go on under 50 rules
        assert over.status_code == 409, over.text
        rules = admin.get("/faults").json()
    assert len(rules) == 50 and "one-too-many" not in {r["id"] for r in rules}
    assert all(r["stats"]["matched"] == 0 for r in rules)
    latency = h.assert_latency_kept(before, during, "50 installed non-matching rules")
    n = good.finish()
    h.round_trip(proxy.bootstrap)
    growth = h.rss_bytes() - rss0
    assert growth < 300 * h.MIB
    print(f"\nABUSE rules-limits: {latency}, no match -> 422, 51st -> {over.status_code}, "
          f"records {n}, RSS +{growth / h.MIB:.1f} MiB")
