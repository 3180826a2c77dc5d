"""The layering of DESIGN.md, checked rather than promised: `lab -> proxy -> faults -> codec`.

Every import of our packages (`tests.support.imports`: inside functions, TYPE_CHECKING blocks
and `import_module` calls too) is checked: no import against the order, `codec` imports
nothing of ours, the data-plane pipeline reaches only a few modules outside itself, and no
cycle anywhere among our modules.
"""

from __future__ import annotations

import pytest

from tests.support.imports import (
    ROOT,
    TOP,
    cycles,
    import_graph,
    imported_names,
    layer,
    our_imports,
    our_modules,
)

# Each package and the packages of ours it may import (itself included).
ALLOWED: dict[str, frozenset[str]] = {
    "codec": frozenset({"codec"}),
    "faults": frozenset({"faults", "codec"}),
    "proxy": frozenset({"proxy", "faults", "codec"}),
    "lab": frozenset({"lab", "proxy", "faults", "codec"}),
}
# What the pipeline may use outside itself (see proxy/pipeline/__init__.py).
PIPELINE_MAY_IMPORT = frozenset(f"{TOP}.{m}" for m in (
    "faults.decision", "proxy.metrics", "proxy.frame_counts", "proxy.exchange", "proxy.config",
    "proxy.versions", "proxy.roles", "proxy.side_channel", "proxy.fetch_sessions",
    "proxy.tls.errors"))
PIPELINE = f"{TOP}.proxy.pipeline"

MODULES = our_modules()
GRAPH = import_graph(MODULES)


def test_every_package_is_found() -> None:
    assert {layer(m) for m in MODULES} == set(ALLOWED)
    assert len(MODULES) > 80, "the walk found too few modules to mean anything"


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_follow_the_layer_order(package: str) -> None:
    wrong = [
        f"{MODULES[m].relative_to(ROOT)}:{line} imports {target}"
        for m in MODULES
        if layer(m) == package
        for line, target in our_imports(m, MODULES[m], MODULES)
        if layer(target) not in ALLOWED[package]
    ]
    assert not wrong, f"{package} may import only {sorted(ALLOWED[package])}:\n" + "\n".join(wrong)


def test_the_pipeline_reaches_few_modules_outside_itself() -> None:
    wrong = [
        f"{m} imports {target}"
        for m in MODULES if m.startswith(PIPELINE)
        for _, target in our_imports(m, MODULES[m], MODULES)
        if layer(target) == "proxy" and not target.startswith(PIPELINE)
        and target not in PIPELINE_MAY_IMPORT
    ]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles() -> None:
    found = cycles(GRAPH)
    assert not found, "import cycles (TYPE_CHECKING and function-level imports count):\n" + (
        "\n".join(" <-> ".join(c) for c in found)
    )


def test_the_cycle_finder_finds_one() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_nothing_imports_a_layer_by_its_folder_name() -> None:
    """`import proxy` works in a checkout (the folder is on sys.path in tests) but not for a
    user: the installed distribution has only `kafka_chaos_proxy`. Product, lab, tests,
    benchmarks and scripts all import through it."""
    sources = [p for d in ("codec", "faults", "proxy", "lab", "tests", "bench", "scripts",
                           "examples", "kafka_chaos_proxy")
               if (ROOT / d).is_dir() and not (ROOT / d).is_symlink()
               for p in sorted((ROOT / d).rglob("*.py")) if "fixtures" not in p.parts]
    wrong = [f"{p.relative_to(ROOT)}:{line} imports {name}"
             for p in sources
             for line, name in imported_names("x", p)
             if name.split(".")[0] in ALLOWED]
    assert not wrong, f"import these as {TOP}.<layer>:\n" + "\n".join(wrong)
