"""What a matrix command runs and where its report goes, without the lab's client libraries
(so `matrix-merge` works where only the report is made)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path


def fresh_out_dir(base: Path = Path("matrix-out")) -> Path:
    """A directory under `base` no earlier run used: the time, and a suffix if need be. The
    default report directory: a matrix's report is a result to look at, not a change to the
    committed docs (those are written only when asked for by name)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    candidate, n = base / stamp, 1
    while candidate.exists():
        n += 1
        candidate = base / f"{stamp}-{n}"
    return candidate


def select(names: Iterable[str] | None, known: Iterable[str], what: str) -> list[str]:
    known = list(known)
    if not names:
        return known
    out: list[str] = []
    for raw in names:
        for name in (n.strip() for n in raw.split(",")):
            if not name:
                continue
            if name not in known:
                raise ValueError(f"unknown {what} {name!r}; known: {', '.join(known)}")
            out.append(name)
    return out
