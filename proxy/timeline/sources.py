"""Read the inputs of a timeline from files: the proxy's event log and harness lines.

Why here and not in the CLI: the command, the matrix's evidence publisher and the tests read
the same files in the same shapes — JSON lines (`proxy-events.jsonl`, `m0.jsonl`), the same
gzipped (`*.gz`, as published evidence keeps them), or one JSON list (`proxy-events.json`).
Lines that are not JSON objects are skipped, never fatal: a log cut off by a crash still draws.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

#: Lines read at most from one file; a bigger file is read up to here.
MAX_LINES = 2_000_000


def _open(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return path.open(encoding="utf-8", errors="replace")


def read_json_lines(path: Path, max_lines: int = MAX_LINES) -> Iterator[dict[str, Any]]:
    """The JSON objects of a file: one per line, or the items of a top-level list."""
    with _open(path) as stream:
        first = stream.read(1)
        while first.isspace():
            first = stream.read(1)
        if first == "[":
            items = json.loads(first + stream.read())
            yield from (item for item in items[:max_lines] if isinstance(item, dict))
            return
        for count, line in enumerate(_prefixed(first, stream)):
            if count >= max_lines:
                return
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict):
                yield item


def _prefixed(first: str, stream: IO[str]) -> Iterator[str]:
    head = stream.readline()
    yield first + head
    yield from stream


def harness_name(path: Path) -> str:
    """`m0.jsonl.gz` -> `m0`."""
    name = path.name
    for suffix in (".gz", ".jsonl", ".json"):
        name = name.removesuffix(suffix)
    return name


def read_harness(paths: Iterable[Path]) -> dict[str, list[dict[str, Any]]]:
    return {harness_name(path): list(read_json_lines(path)) for path in paths}


def busiest_group(events: Iterable[Mapping[str, Any]]) -> str | None:
    """The group with the most events: what a run's log is about when no one says."""
    counts = Counter(str(ev["group"]) for ev in events if ev.get("group"))
    return counts.most_common(1)[0][0] if counts else None
