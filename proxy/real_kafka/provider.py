"""Pick where the Kafka for a test run comes from: external, container, or local JVMs.

Why this order: a developer or CI that already has a broker (KAFKA_BOOTSTRAP_SERVERS) wants
it used untouched; where a Docker engine answers, testcontainers is the convention people
know; everywhere else we run the official jars ourselves. `KCP_KAFKA_PROVIDER`
(external|testcontainers|local) forces a choice, e.g. to test the local path on a machine
that has Docker.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from kafka_chaos_proxy.proxy.config import parse_bootstrap
from kafka_chaos_proxy.proxy.real_kafka.cluster import KafkaCluster
from kafka_chaos_proxy.proxy.real_kafka.kraft import LocalKraftCluster
from kafka_chaos_proxy.proxy.real_kafka.probe import metadata_brokers
from kafka_chaos_proxy.proxy.real_kafka.security import Secured, TlsFiles

#: testcontainers' KafkaContainer drives Confluent's image start scripts, so the image is a
#: cp-kafka one; override with KCP_KAFKA_IMAGE.
DEFAULT_CONTAINER_IMAGE = "confluentinc/cp-kafka:7.6.0"


#: What a user who forces the container provider without the `[docker]` extra is told.
DOCKER_EXTRA_MISSING = ("KCP_KAFKA_PROVIDER=testcontainers needs the docker extra: "
                        "pip install 'kafka-chaos-proxy[docker]'")


class ProviderUnavailable(RuntimeError):
    """The chosen provider cannot run here for a reason the user can fix; the message is the
    one line that says how (the CLI prints it without a traceback)."""


def testcontainers_installed() -> bool:
    """Whether the `[docker]` extra is there, found without importing it (an import of
    testcontainers costs time and is only worth paying once a Docker engine answers)."""
    try:
        return importlib.util.find_spec("testcontainers") is not None
    except (ImportError, ValueError):
        return False


def docker_engine_answers(timeout_s: float = 3.0) -> bool:
    """True only if a Docker engine replies to a ping; a docker CLI alone is not enough."""
    try:
        import docker  # optional (the [docker] extra): only this path needs it
    except ImportError:
        return False
    try:
        client = docker.from_env(timeout=int(max(1, timeout_s)))
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # any failure to reach the engine means "no Docker"
        return False


def choose_kind(nodes: int = 1) -> str:
    """The provider `provide_kafka` would use right now."""
    forced = os.environ.get("KCP_KAFKA_PROVIDER", "").strip().lower()
    if forced:
        if forced not in {"external", "testcontainers", "local"}:
            raise ValueError(f"KCP_KAFKA_PROVIDER={forced!r}: use external|testcontainers|local")
        return forced
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return "external"
    # A testcontainers KafkaContainer is one node; multi-node clusters run locally. Without
    # the [docker] extra a plain install runs the embedded local broker even where Docker is.
    if nodes == 1 and testcontainers_installed() and docker_engine_answers():
        return "testcontainers"
    return "local"


@contextmanager
def provide_kafka(
    nodes: int = 1,
    version: str | None = None,
    *,
    overrides: dict[str, str] | None = None,
) -> Iterator[KafkaCluster]:
    """Yield a running Kafka cluster with `nodes` brokers; stop it afterwards if we own it.

    `version` applies to the local kind (default `DEFAULT_KAFKA_VERSION`); `overrides` are
    extra server.properties for the local kind.
    """
    kind = choose_kind(nodes)
    if kind == "external":
        yield _external(nodes)
    elif kind == "testcontainers":
        with _testcontainers() as cluster:
            yield cluster
    else:
        with LocalKraftCluster(nodes, version, overrides=overrides) as local:
            yield KafkaCluster(
                bootstrap_servers=local.bootstrap_servers,
                nodes={i: ("127.0.0.1", n.broker_port) for i, n in local.nodes.items()},
                version=local.version,
                log_paths=local.log_paths(),
                kind="local",
                control=local,
            )


def _external(nodes: int) -> KafkaCluster:
    servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")
    if not servers:
        raise RuntimeError("KCP_KAFKA_PROVIDER=external needs KAFKA_BOOTSTRAP_SERVERS")
    errors: list[str] = []
    for host, port in parse_bootstrap(servers):
        try:
            brokers = metadata_brokers(host, port)
        except OSError as exc:
            errors.append(f"{host}:{port}: {exc!r}")
            continue
        if len(brokers) < nodes:
            raise RuntimeError(
                f"KAFKA_BOOTSTRAP_SERVERS={servers} has {len(brokers)} brokers, need {nodes}"
            )
        return KafkaCluster(
            bootstrap_servers=servers,
            nodes={b.node_id: (b.host, b.port) for b in brokers},
            version=os.environ.get("KAFKA_VERSION", "unknown"),
            log_paths=[],
            kind="external",
        )
    raise RuntimeError(f"KAFKA_BOOTSTRAP_SERVERS={servers} does not answer: {errors}")


@contextmanager
def _testcontainers() -> Iterator[KafkaCluster]:
    try:
        from testcontainers.community.kafka import KafkaContainer
    except ImportError:
        raise ProviderUnavailable(DOCKER_EXTRA_MISSING) from None

    image = os.environ.get("KCP_KAFKA_IMAGE", DEFAULT_CONTAINER_IMAGE)
    with KafkaContainer(image=image).with_kraft() as container:
        servers = container.get_bootstrap_server()
        host, port = parse_bootstrap(servers)[0]
        brokers = metadata_brokers(host, port)
        yield KafkaCluster(
            bootstrap_servers=servers,
            nodes={b.node_id: (b.host, b.port) for b in brokers},
            version=image.rsplit(":", 1)[-1],
            log_paths=[],
            kind="testcontainers",
        )


@dataclass
class SecuredKafka:
    """A running local cluster with SSL (mTLS) and SASL_SSL listeners
    (`proxy.real_kafka.security`): where each listener is, the PEM files, the users."""

    cluster: KafkaCluster  # the PLAINTEXT side (probes, topic set-up)
    ssl_bootstrap_servers: str
    sasl_ssl_bootstrap_servers: str
    tls: TlsFiles
    users: dict[str, str]


@contextmanager
def provide_secured_kafka(version: str | None = None,
                          security: Secured | None = None) -> Iterator[SecuredKafka]:
    """Yield a one-node local cluster with secured listeners; stop it afterwards.

    Always the local kind: an external or container broker's security is the user's own set-up
    (docs/secured.md lists the container environment that gives the same listeners)."""
    security = security or Secured()
    with LocalKraftCluster(1, version, security=security) as local:
        assert local.tls_files is not None
        yield SecuredKafka(
            cluster=KafkaCluster(
                bootstrap_servers=local.bootstrap_servers,
                nodes={i: ("127.0.0.1", n.broker_port) for i, n in local.nodes.items()},
                version=local.version, log_paths=local.log_paths(), kind="local",
                control=local),
            ssl_bootstrap_servers=local.ssl_bootstrap_servers,
            sasl_ssl_bootstrap_servers=local.sasl_ssl_bootstrap_servers,
            tls=local.tls_files,
            users=dict(security.users),
        )
