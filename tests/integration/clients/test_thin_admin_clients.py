"""The thin admin clients of examples/ (Java `ChaosProxyAdmin`, Go `chaosadmin`) against a real
proxy in front of the suite's broker, with no Docker: `kafka-chaos-proxy run` with an admin
token, and a real consumer of each language joining a group through it.

Java: examples/java's ChaosProxyAdmin.java is compiled with javac together with
tests/clients/admin/java/AdminClientCheck.java against the kafka-clients jars the Java harness
uses (no Maven project build), and run. Go: examples/go's TestAgainstARunningProxy (package
chaosadmin, a franz-go consumer) is run with `go test -run`, the proxy's addresses in its
environment; the module's testcontainers test is not run.

Each drives the client through: health, a wrong token (401), clear, add a rule as JSON text
(SyncGroup of the group answered NOT_COORDINATOR, once) and one as a map, list, remove, a rule
with a typo (422 with the API's message), the newest seq, the consumer reading every record,
waiting for the injected SyncGroup event, the rule's stats (injected once), remove. This test
then checks the proxy's own view: the same event in /events, no rule left, the group known.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kafka_chaos_proxy.lab.matrix import builds
from kafka_chaos_proxy.proxy.real_kafka import KafkaCluster
from tests.support.go_harness import create_topic, produce
from tests.support.proxy_subprocess import ProxySubprocess, free_ports

ROOT = Path(__file__).resolve().parents[3]
ADMIN_JAVA = ROOT / "examples/java/src/main/java/kafkachaosproxy/ChaosProxyAdmin.java"
CHECK_JAVA = ROOT / "tests/clients/admin/java/AdminClientCheck.java"
GO_MODULE = ROOT / "examples/go"
TOKEN = "thin-client-test-token"
RECORDS = 12
RUN_TIMEOUT_S = 240.0


class Proxy:
    def __init__(self, process: ProxySubprocess, bootstrap: str) -> None:
        self.process, self.bootstrap, self.admin_url = process, bootstrap, process.admin_url

    def get(self, path: str, **params: Any) -> Any:
        answer = httpx.get(f"{self.admin_url}{path}", params=params, timeout=10,
                           headers={"Authorization": f"Bearer {TOKEN}"})
        answer.raise_for_status()
        return answer.json()


@pytest.fixture
def proxy(kafka_cluster: KafkaCluster, tmp_path: Path) -> Iterator[Proxy]:
    """`kafka-chaos-proxy run` on loopback with an admin token (from KCP_ADMIN_TOKEN)."""
    port, base, admin = free_ports(3)
    argv = [str(Path(sys.executable).with_name("kafka-chaos-proxy")), "run",
            "--bootstrap-server", kafka_cluster.bootstrap_servers, "--port", str(port),
            "--port-base", str(base), "--admin-port", str(admin), "--log-format", "json"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KCP_")}
    env["KCP_ADMIN_TOKEN"] = TOKEN
    process = ProxySubprocess(argv, env, f"http://127.0.0.1:{admin}", tmp_path / "proxy.log",
                              tmp_path)
    process.start()
    try:
        yield Proxy(process, f"127.0.0.1:{port}")
    finally:
        assert process.stop() == 0, process.log()[-3000:]


def _topic_with_records(proxy: Proxy, unique_name: str) -> tuple[str, str]:
    topic, group = f"{unique_name}-t", f"{unique_name}-g"
    create_topic(proxy.bootstrap, topic, 2)
    produce(proxy.bootstrap, topic, RECORDS, 2)
    return topic, group


def _assert_the_proxy_saw_it(proxy: Proxy, group: str, rule_id: str) -> dict[str, Any]:
    """The injected SyncGroup as the proxy logged it, and nothing left behind."""
    events = proxy.get("/events", api="SyncGroup", group=group, since=0, limit=100)
    injected = [e for e in events if (e.get("fault") or {}).get("rule") == rule_id]
    assert len(injected) == 1, events
    assert injected[0]["error"] == "NOT_COORDINATOR"
    assert injected[0]["fault"]["action"] == "error"
    later = [e for e in events if e["seq"] > injected[0]["seq"]]
    assert any(e["error"] is None for e in later), "no SyncGroup succeeded after the fault"
    assert proxy.get("/faults") == []
    assert proxy.get(f"/groups/{group}")["group_id"] == group
    return dict(injected[0])


# -------------------------------------------------------------------------------------- Java


def _java_check(tmp_path: Path) -> list[str]:
    """javac of the thin client and the check against the harness's kafka-clients jars."""
    jars = builds.java_classpath(builds.default_kafka_clients_version())
    classpath = os.pathsep.join(str(j) for j in jars)
    out = tmp_path / "classes"
    javac, java = shutil.which("javac"), shutil.which("java")
    assert javac and java
    proc = subprocess.run([javac, "-nowarn", "-encoding", "UTF-8", "-d", str(out), "-cp",
                           classpath, str(ADMIN_JAVA), str(CHECK_JAVA)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [java, "-cp", os.pathsep.join([str(out), classpath]), "AdminClientCheck"]


@pytest.mark.skipif(shutil.which("javac") is None or shutil.which("mvn") is None,
                    reason="JDK or Maven not installed")
def test_java_thin_client_against_a_real_proxy(proxy: Proxy, unique_name: str,
                                               tmp_path: Path) -> None:
    topic, group = _topic_with_records(proxy, unique_name)
    argv = [
        *_java_check(tmp_path), "--bootstrap", proxy.bootstrap, "--admin-url", proxy.admin_url,
        "--token", TOKEN, "--topic", topic, "--group", group, "--records", str(RECORDS)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
                          check=False)
    evidence = f"stdout:\n{proc.stdout}\nstderr (tail):\n{proc.stderr[-3000:]}"
    assert proc.returncode == 0, evidence
    steps = {s["step"]: s for s in (json.loads(line) for line in proc.stdout.splitlines())}

    assert steps["healthz"]["ok"] is True
    assert steps["wrong_token"]["status"] == 401
    assert steps["added"]["id"] == "java-sync-moved"
    assert steps["listed"]["ids"] == ["java-sync-moved", "java-unused"]
    assert steps["refused"]["status"] == 422
    assert "SyncGrup" in steps["refused"]["message"], steps["refused"]
    assert steps["consumed"]["records"] == RECORDS
    event = steps["event"]
    assert (event["api"], event["group"], event["error"]) == ("SyncGroup", group,
                                                              "NOT_COORDINATOR")
    assert event["fault"]["rule"] == "java-sync-moved"
    assert event["seq"] > steps["since"]["seq"]
    errors = steps["sync_groups"]["errors"]
    assert errors[0] == "NOT_COORDINATOR" and None in errors[1:], errors
    assert steps["stats"]["stats"]["injected"] == 1
    assert steps["removed"]["left"] == 0
    assert "done" in steps, evidence

    seen = _assert_the_proxy_saw_it(proxy, group, "java-sync-moved")
    assert seen["seq"] == event["seq"]
    assert seen["client_id"] == "admin-client-check-java"


# ---------------------------------------------------------------------------------------- Go


def _go_env(extra: dict[str, str]) -> dict[str, str]:
    """As the harness builds run Go: the local toolchain only and the committed go.sum, never
    rewritten."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KCP_", "CHAOSADMIN_"))}
    flags = [f for f in env.get("GOFLAGS", "").split() if not f.startswith("-mod=")]
    env.update(GOTOOLCHAIN="local", GOFLAGS=" ".join([*flags, "-mod=readonly"]), **extra)
    return env


@pytest.mark.skipif(shutil.which("go") is None, reason="Go toolchain not installed")
def test_go_thin_client_against_a_real_proxy(proxy: Proxy, unique_name: str) -> None:
    topic, group = _topic_with_records(proxy, unique_name)
    env = _go_env({"CHAOSADMIN_ADMIN_URL": proxy.admin_url, "CHAOSADMIN_TOKEN": TOKEN,
                   "CHAOSADMIN_BOOTSTRAP": proxy.bootstrap, "CHAOSADMIN_TOPIC": topic,
                   "CHAOSADMIN_GROUP": group, "CHAOSADMIN_RECORDS": str(RECORDS)})
    go = shutil.which("go")
    assert go
    proc = subprocess.run([go, "test", "-count=1", "-v", "-run", "^TestAgainstARunningProxy$",
                           "./chaosadmin"], cwd=GO_MODULE, env=env, capture_output=True,
                          text=True, timeout=RUN_TIMEOUT_S, check=False)
    output = proc.stdout + proc.stderr
    print(output)  # the test's own log lines: shown with -s or -rA
    assert proc.returncode == 0, output
    assert "--- PASS: TestAgainstARunningProxy" in output, output
    assert "SKIP" not in output, output
    assert "injected event seq=" in output and "error=NOT_COORDINATOR" in output, output

    seen = _assert_the_proxy_saw_it(proxy, group, "go-sync-moved")
    assert seen["client_id"] == "admin-client-check-go"
