"""The official Java client (kafka-clients) talks to the fixture's broker.

Why: kafka-clients is the reference implementation of the protocol, and its jars come
through `fetch_classpath`, the same path other Java harnesses in this project use.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from kafka_chaos_proxy.proxy.real_kafka import DEFAULT_KAFKA_VERSION, KafkaCluster, fetch_classpath

pytestmark = pytest.mark.clients

_SOURCE = Path(__file__).parent / "java" / "RoundTrip.java"
_RUN_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def java_round_trip(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Compile RoundTrip.java once; returns the `java` command prefix to run it."""
    javac, java = shutil.which("javac"), shutil.which("java")
    if javac is None or java is None:
        pytest.fail("javac/java not found: a JDK 17+ is needed for the Java client tests")
    jars = fetch_classpath(
        [
            f"org.apache.kafka:kafka-clients:{DEFAULT_KAFKA_VERSION}",
            "org.slf4j:slf4j-simple:1.7.36",
        ],
        f"java-clients/{DEFAULT_KAFKA_VERSION}",
    )
    lib = f"{jars[0].parent}/*"
    classes = tmp_path_factory.mktemp("java-classes")
    subprocess.run(
        [javac, "-d", str(classes), "-cp", lib, str(_SOURCE)],
        check=True,
        timeout=_RUN_TIMEOUT_S,
    )
    return [java, "-Xmx256m", "-cp", f"{classes}:{lib}", "RoundTrip"]


@pytest.mark.parametrize("protocol", ["classic", "consumer"])
def test_java_client_round_trip(
    kafka_cluster: KafkaCluster, java_round_trip: list[str], unique_name: str, protocol: str
) -> None:
    proc = subprocess.run(
        [
            *java_round_trip,
            kafka_cluster.bootstrap_servers,
            f"{unique_name}-t",
            f"{unique_name}-g",
            protocol,
            "10",
        ],
        capture_output=True,
        text=True,
        timeout=_RUN_TIMEOUT_S,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "CONSUMED 10" in proc.stdout
