"""The matrix's clients: how to launch each harness and which group protocols it speaks.

One table, so adding a client is one entry. Python harnesses run from the harness sources
(`lab.paths.harness_dir`, `KCP_HARNESS_DIR`) on the current interpreter; Go and Java harnesses
are built on demand (and cached) by `lab.matrix.builds`, which is imported only when such a
client is used, so the Python columns run on a machine without Go or a JDK.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kafka_chaos_proxy.lab.paths import harness_dir

if TYPE_CHECKING:
    from kafka_chaos_proxy.lab.scenario import MemberSettings, Scenario

ALL_ASSIGNORS = ("range", "roundrobin", "sticky", "cooperative-sticky")


@dataclass(frozen=True)
class HarnessOptions:
    """Which harness options (`setup.members`, docs/scenarios.md) a client's harness can
    honour. A member asking for anything else makes the cell n/a with the reason, and the
    harness itself refuses it too (an `error` and `exited how=returned_error`), so an option
    is never silently ignored. Plain values (commit auto/manual/both, a processing delay, the
    consume loop) every harness supports."""

    #: Client-side assignors it can be given (classic protocol).
    assignors: tuple[str, ...] = ALL_ASSIGNORS
    #: Why `request_timeout_ms` cannot be set (None: it can).
    no_request_timeout: str | None = None
    #: Why `commit_in_revoke` cannot be honoured (None: it can).
    no_commit_in_revoke: str | None = None
    #: `consume_mode: once` (a library with a Consume call that runs a whole session).
    consume_once: bool = False
    #: `async_processing: true` (a goroutine per message marking when it finishes).
    async_processing: bool = False

    def unsupported(self, m: MemberSettings, library: str) -> str | None:
        """Why a member with settings `m` cannot run on this harness, or None."""
        if m.assignor is not None and m.assignor not in self.assignors:
            return (f"{library} has no {m.assignor} assignor (it has "
                    f"{', '.join(self.assignors)})")
        if m.request_timeout_ms is not None and self.no_request_timeout:
            return f"request_timeout_ms: {self.no_request_timeout}"
        if m.commit_in_revoke and self.no_commit_in_revoke:
            return f"commit_in_revoke: {self.no_commit_in_revoke}"
        if m.consume_mode == "once" and not self.consume_once:
            return (f"consume_mode once: {library} has no Consume call that runs a whole "
                    "group session (only sarama does)")
        if m.async_processing and not self.async_processing:
            return (f"async_processing: not supported by the {library} harness (sarama "
                    "only: a goroutine per message with MarkMessage)")
        return None


def python_harness_dir() -> Path:
    """The Python harness scripts, under the harness sources (read when a run starts)."""
    return harness_dir() / "python"


@dataclass(frozen=True)
class ClientSpec:
    """A matrix column. `protocols`: group protocols it can be run under, preferred first."""

    name: str
    language: str
    library: str
    protocols: tuple[str, ...]
    command: Callable[[], list[str]]
    #: Whether the library has static membership (group.instance.id); kafka-go does not.
    static_membership: bool = True
    options: HarnessOptions = HarnessOptions()

    def protocol_for(self, applicable: list[str]) -> str | None:
        """The protocol to run a scenario under, or None if the client speaks none of them."""
        for protocol in applicable:
            if protocol in self.protocols:
                return protocol
        return None

    def protocol_for_scenario(self, scenario: Scenario) -> str | None:
        """The protocol to run `scenario` under, or None where the cell is not applicable."""
        if self.not_applicable_reason(scenario) is not None:
            return None
        return self.protocol_for(scenario.applicable_protocols)

    def not_applicable_reason(self, scenario: Scenario) -> str | None:
        """Why the client cannot run the scenario at all (an n/a cell), or None."""
        if self.protocol_for(scenario.applicable_protocols) is None:
            return f"{self.name} does not speak {' or '.join(scenario.applicable_protocols)}"
        members = scenario.setup.members
        any_static = members.membership == "static" or any(
            members.settings(i).static for i in members.overrides)
        if any_static and not self.static_membership:
            return f"{self.library} has no static membership (group.instance.id)"
        return self.unsupported_options(scenario)

    def unsupported_options(self, scenario: Scenario) -> str | None:
        """The first member setting this client's harness cannot honour, said in one line
        ("member 1: ..." when only some members ask for it), or None."""
        members = scenario.setup.members
        protocol = self.protocol_for(scenario.applicable_protocols)
        reasons: list[tuple[int, str]] = []
        for index in range(scenario.total_members):
            m = members.settings(index)
            reason = self.options.unsupported(m, self.library)
            if reason is None and m.assignor is not None and protocol == "consumer":
                reason = (f"assignor {m.assignor}: {self.name} runs this scenario under "
                          "protocol consumer (KIP-848), where the broker assigns")
            if reason is not None:
                reasons.append((index, reason))
        if not reasons:
            return None
        index, reason = reasons[0]
        if len(reasons) == scenario.total_members:
            return reason
        return f"member {index}: {reason}"


def _python(script: str, module: str) -> Callable[[], list[str]]:
    def command() -> list[str]:
        # The harness runs on this interpreter, so a library of the [lab] extra that is not
        # installed here makes the client unavailable (said once) rather than a crashed run.
        if importlib.util.find_spec(module) is None:
            raise RuntimeError(f"{module} is not installed: pip install 'kafka-chaos-proxy[lab]'")
        return [sys.executable, "-u", str(python_harness_dir() / script)]

    return command


def _go(name: str) -> Callable[[], list[str]]:
    def command() -> list[str]:
        from kafka_chaos_proxy.lab.matrix import builds

        return list(builds.go_harness_command(name))  # type: ignore[arg-type]

    return command


def _java() -> list[str]:
    from kafka_chaos_proxy.lab.matrix import builds

    return list(builds.java_harness_command())


CLIENTS: dict[str, ClientSpec] = {
    spec.name: spec
    for spec in (
        ClientSpec("aiokafka", "python", "aiokafka", ("classic",),
                   _python("aiokafka_harness.py", "aiokafka"),
                   options=HarnessOptions(assignors=("range", "roundrobin", "sticky"))),
        ClientSpec("kafka-python", "python", "kafka-python", ("classic",),
                   _python("kafka_python_harness.py", "kafka")),
        ClientSpec("confluent-kafka", "python", "confluent-kafka (librdkafka)",
                   ("classic", "consumer"), _python("confluent_harness.py", "confluent_kafka"),
                   options=HarnessOptions(
                       assignors=("range", "roundrobin", "cooperative-sticky"))),
        ClientSpec("java-classic", "java", "org.apache.kafka:kafka-clients", ("classic",), _java),
        ClientSpec("java-consumer", "java", "org.apache.kafka:kafka-clients", ("consumer",),
                   _java),
        ClientSpec("sarama", "go", "github.com/IBM/sarama", ("classic",), _go("sarama"),
                   options=HarnessOptions(consume_once=True, async_processing=True)),
        ClientSpec("kafka-go", "go", "github.com/segmentio/kafka-go", ("classic",),
                   _go("kafka-go"), static_membership=False,
                   options=HarnessOptions(
                       assignors=("range", "roundrobin"),
                       no_request_timeout="kafka-go's Reader does not expose its request "
                       "timeouts (the group coordinator's is fixed at 5 s)",
                       no_commit_in_revoke="kafka-go's Reader has no revoke callback")),
        ClientSpec("franz-go", "go", "github.com/twmb/franz-go", ("classic", "consumer"),
                   _go("franz-go")),
    )
}


def library_versions() -> dict[str, str]:
    """Versions of the libraries behind each client, as far as they are known without running
    a harness (the harness's `started` event is the authority; this fills gaps)."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str] = {}
    for client, package in (("aiokafka", "aiokafka"), ("kafka-python", "kafka-python"),
                            ("confluent-kafka", "confluent-kafka")):
        with contextlib.suppress(PackageNotFoundError):
            out[client] = version(package)
    try:
        from kafka_chaos_proxy.lab.matrix import builds

        out.update({str(k): str(v) for k, v in builds.library_versions().items()})
    except Exception:  # builds missing or no toolchain: versions come from harness output
        pass
    return out
