"""Which Apache Kafka releases we can run locally, and what each needs on its classpath.

Why a table: the Maven poms of `kafka_2.13` do not declare a logging backend, and the
backend changed between 3.x (reload4j) and 4.x (log4j2). Without the binding the broker runs
but logs nothing, which makes failures undiagnosable.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Newest 4.x release whose artifacts are complete on Maven Central (4.4.0 lacks
#: `kafka-tools-api`, so its broker classpath cannot be resolved).
DEFAULT_KAFKA_VERSION = "4.3.1"

#: Versions exercised by this project's tests; others of the same major usually work.
SUPPORTED_VERSIONS: tuple[str, ...] = ("4.3.1", "3.9.2")

_LOG4J2_VERSION = "2.25.4"
_SLF4J1_VERSION = "1.7.36"
_RELOAD4J_VERSION = "1.2.25"


@dataclass(frozen=True)
class Distribution:
    """How to launch one Kafka release from a flat lib folder."""

    version: str
    artifacts: tuple[str, ...]
    log_config_resource: str
    log_config_property: str
    #: Extra `StorageTool format` arguments (feature levels fixed at format time).
    format_args: tuple[str, ...] = ()
    #: server.properties entries this release needs for our tests' expectations.
    properties: tuple[tuple[str, str], ...] = ()

    @property
    def major(self) -> int:
        return int(self.version.split(".", 1)[0])

    @property
    def cache_name(self) -> str:
        return f"kafka/{self.version}"

    def log_config_flag(self, path: str) -> str:
        """The JVM flag that points the logging backend at our config file."""
        if self.major >= 4:
            return f"-D{self.log_config_property}={path}"
        return f"-D{self.log_config_property}=file:{path}"


def distribution(version: str) -> Distribution:
    """Describe the broker classpath for `version` ("4.3.1", "3.9.2", ...)."""
    major = int(version.split(".", 1)[0])
    base = (f"org.apache.kafka:kafka_2.13:{version}", f"org.apache.kafka:kafka-tools:{version}")
    if major >= 4:
        return Distribution(
            version=version,
            artifacts=(*base, f"org.apache.logging.log4j:log4j-slf4j-impl:{_LOG4J2_VERSION}"),
            log_config_resource="log4j2.properties",
            log_config_property="log4j2.configurationFile",
        )
    if major == 3:
        return Distribution(
            version=version,
            artifacts=(
                *base,
                f"org.slf4j:slf4j-reload4j:{_SLF4J1_VERSION}",
                f"ch.qos.reload4j:reload4j:{_RELOAD4J_VERSION}",
            ),
            log_config_resource="log4j.properties",
            log_config_property="log4j.configuration",
            # KIP-848 is a preview in 3.9: the coordinator serves the `consumer` protocol
            # only with this switch (4.x has it on by default).
            properties=(("group.coordinator.rebalance.protocols", "classic,consumer"),),
        )
    raise ValueError(f"unsupported Kafka version {version!r}: need 3.x (KRaft) or 4.x")
