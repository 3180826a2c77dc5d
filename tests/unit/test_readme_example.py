"""The README's "Use it from your own tests" shows examples/python's test as it is (CI runs
that file from the built wheel, so the README's copy is a test that passes), and every Python
block of the README is valid Python."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = "examples/python/test_syncgroup_not_coordinator.py"
_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)


def test_the_readme_shows_the_example_test_as_it_is() -> None:
    readme = (ROOT / "README.md").read_text()
    marker = f"<!-- {EXAMPLE}:"
    assert marker in readme, f"the README no longer marks its copy of {EXAMPLE}"
    found = _BLOCK.search(readme, readme.index(marker))
    assert found is not None
    assert found.group(1) == (ROOT / EXAMPLE).read_text()


def test_every_python_block_of_the_readme_parses() -> None:
    blocks = _BLOCK.findall((ROOT / "README.md").read_text())
    assert len(blocks) >= 2
    for block in blocks:
        ast.parse(block)
