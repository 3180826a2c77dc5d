"""The benchmark scripts as modules, for tests of their helpers.

bench/ is a folder of scripts, not a package: each imports its siblings by name
(`from throughput import ...`), which works when Python runs a script from there. Tests put
the folder on sys.path the same way before importing one.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

from tests.support.imports import ROOT

BENCH = ROOT / "bench"


def bench_module(name: str) -> ModuleType:
    """Import bench/<name>.py (and through it, its siblings)."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module(name)
