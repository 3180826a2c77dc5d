"""The JVM and Go clients through the proxy in front of a secured cluster: the official Java
client (kafka-clients) with mTLS to the proxy and the proxy with mTLS to the broker, and
franz-go with SASL_SSL SCRAM-SHA-512. Each produces and consumes checksummed records while one
SyncGroup of its group is answered NOT_COORDINATOR; the event log shows the fault with the
principal (the Java client's certificate subject, the Go client's SASL user).

The programs (`java/SecuredRoundTrip.java`, tests/clients/go/secured) verify every record
themselves and print one JSON line; built the way the harnesses are.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from kafka_chaos_proxy.lab.matrix import builds
from kafka_chaos_proxy.proxy.real_kafka import DEFAULT_KAFKA_VERSION, fetch_classpath
from kafka_chaos_proxy.proxy.real_kafka.provider import SecuredKafka
from tests.support.pki import Pki
from tests.support.secured import (
    RunningProxy,
    create_topic,
    injected_sync,
    not_coordinator_once,
)

pytestmark = pytest.mark.clients

_SOURCE = Path(__file__).parent / "java" / "SecuredRoundTrip.java"
RUN_TIMEOUT_S = 180
RECORDS = 50


@pytest.fixture(scope="module")
def java_round_trip(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """SecuredRoundTrip.java compiled once; the `java` command prefix that runs it."""
    javac, java = shutil.which("javac"), shutil.which("java")
    if javac is None or java is None:
        pytest.fail("javac/java not found: a JDK 17+ is needed for the Java client tests")
    jars = fetch_classpath([f"org.apache.kafka:kafka-clients:{DEFAULT_KAFKA_VERSION}",
                            "org.slf4j:slf4j-simple:1.7.36"],
                           f"java-clients/{DEFAULT_KAFKA_VERSION}")
    lib = f"{jars[0].parent}/*"
    classes = tmp_path_factory.mktemp("secured-java")
    subprocess.run([javac, "-d", str(classes), "-cp", lib, str(_SOURCE)], check=True,
                   timeout=RUN_TIMEOUT_S)
    return [java, "-Xmx256m", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp",
            f"{classes}:{lib}", "SecuredRoundTrip"]


def _run(argv: list[str]) -> dict[str, Any]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
                          check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _with_fault(proxy: RunningProxy, cluster: SecuredKafka, unique_name: str,
                run: Any) -> dict[str, Any]:
    topic, group, rule = f"{unique_name}-t", f"{unique_name}-g", f"{unique_name}-r"[-64:]
    create_topic(cluster.cluster.bootstrap_servers, topic)
    proxy.admin.add_rule(not_coordinator_once(group, rule))
    try:
        result = run(topic, group)
        assert result == {"produced": RECORDS, "consumed": RECORDS, "verified": RECORDS,
                          "bad": 0}
        event = proxy.wait_for(lambda: injected_sync(proxy.events(group), rule),
                               f"the injected SyncGroup of {group} in the event log")
    finally:
        proxy.admin.remove_rule(rule, missing_ok=True)
    assert event["error"] == "NOT_COORDINATOR"
    return event


def test_java_kafka_clients_with_mtls(mtls_proxy: RunningProxy, secured_kafka: SecuredKafka,
                                      client_pki: Pki, java_round_trip: list[str],
                                      unique_name: str, tmp_path: Path) -> None:
    keystore = tmp_path / "client-keystore.pem"  # Kafka's PEM key store: key, then chain
    keystore.write_bytes(client_pki.client_key.read_bytes()
                         + client_pki.client_cert.read_bytes())
    props = tmp_path / "client.properties"
    props.write_text("\n".join([
        f"bootstrap.servers={mtls_proxy.bootstrap}", "security.protocol=SSL",
        "ssl.truststore.type=PEM", f"ssl.truststore.location={client_pki.ca}",
        "ssl.keystore.type=PEM", f"ssl.keystore.location={keystore}",
        "client.id=java-secured"]) + "\n")
    event = _with_fault(mtls_proxy, secured_kafka, unique_name,
                        lambda topic, group: _run([*java_round_trip, str(props), topic, group,
                                                   str(RECORDS)]))
    assert event["principal"] == "CN=client-app,O=kafka-chaos-proxy"
    assert event["client_id"] == "java-secured"


def test_franz_go_sasl_ssl_scram(sasl_proxy: RunningProxy, secured_kafka: SecuredKafka,
                                 unique_name: str, tmp_path: Path) -> None:
    command = builds.go_program_command("secured", "secured")
    password = tmp_path / "alice.password"
    password.write_text(secured_kafka.users["alice"] + "\n")
    event = _with_fault(sasl_proxy, secured_kafka, unique_name, lambda topic, group: _run([
        *command, "-bootstrap", sasl_proxy.bootstrap, "-ca", str(sasl_proxy.ca_file),
        "-mechanism", "SCRAM-SHA-512", "-user", "alice", "-password-file", str(password),
        "-topic", topic, "-group", group, "-count", str(RECORDS)]))
    assert event["principal"] == "alice" and event["client_id"] == "franz-secured"
