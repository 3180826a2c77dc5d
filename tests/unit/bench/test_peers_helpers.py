"""bench/peers.py's pure parts: the interleaving, the statistics, the rules that match nothing,
the peers' configurations and the connection storm (against a local stand-in). No broker."""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections.abc import Iterator

import pytest
import yaml

from kafka_chaos_proxy.faults.decision import PASS
from kafka_chaos_proxy.faults.engine import FaultEngine
from kafka_chaos_proxy.faults.loader import rules_from_data
from kafka_chaos_proxy.faults.model import api_keys
from tests.support.bench import bench_module
from tests.support.fault_fakes import FakeView

peers = bench_module("peers")
peer_procs = bench_module("peer_procs")


# --------------------------------------------------------------------------- interleaving


def test_every_phase_runs_for_every_target_in_order_before_the_next() -> None:
    steps = peers.schedule(["A", "B", "C"], ["p", "q"], 2)
    assert [(s.rep, s.phase, s.target) for s in steps] == [
        (0, "p", "A"), (0, "p", "B"), (0, "p", "C"),
        (0, "q", "A"), (0, "q", "B"), (0, "q", "C"),
        (1, "p", "A"), (1, "p", "B"), (1, "p", "C"),
        (1, "q", "A"), (1, "q", "B"), (1, "q", "C"),
    ]


def test_the_default_run_is_five_targets_interleaved_five_times() -> None:
    args = peers.parse_args([])
    assert args.repeat == 5
    assert args.target_list == ["direct", "proxy-0", "proxy-100", "toxiproxy", "kroxylicious"]
    steps = peers.schedule(args.target_list, peers.PHASES, args.repeat)
    assert len(steps) == 5 * len(peers.PHASES) * 5
    assert [s.target for s in steps[:10]] == args.target_list * 2


def test_targets_come_in_their_order_and_direct_is_always_there() -> None:
    assert peers.parse_targets("kroxylicious, proxy-0") == ["direct", "proxy-0", "kroxylicious"]
    with pytest.raises(ValueError, match="nope"):
        peers.parse_targets("direct,nope")


# --------------------------------------------------------------------------- statistics


def test_spread_is_median_and_inclusive_quartiles() -> None:
    s = peers.spread([5.0, 1.0, 4.0, 2.0, 3.0])
    assert (s.median, s.q1, s.q3, s.iqr, s.n) == (3.0, 2.0, 4.0, 2.0, 5)
    two = peers.spread([1.0, 2.0])
    assert (two.q1, two.median, two.q3) == (1.25, 1.5, 1.75)
    assert peers.spread([7.0]) == peers.Spread(7.0, 7.0, 7.0, 1)
    assert peers.spread([]) is None


def test_ratios_and_added_latency_pair_runs_of_the_same_repetition() -> None:
    runs = {
        "direct": {"produce_1KiB_mbps": {0: 100.0, 1: 200.0}, "p50_ms": {0: 1.0, 1: 2.0}},
        # repetition 2 has no direct run to pair with: it gives no ratio
        "proxy-0": {"produce_1KiB_mbps": {0: 50.0, 1: 150.0, 2: 10.0},
                    "p50_ms": {0: 1.5, 1: 2.1}},
    }
    derived = peers.derived(runs)
    assert derived["proxy-0"]["ratio_produce_1KiB_mbps"] == {0: 0.5, 1: 0.75}
    assert derived["proxy-0"]["added_p50_ms"] == pytest.approx({0: 0.5, 1: 0.1})
    assert derived["direct"]["ratio_produce_1KiB_mbps"] == {0: 1.0, 1: 1.0}
    assert "added_p50_ms" not in derived["direct"]
    summary = peers.summarize(runs)
    assert summary["proxy-0"]["ratio_produce_1KiB_mbps"].median == 0.625
    assert summary["proxy-0"]["produce_1KiB_mbps"].n == 3


def test_the_tables_have_a_row_per_target_and_a_dash_where_nothing_applies() -> None:
    runs = {
        "direct": {"produce_1KiB_mbps": {0: 100.0, 1: 120.0, 2: 110.0}, "storm_s": {0: 1.0}},
        "toxiproxy": {"produce_1KiB_mbps": {0: 90.0, 1: 100.0, 2: 95.0},
                      "core_s_per_gb_1KiB": {0: 0.5}, "storm_failures": {0: 3.0}},
    }
    text = peers.render_tables(peers.summarize(runs), ["direct", "toxiproxy"])
    lines = text.splitlines()
    direct = next(line for line in lines if line.startswith("| direct |"))
    assert "| 110 (105-115) | 1.00 |" in direct
    toxi = [line for line in lines if line.startswith("| Toxiproxy")]
    assert len(toxi) == 2  # one row in each table
    # ratios 0.90, 0.83, 0.86 (each against the direct run of its repetition)
    assert "| 95.0 (92.5-97.5) | 0.86 (0.85-0.88) |" in toxi[0]
    assert toxi[1].split(" | ")[1] == "0.500" and toxi[1].endswith("| 3 |")
    cost_direct = [line for line in lines if line.startswith("| direct |")][1]
    assert cost_direct.split(" | ")[1:3] == ["-", "-"]


# --------------------------------------------------------------------------- the rules


def test_the_rules_load_and_match_no_request_of_the_load() -> None:
    data = {"rules": peers.non_matching_rules(100)}
    rules = rules_from_data(json.loads(json.dumps(data)), "peers")
    assert len(rules) == 100 and len({r.id for r in rules}) == 100
    engine = FaultEngine(seed=1)
    for rule in rules:
        engine.add(rule)
    keys = api_keys()
    for api in ("Produce", "Fetch", "Metadata", "ApiVersions"):
        for client_id in ("rdkafka", "bench", None, "bench-no-such-client"):
            view = FakeView(api_key=keys[api], api_version=9, client_id=client_id)
            assert engine.on_request(view) is PASS
            assert view.body_calls == 0  # header checks only: nothing is decoded
    assert all(engine.stats(str(r.id)).matched == 0 for r in engine.list())


def test_every_produce_and_fetch_request_reaches_each_rules_client_id_check() -> None:
    """A rule that names other APIs would be skipped at the API check; these are not."""
    keys = api_keys()
    for rule in rules_from_data({"rules": peers.non_matching_rules(3)}):
        assert {keys[a] for a in rule.match.apis or []} == {keys["Produce"], keys["Fetch"]}
        assert rule.match.client_id is not None


# --------------------------------------------------------------------------- the peers' configs


def test_kroxylicious_config_is_one_pass_through_virtual_cluster() -> None:
    config = yaml.safe_load(peer_procs.kroxylicious_config("127.0.0.1:9092", 19092, 19100))
    assert set(config) == {"virtualClusters"}  # no filters, no management endpoint
    (cluster,) = config["virtualClusters"]
    assert cluster["targetCluster"] == {"bootstrapServers": "127.0.0.1:9092"}
    (gateway,) = cluster["gateways"]
    assert gateway["portIdentifiesNode"] == {
        "bootstrapAddress": "127.0.0.1:19092", "nodeStartPort": 19100,
        "nodeIdRanges": [{"name": "brokers", "start": 1, "end": 1}]}
    assert "filters" not in cluster


def test_toxiproxy_proxy_has_no_toxics() -> None:
    spec = peer_procs.toxiproxy_proxy_spec("kafka", 19093, "127.0.0.1:9094")
    assert spec == {"name": "kafka", "listen": "127.0.0.1:19093",
                    "upstream": "127.0.0.1:9094", "enabled": True}


def test_the_kroxylicious_artifacts_are_pinned() -> None:
    coords = peer_procs.kroxylicious_artifacts("0.12.0")
    assert coords[0] == "io.kroxylicious:kroxylicious-runtime:0.12.0"
    assert all(len(c.split(":")) == 3 for c in coords)


# --------------------------------------------------------------------------- the storm


@pytest.fixture
def api_versions_server() -> Iterator[str]:
    """A listener that answers every frame it reads with a small frame, as a broker answers
    ApiVersions; it keeps every connection until the client closes it."""
    server = socket.create_server(("127.0.0.1", 0), backlog=128)
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            while True:
                head = conn.recv(4)
                if len(head) < 4:
                    return
                (size,) = struct.unpack(">i", head)
                left = size
                while left:
                    chunk = conn.recv(left)
                    if not chunk:
                        return
                    left -= len(chunk)
                conn.sendall(struct.pack(">ii", 4, 5))

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        server.close()


def test_a_storm_completes_an_exchange_on_every_connection(api_versions_server: str) -> None:
    storm = peers.connection_storm(api_versions_server, 50, deadline_s=60)
    assert (storm.count, storm.failures) == (50, 0)
    assert storm.seconds > 0


def test_a_storm_against_nothing_counts_every_connection_as_failed() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{s.getsockname()[1]}"  # bound, never listening: refused
    assert peers.connection_storm(closed, 5, deadline_s=60).failures == 5


def test_a_storm_past_its_deadline_counts_the_untried_as_failed(
        api_versions_server: str) -> None:
    assert peers.connection_storm(api_versions_server, 7, deadline_s=0).failures == 7
