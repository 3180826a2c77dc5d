"""examples/java and examples/go keep compiling: their tests start Kafka and the proxy image with
Testcontainers, which needs a Docker engine, and none runs here or in CI (examples/README.md).
So the suite builds them without running them: `mvn -B -q test-compile` of the Maven project
(main and test sources, every dependency resolved) and `go vet ./...` of the Go module (which
type-checks every package and test file, the testcontainers-go one included).

Downloads are cached where the suite caches them already: Maven's local repository
(~/.m2/repository, or KCP_MAVEN_REPO, as for the Kafka jars) with Maven offline (-o) after the
first run, and Go's module cache with the committed go.sum (-mod=readonly, GOTOOLCHAIN=local,
as for the harness builds). Each test prints how long its build took.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
BUILD_TIMEOUT_S = 900.0


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=BUILD_TIMEOUT_S, check=False)


@pytest.mark.skipif(shutil.which("mvn") is None, reason="Maven not installed")
def test_java_example_compiles(tmp_path: Path) -> None:
    # A copy, so that target/ is written outside the checkout.
    project = tmp_path / "java"
    shutil.copytree(ROOT / "examples/java", project, ignore=shutil.ignore_patterns("target"))
    mvn = shutil.which("mvn")
    assert mvn
    cmd = [mvn, "-B", "-q", "-Dstyle.color=never", "test-compile"]
    if os.environ.get("KCP_MAVEN_REPO"):
        cmd.append(f"-Dmaven.repo.local={Path(os.environ['KCP_MAVEN_REPO']).expanduser()}")
    started = time.monotonic()
    proc = _run([*cmd, "-o"], project, dict(os.environ))  # offline: the cache has it all
    how = "offline"
    if proc.returncode != 0:  # the first run on this machine: let Maven download
        proc = _run(cmd, project, dict(os.environ))
        how = "online (first download)"
    took = time.monotonic() - started
    print(f"mvn test-compile of examples/java: {took:.1f} s, {how}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    classes = project / "target"
    assert (classes / "classes/kafkachaosproxy/ChaosProxyAdmin.class").is_file()
    assert (classes / "test-classes/kafkachaosproxy/SyncGroupNotCoordinatorTest.class").is_file()
    assert not (classes / "surefire-reports").exists(), "test-compile ran tests"


@pytest.mark.skipif(shutil.which("go") is None, reason="Go toolchain not installed")
def test_go_example_vets(tmp_path: Path) -> None:
    go = shutil.which("go")
    assert go
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAOSADMIN_")}
    flags = [f for f in env.get("GOFLAGS", "").split() if not f.startswith("-mod=")]
    env.update(GOTOOLCHAIN="local", GOFLAGS=" ".join([*flags, "-mod=readonly"]))
    module = ROOT / "examples/go"
    committed = {name: (module / name).read_bytes() for name in ("go.mod", "go.sum")}
    started = time.monotonic()
    proc = _run([go, "vet", "./..."], module, env)
    print(f"go vet ./... of examples/go: {time.monotonic() - started:.1f} s")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    listed = _run([go, "list", "-test", "-f", "{{.ImportPath}}", "./..."], module, env)
    assert listed.returncode == 0, listed.stderr
    # Both packages and their tests were in what vet checked.
    assert "github.com/kafka-chaos-proxy/examples/go/chaosadmin" in listed.stdout
    assert "github.com/kafka-chaos-proxy/examples/go.test" in listed.stdout, listed.stdout
    # Nothing was rewritten: the committed go.mod/go.sum are what was built.
    assert {name: (module / name).read_bytes() for name in committed} == committed
