"""lab.matrix.builds: harness builds are cached, failures say why, and a missing source
tree is named. No broker needed; Go is.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kafka_chaos_proxy.lab.matrix import builds

pytestmark = [
    pytest.mark.skipif(shutil.which("go") is None, reason="Go toolchain not installed"),
]


def test_second_request_reuses_the_binary() -> None:
    first = builds.go_harness_command("kafka-go")
    binary = Path(first[0])
    before = binary.stat().st_mtime_ns
    assert builds.go_harness_command("kafka-go") == first
    assert binary.stat().st_mtime_ns == before


def test_library_versions_come_from_go_mod() -> None:
    versions = builds.library_versions("3.9.2")
    assert set(versions) >= {"sarama", "kafka-go", "franz-go", "java"}
    assert versions["java"] == "3.9.2"
    assert all(v[0].isdigit() for v in versions.values()), versions


def test_unknown_harness_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown Go harness"):
        builds.go_harness_command("nope")  # type: ignore[arg-type]


def test_missing_source_tree_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KCP_HARNESS_DIR", str(tmp_path / "tests" / "clients"))
    with pytest.raises(builds.HarnessBuildError, match=r"KCP_HARNESS_DIR.*source checkout"):
        builds.go_harness_command("sarama")


def test_compile_error_comes_back_with_the_log_tail(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real_go = builds.go_dir()
    go = tmp_path / "tests" / "clients" / "go"
    go.mkdir(parents=True)
    for name in ("go.mod", "go.sum"):
        shutil.copy(real_go / name, go / name)
    shutil.copytree(real_go / "internal", go / "internal")
    (go / "sarama").mkdir()
    (go / "sarama" / "main.go").write_text("package main\n\nfunc main() { undefinedCall() }\n")
    monkeypatch.setenv("KCP_HARNESS_DIR", str(tmp_path / "tests" / "clients"))
    with pytest.raises(builds.HarnessBuildError, match="undefinedCall"):
        builds.go_harness_command("sarama")
    assert not (go / "bin" / ".sarama.stamp").exists()
