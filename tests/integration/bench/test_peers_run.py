"""bench/peers.py end to end with the smallest settings: its own local broker (with the listener
Toxiproxy needs), this proxy with 0 and 100 rules, Toxiproxy and Kroxylicious, one
repetition of every phase. It proves the path works (every target is built, started, carries
the load and answers every storm connection), not how fast anything is: no time is asserted.

The first run on a machine builds Toxiproxy (`go install`, about a minute of compiling) and
fetches Kroxylicious from Maven Central into the cache (`proxy.real_kafka.cache_root()`);
later runs take about half a minute.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.bench import BENCH

TARGETS = ["direct", "proxy-0", "proxy-100", "toxiproxy", "kroxylicious"]
SMALLEST = ["--repeat", "1", "--warmup-count", "100", "--small-count", "1000",
            "--large-count", "20", "--latency-count", "20", "--load-mbps", "0.5",
            "--idle-connections", "10", "--storm-connections", "20"]

# As for the Go client harnesses: no Go, no Toxiproxy. A JDK (java, javac) and Maven the whole
# suite needs already (the broker, the Java harnesses); the Kroxylicious launcher uses them too.
pytestmark = [
    pytest.mark.skipif(shutil.which("go") is None and not os.access("/usr/local/go/bin/go",
                                                                    os.X_OK),
                       reason="Go toolchain not installed (Toxiproxy is built from source)"),
]


def test_every_target_carries_the_load_and_answers_the_storm(tmp_path: Path) -> None:
    out = tmp_path / "peers.json"
    proc = subprocess.run([sys.executable, str(BENCH / "peers.py"), *SMALLEST, "--out", str(out),
                           "--log-dir", str(tmp_path / "logs")],
                          capture_output=True, text=True, timeout=280, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["errors"] == []
    assert result["meta"]["targets"] == TARGETS
    runs = result["runs"]
    for target in TARGETS:
        measured = runs[target]
        for name in ("produce_1KiB_mbps", "consume_1KiB_mbps", "produce_100KiB_mbps",
                     "consume_100KiB_mbps", "p50_ms", "p99_ms", "storm_s"):
            assert measured[name][0] > 0, (target, name)
        assert measured["storm_failures"] == [0.0], target
        if target != "direct":
            assert measured["core_s_per_gb_1KiB"][0] >= 0
            assert "rss_kib_per_idle_connection" in measured
            assert len(measured["ratio_produce_1KiB_mbps"]) == 1
            assert len(measured["added_p50_ms"]) == 1
    table = proc.stdout
    for label in result["meta"]["labels"].values():
        assert table.count(f"| {label} |") == 2, label  # a row in each table
