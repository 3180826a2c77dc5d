"""A cell a client cannot run at all is n/a with the reason, never a misleading outcome."""

from __future__ import annotations

from pathlib import Path

from kafka_chaos_proxy.lab.matrix.clients import CLIENTS
from kafka_chaos_proxy.lab.scenario import load_catalog

CATALOG = load_catalog(Path(__file__).resolve().parents[3] / "scenarios")


def test_kafka_go_has_no_static_membership_cells() -> None:
    static = CATALOG["static-fenced-instance-id-heartbeat"]
    kafka_go = CLIENTS["kafka-go"]
    assert kafka_go.protocol_for_scenario(static) is None
    assert "static membership" in (kafka_go.not_applicable_reason(static) or "")
    assert CLIENTS["sarama"].protocol_for_scenario(static) == "classic"


def test_protocol_mismatch_is_named() -> None:
    kip848 = next(s for s in CATALOG.values() if s.applicable_protocols == ["consumer"])
    reason = CLIENTS["kafka-go"].not_applicable_reason(kip848)
    assert reason == "kafka-go does not speak consumer"
    assert CLIENTS["franz-go"].protocol_for_scenario(kip848) == "consumer"
