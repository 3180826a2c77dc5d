"""The test tree imports its modules by file name (no __init__.py files), so two test files
with the same name in different folders make collection fail in a whole-suite run only."""

from __future__ import annotations

from collections import Counter

from tests.support.imports import ROOT


def test_test_module_names_are_unique() -> None:
    names = Counter(p.name for p in (ROOT / "tests").rglob("test_*.py")
                    if "clients" not in p.relative_to(ROOT / "tests").parts[:1])
    assert names, "no test files found"
    assert [n for n, count in names.items() if count > 1] == []
