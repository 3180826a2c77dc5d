"""Import structure of `proxy`: no cycles (TYPE_CHECKING and function-level imports
included), and the pipeline's few outside dependencies."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PIPELINE_MAY_IMPORT = {"codec", "faults.decision", "proxy.metrics", "proxy.exchange",
                       "proxy.config", "proxy.versions"}


def _modules() -> dict[str, Path]:
    out = {}
    for path in (ROOT / "proxy").rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of ours (or outside names) every import statement in the file names:
    `from a import b` names `a.b` when that is a module, else `a`."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            for a in node.names:
                sub = f"{module}.{a.name}"
                found.add(sub if sub in modules else module)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: {m for m in _imports(name, path, modules) if m in modules and m != name}
            for name, path in modules.items()}


def test_no_import_cycles_in_proxy() -> None:
    graph = _graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt):], nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_pipeline_imports_only_its_few_outside_modules() -> None:
    modules = _modules()
    for name, path in modules.items():
        if not name.startswith("proxy.pipeline"):
            continue
        for module in _imports(name, path, modules):
            if module.startswith("proxy.") and not module.startswith("proxy.pipeline"):
                assert module in PIPELINE_MAY_IMPORT, f"{name} imports {module}"
