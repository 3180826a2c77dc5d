"""A local broker that fails to start leaves nothing behind: no temp dir, no process."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from kafka_chaos_proxy.proxy.real_kafka import BrokerStartError, MissingToolError, kraft
from kafka_chaos_proxy.proxy.real_kafka.maven import is_cached
from kafka_chaos_proxy.proxy.real_kafka.versions import DEFAULT_KAFKA_VERSION, distribution


def _kcp_dirs(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.name.startswith("kcp-")}


def test_a_jvm_that_fails_removes_the_workdir(monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    dist = distribution(DEFAULT_KAFKA_VERSION)
    if not is_cached(list(dist.artifacts), dist.cache_name):
        pytest.skip("the broker jars are not cached here (a cold fetch takes minutes)")
    java_home = tmp_path / "jdk"
    (java_home / "bin").mkdir(parents=True)
    fake = java_home / "bin" / "java"
    fake.write_text("#!/bin/sh\necho 'no JVM here' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(java_home))
    monkeypatch.delenv("KCP_KEEP_KAFKA_DIR", raising=False)
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    with pytest.raises(BrokerStartError) as info, kraft.LocalKraftCluster(1):
        pass
    assert "formatting storage of node 1 failed (exit 3)" in str(info.value)
    assert "KCP_KEEP_KAFKA_DIR" in str(info.value).splitlines()[0]
    assert _kcp_dirs(temp) == set()


def test_missing_java_fails_before_any_temp_dir(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(MissingToolError, match="apt-get install"):
        kraft.LocalKraftCluster(1)
    assert _kcp_dirs(tmp_path) == set()
