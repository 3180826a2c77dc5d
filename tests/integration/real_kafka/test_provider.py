"""How `provide_kafka` chooses its broker, checked against a real one.

Why: the choice (external / testcontainers / local) decides what every integration test
talks to; a wrong guess would silently test against nothing or start a second broker.
"""

from __future__ import annotations

import pytest

from kafka_chaos_proxy.proxy.real_kafka import KafkaCluster, provide_kafka
from kafka_chaos_proxy.proxy.real_kafka.provider import choose_kind, docker_engine_answers


def test_external_uses_given_bootstrap(
    kafka_cluster: KafkaCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With KAFKA_BOOTSTRAP_SERVERS set, the given broker is used as is (nothing started)."""
    monkeypatch.delenv("KCP_KAFKA_PROVIDER", raising=False)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_cluster.bootstrap_servers)
    monkeypatch.setenv("KAFKA_VERSION", kafka_cluster.version)
    assert choose_kind() == "external"
    with provide_kafka() as external:
        assert external.kind == "external"
        assert external.bootstrap_servers == kafka_cluster.bootstrap_servers
        assert external.nodes == kafka_cluster.nodes
        assert external.version == kafka_cluster.version
        with pytest.raises(NotImplementedError):
            external.stop_node(1)


def test_external_too_small_for_request(
    kafka_cluster: KafkaCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KCP_KAFKA_PROVIDER", "external")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_cluster.bootstrap_servers)
    with pytest.raises(RuntimeError, match="need 3"), provide_kafka(nodes=3):
        pass


def test_forced_kind_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")
    monkeypatch.setenv("KCP_KAFKA_PROVIDER", "local")
    assert choose_kind() == "local"
    monkeypatch.setenv("KCP_KAFKA_PROVIDER", "bogus")
    with pytest.raises(ValueError, match="KCP_KAFKA_PROVIDER"):
        choose_kind()


def test_docker_choice_follows_engine_ping(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the env overrides the choice is testcontainers exactly when an engine
    answers a ping (a docker CLI alone does not count); three nodes always run locally."""
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("KCP_KAFKA_PROVIDER", raising=False)
    expected = "testcontainers" if docker_engine_answers() else "local"
    assert choose_kind(1) == expected
    assert choose_kind(3) == "local"


def test_testcontainers_kafka_api_present() -> None:
    """The class and methods the container path calls exist in the installed version."""
    from testcontainers.community.kafka import KafkaContainer

    for method in ("with_kraft", "get_bootstrap_server", "start", "stop"):
        assert callable(getattr(KafkaContainer, method)), method
