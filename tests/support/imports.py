"""Our modules and the imports between them, read from the source with `ast`.

An import inside a function, behind `if TYPE_CHECKING:` or spelled `import_module("x")` counts
as much as one at the top of a module: each is a dependency the layering rules speak of.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Everything importable lives under this name; its sub-packages are the top-level folders.
TOP = "kafka_chaos_proxy"
#: The layers, as folders of the checkout (`proxy/`) and sub-packages (`kafka_chaos_proxy.proxy`).
PACKAGES = ("codec", "faults", "proxy", "lab")


def module_name(path: Path) -> str:
    """`proxy/pipeline/core.py` -> `kafka_chaos_proxy.proxy.pipeline.core`."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([TOP, *parts])


def layer(module: str) -> str:
    """The layer a dotted name of ours belongs to: `kafka_chaos_proxy.proxy.x` -> `proxy`;
    a name outside the one top-level package is returned whole (a top-level `proxy` import
    is a mistake the layering test reports)."""
    parts = module.split(".")
    return parts[1] if parts[0] == TOP and len(parts) > 1 else module


def our_modules() -> dict[str, Path]:
    """Dotted name -> file, for every module of our packages."""
    found: dict[str, Path] = {}
    for top in PACKAGES:
        base = ROOT / top
        if base.is_dir():
            for path in sorted(base.rglob("*.py")):
                found[module_name(path)] = path
    return found


def imported_names(module: str, path: Path) -> Iterator[tuple[int, str]]:
    """(line, dotted name) for each thing one file imports; relative imports resolved."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if (name in ("import_module", "__import__") and isinstance(first, ast.Constant)
                    and isinstance(first.value, str)):
                yield node.lineno, first.value


def resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of a dotted name that is one of our modules."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def our_imports(module: str, path: Path, modules: dict[str, Path]) -> Iterator[tuple[int, str]]:
    """(line, module of ours) for each import of one file."""
    for line, name in imported_names(module, path):
        target = resolve(name, modules)
        if target is not None:
            yield line, target


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    return {m: {t for _, t in our_imports(m, p, modules) if t != m} for m, p in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0

    def enter(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)

    for root in sorted(graph):
        if root in index:
            continue
        enter(root)
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component: list[str] = []
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        component.append(top)
                        if top == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                enter(child)
                work.append((child, iter(sorted(graph.get(child, ())))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found
