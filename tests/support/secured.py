"""The proxy in front of a secured cluster, run the way a user runs it: `kafka-chaos-proxy run`
with TLS and SASL flags, in a subprocess, driven through its admin API.

`RunningProxy` reads the banner for the bootstrap address, keeps the process's log (JSON
lines) in a file and stops the process with SIGTERM. The client configurations each library
needs for the proxy's TLS listener live here too, so every test spells them one way.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from kafka_chaos_proxy.proxy.client import AdminClient
from kafka_chaos_proxy.proxy.real_kafka.provider import SecuredKafka
from tests.support import records
from tests.support.records import Tally

ROOT = Path(__file__).resolve().parents[2]
OWN_LOGIN_USER = "admin"  # the user the proxy logs in as itself (discovery, side channel)
START_S = 60.0
WAIT_S = 90.0  # bound for any one wait on a client or the event log
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RunningProxy:
    """`kafka-chaos-proxy run ARGS` with its admin API on a free port and JSON logs in
    `log_path`; `bootstrap` is the address its banner printed."""

    def __init__(self, args: list[str], workdir: Path, env: dict[str, str] | None = None,
                 ca_file: Path | None = None) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.ca_file = ca_file  # what clients trust the listeners with
        self.log_path = workdir / "proxy.log"
        self.admin_url = f"http://127.0.0.1:{free_port()}"
        cmd = [sys.executable, "-m", "kafka_chaos_proxy", "run", "--port", "0",
               "--admin-port", self.admin_url.rsplit(":", 1)[1], "--log-format", "json",
               *args]
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=self._log,
                                     env={**os.environ, **(env or {})})
        self.banner = self._read_banner()
        first = self.banner[0]
        self.bootstrap = first.rsplit(" ", 1)[1]
        self.admin = AdminClient(self.admin_url)

    def _read_banner(self) -> list[str]:
        assert self.proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline().decode()
            if not line:
                break
            lines.append(line.rstrip("\n"))
            if line.startswith("  CLI:"):  # the banner's last line
                break
        if not lines or "bootstrap servers for clients" not in lines[0]:
            self.stop()
            raise AssertionError(f"the proxy did not start: {lines}\n{self.log_text()[-3000:]}")
        return lines

    def log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def log_events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out

    def events(self, group: str) -> list[dict[str, Any]]:
        return self.admin.events(group=group, limit=10_000)

    def wait_for(self, check: Callable[[], T | None], what: str, timeout_s: float = WAIT_S) -> T:
        deadline = time.monotonic() + timeout_s
        while True:
            got = check()
            if got:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"never happened: {what}\n{self.log_text()[-3000:]}")
            time.sleep(0.2)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()
        return int(self.proc.returncode)


def not_coordinator_once(group: str, rule_id: str) -> dict[str, Any]:
    """The coordination fault every secured client test runs: one SyncGroup of its group is
    answered NOT_COORDINATOR."""
    return {"id": rule_id, "match": {"apis": ["SyncGroup"], "group_id": group},
            "action": {"type": "error", "error": "NOT_COORDINATOR"},
            "dosage": {"max_injections": 1}}


def injected_sync(events: list[dict[str, Any]], rule_id: str) -> dict[str, Any] | None:
    """The SyncGroup event the rule answered, once the event log has it."""
    for event in events:
        fault = event.get("fault") or {}
        if event.get("api") == "SyncGroup" and fault.get("rule") == rule_id:
            return event
    return None


# ---------------------------------------------------------------- clients


def create_topic(bootstrap: str, topic: str, partitions: int = 3) -> None:
    """A topic, made through the broker's PLAINTEXT listener (set-up, not under test)."""
    from confluent_kafka.admin import AdminClient as KafkaAdmin
    from confluent_kafka.admin import NewTopic

    admin = KafkaAdmin({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)


def confluent_round_trip(conf: dict[str, Any], topic: str, group: str, count: int) -> Tally:
    """Produce `count` checksummed records with confluent-kafka (librdkafka), consume them
    back in `group`, commit; the tally of what came back (verified by the caller)."""
    from confluent_kafka import Consumer, Producer

    producer = Producer({**conf, "acks": "all"})
    for seq in range(count):
        producer.produce(topic, records.value(seq), key=records.key(seq))
    assert producer.flush(60) == 0, "the producer did not deliver every record"
    consumer = Consumer({**conf, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False, "session.timeout.ms": 6000,
                         "heartbeat.interval.ms": 500})
    consumer.subscribe([topic])
    tally = Tally()
    deadline = time.monotonic() + WAIT_S
    try:
        while tally.count < count and time.monotonic() < deadline:
            for message in consumer.consume(100, timeout=0.5):
                if message.error() is None:
                    tally.add(message.partition(), message.key(), message.value() or b"")
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return tally


def kafka_python_round_trip(options: dict[str, Any], topic: str, group: str,
                            count: int) -> Tally:
    """The same with kafka-python (its own protocol code and TLS set-up, pure Python)."""
    from kafka import KafkaConsumer, KafkaProducer

    producer = KafkaProducer(acks="all", **options)
    for seq in range(count):
        producer.send(topic, records.value(seq), key=records.key(seq))
    producer.flush(60)
    producer.close(10)
    consumer = KafkaConsumer(topic, group_id=group, auto_offset_reset="earliest",
                             enable_auto_commit=False, session_timeout_ms=6000,
                             heartbeat_interval_ms=500, **options)
    tally = Tally()
    deadline = time.monotonic() + WAIT_S
    try:
        while tally.count < count and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                for message in batch:
                    tally.add(message.partition, message.key, message.value)
        consumer.commit()
    finally:
        consumer.close()
    return tally


# ---------------------------------------------------------------- the SASL proxy


def password_file(directory: Path, user: str, password: str) -> Path:
    path = directory / f"{user}.password"
    path.write_text(password + "\n")
    path.chmod(0o600)
    return path


def sasl_proxy_args(cluster: SecuredKafka, workdir: Path) -> list[str]:
    own = password_file(workdir, OWN_LOGIN_USER, cluster.users[OWN_LOGIN_USER])
    return ["--bootstrap-server", cluster.sasl_ssl_bootstrap_servers,
            "--upstream-tls-ca", str(cluster.tls.ca_file),
            "--tls-self-signed", "--tls-self-signed-dir", str(workdir / "self-signed"),
            "--upstream-sasl-mechanism", "SCRAM-SHA-512",
            "--upstream-sasl-username", OWN_LOGIN_USER,
            "--upstream-sasl-password-file", str(own)]
