"""A real Apache Kafka for tests, demos and users without Docker.

`provide_kafka()` hands out a running cluster: an external one named by
`KAFKA_BOOTSTRAP_SERVERS`, a testcontainers broker when a Docker engine answers, or local
KRaft processes run from the official Apache Kafka jars fetched by Maven. `fetch_classpath()`
is exposed too so Java client harnesses can compile against `kafka-clients`.

Imports nothing else of ours: only the standard library, plus testcontainers/docker
(the `[docker]` extra) lazily, only once a Docker engine answers.
"""

from kafka_chaos_proxy.proxy.real_kafka.cluster import KafkaCluster
from kafka_chaos_proxy.proxy.real_kafka.kraft import (
    DEFAULT_KAFKA_VERSION,
    SUPPORTED_VERSIONS,
    BrokerStartError,
    MissingToolError,
    check_tools,
)
from kafka_chaos_proxy.proxy.real_kafka.maven import MavenError, cache_root, fetch_classpath
from kafka_chaos_proxy.proxy.real_kafka.provider import ProviderUnavailable, provide_kafka

__all__ = [
    "DEFAULT_KAFKA_VERSION",
    "SUPPORTED_VERSIONS",
    "BrokerStartError",
    "KafkaCluster",
    "MavenError",
    "MissingToolError",
    "ProviderUnavailable",
    "cache_root",
    "check_tools",
    "fetch_classpath",
    "provide_kafka",
]
