"""`faults` stays pure: it imports only `codec` and itself, and none of its modules import each
other in a circle (TYPE_CHECKING imports included: a cycle there is still a design knot, and the
day someone needs the name at runtime it becomes an ImportError).

Read from the source with `ast` rather than from `sys.modules`, so an import inside a function
or behind a flag counts as much as one at the top of a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = "faults"
ALLOWED_FIRST_PARTY = {"codec", PACKAGE}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((ROOT / PACKAGE).rglob("*.py"))}


def _first_party() -> set[str]:
    return {p.parent.name for p in ROOT.glob("*/__init__.py")}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every module `name` imports; `from pkg import mod` counts as importing `pkg.mod`."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def test_faults_imports_only_codec_and_itself() -> None:
    ours = _first_party()
    wrong = {
        (name, target)
        for name, targets in _graph().items()
        for target in targets
        if target.split(".")[0] in ours and target.split(".")[0] not in ALLOWED_FIRST_PARTY
    }
    assert not wrong, wrong


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle among the package's modules, or None."""
    done: set[str] = set()

    def visit(node: str, stack: list[str]) -> list[str] | None:
        if node in stack:
            return [*stack[stack.index(node) :], node]
        if node in done:
            return None
        for target in sorted(graph.get(node, ())):
            if target in graph and (found := visit(target, [*stack, node])):
                return found
        done.add(node)
        return None

    for start in sorted(graph):
        if found := visit(start, []):
            return found
    return None


def test_no_import_cycle_in_faults() -> None:
    cycle = _cycle(_graph())
    assert cycle is None, " -> ".join(cycle or ())


def test_the_cycle_check_sees_cycles() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
