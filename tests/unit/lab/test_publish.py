"""Published evidence keeps what backs each verdict, in a form that can be committed."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from kafka_chaos_proxy.lab.matrix.publish import publish_evidence


def _run_dir(root: Path, client: str, scenario: str, run: int) -> Path:
    run_dir = root / client / scenario / str(run)
    run_dir.mkdir(parents=True)
    (run_dir / "result.json").write_text(json.dumps({"outcome": "recovered"}))
    (run_dir / "scenario.yaml").write_text("name: s\n")
    (run_dir / "m0.cmd").write_text("harness --group g\n")
    (run_dir / "m0.jsonl").write_text('{"event": "started"}\n')
    (run_dir / "proxy-events.jsonl").write_text('{"api": "SyncGroup"}\n')
    (run_dir / "proxy-events.json").write_text('[{"api": "SyncGroup"}]')
    return run_dir


def test_verdicts_plain_streams_gzipped_duplicates_left_out(tmp_path: Path) -> None:
    artifacts, dest = tmp_path / "artifacts", tmp_path / "published"
    _run_dir(artifacts, "aiokafka", "syncgroup-not-coordinator", 1)
    _run_dir(artifacts, "sarama", "syncgroup-not-coordinator", 2)
    (artifacts / "results.jsonl").write_text('{"client": "aiokafka"}\n')

    assert publish_evidence(artifacts, dest) == 2

    run = dest / "aiokafka" / "syncgroup-not-coordinator" / "1"
    assert json.loads((run / "result.json").read_text()) == {"outcome": "recovered"}
    assert (run / "m0.cmd").read_text() == "harness --group g\n"
    assert gzip.decompress((run / "m0.jsonl.gz").read_bytes()) == b'{"event": "started"}\n'
    assert gzip.decompress((run / "proxy-events.jsonl.gz").read_bytes()).startswith(b'{"api"')
    assert not (run / "proxy-events.json").exists()
    assert gzip.decompress((dest / "results.jsonl.gz").read_bytes()) == b'{"client": "aiokafka"}\n'


def test_republishing_drops_runs_that_are_gone(tmp_path: Path) -> None:
    artifacts, dest = tmp_path / "artifacts", tmp_path / "published"
    stale = dest / "kafka-go" / "old-scenario" / "1"
    stale.mkdir(parents=True)
    _run_dir(artifacts, "aiokafka", "s", 1)

    publish_evidence(artifacts, dest)

    assert not stale.exists()
    assert (dest / "aiokafka" / "s" / "1" / "result.json").exists()
