"""`bench/pipeline_bench.py` keeps measuring a pass-through: a tiny run completes, every
byte written through reaches the other side (the script refuses to report otherwise), and
rules that never match a Produce leave it a pass-through. Numbers are not checked: this is a
smoke test of the instrument, not a timing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_tiny_run_reports_cpu_per_exchange_with_and_without_rules() -> None:
    for rules in ("0", "50"):
        out = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "pipeline_bench.py"), "--frames", "64",
             "--batch", "8", "--repeat", "1", "--rules", rules, "--json"],
            capture_output=True, text=True, timeout=120, check=True)
        result = json.loads(out.stdout)
        assert result["rules"] == int(rules)
        assert result["us_per_exchange_median"] > 0
        assert Path(result["code"]) == ROOT
