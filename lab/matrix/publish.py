"""Copy a matrix run's evidence into a compact tree that can be committed beside the report.

The working evidence (`artifacts/matrix`) is large and partly redundant: the proxy's events are
kept both as a JSON list and as JSON lines, and every member's stderr is kept raw. What a reader
of the published matrix needs per run is the verdict, the scenario that produced it, the exact
command of each member, and the two event streams that back the verdict: the harness's JSON
lines and the proxy's coordination events. Small files are copied as they are so they can be
read in a browser; the streams are gzipped (`zcat` or `gzip -dc` reads them). Each run also
gets its rebalance timeline, `timeline.svg` (lab.matrix.timelines), drawn from those streams.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

from kafka_chaos_proxy.lab.matrix.timelines import write_run_timeline

# Copied as they are: small and worth reading in place.
PLAIN = ("result.json", "scenario.yaml", "m*.cmd")
# Gzipped: the event streams that back each verdict, and the logs behind them.
GZIPPED = ("m*.jsonl", "m*.stderr.log", "proxy-events.jsonl", "proxy.log", "produced.json")


def publish_evidence(artifacts: Path, dest: Path) -> int:
    """Mirror every run directory under `artifacts` into `dest`; returns how many runs.

    `dest` is rebuilt from scratch so that a re-published matrix never keeps evidence of runs
    that are no longer in its results.
    """
    if dest.exists():
        shutil.rmtree(dest)
    runs = 0
    for result in sorted(artifacts.glob("*/*/*/result.json")):
        run_dir = result.parent
        target = dest / run_dir.relative_to(artifacts)
        target.mkdir(parents=True, exist_ok=True)
        for pattern in PLAIN:
            for path in run_dir.glob(pattern):
                shutil.copyfile(path, target / path.name)
        for pattern in GZIPPED:
            for path in run_dir.glob(pattern):
                with path.open("rb") as src, gzip.open(target / f"{path.name}.gz", "wb") as out:
                    shutil.copyfileobj(src, out)
        write_run_timeline(target)
        runs += 1
    results = artifacts / "results.jsonl"
    if results.exists():
        dest.mkdir(parents=True, exist_ok=True)
        with results.open("rb") as src, gzip.open(dest / "results.jsonl.gz", "wb") as out:
            shutil.copyfileobj(src, out)
    return runs
