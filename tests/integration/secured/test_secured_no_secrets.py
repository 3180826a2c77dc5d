"""No secret ever leaves the proxy: after clients logged in through it with SASL PLAIN and
SCRAM (and the proxy logged in itself for discovery), none of the passwords appears in its
log (at debug level), its event log file, /metrics, its capture file or its banner, while each
of those shows the traffic was there (principals in events, redacted SaslAuthenticate frames
in the capture)."""

from __future__ import annotations

from pathlib import Path

from kafka_chaos_proxy.proxy.capture import read_capture
from kafka_chaos_proxy.proxy.real_kafka.provider import SecuredKafka
from tests.support.secured import (
    OWN_LOGIN_USER,
    RunningProxy,
    confluent_round_trip,
    create_topic,
    sasl_proxy_args,
)

SASL_AUTHENTICATE = 36
RECORDS = 10


def test_passwords_never_reach_logs_events_metrics_or_captures(
        secured_kafka: SecuredKafka, tmp_path: Path, unique_name: str) -> None:
    capture, event_log = tmp_path / "frames.kcpcap", tmp_path / "events.jsonl"
    proxy = RunningProxy([*sasl_proxy_args(secured_kafka, tmp_path), "--log-level", "debug",
                          "--capture", str(capture), "--event-log", str(event_log)],
                         tmp_path, ca_file=tmp_path / "self-signed" / "ca.pem")
    try:
        for user, mechanism in (("alice", "PLAIN"), ("bob", "SCRAM-SHA-512")):
            topic = f"{unique_name}-{user}"
            create_topic(secured_kafka.cluster.bootstrap_servers, topic)
            conf = {"bootstrap.servers": proxy.bootstrap, "security.protocol": "SASL_SSL",
                    "ssl.ca.location": str(proxy.ca_file), "sasl.mechanism": mechanism,
                    "sasl.username": user, "sasl.password": secured_kafka.users[user]}
            confluent_round_trip(conf, topic, f"{topic}-g", RECORDS).verify(RECORDS)
        metrics_text = proxy.admin.metrics()
    finally:
        assert proxy.stop() == 0
    outputs = {"log": proxy.log_path.read_bytes(), "banner": "\n".join(proxy.banner).encode(),
               "event log": event_log.read_bytes(), "metrics": metrics_text.encode(),
               "capture": capture.read_bytes()}
    secrets = [secured_kafka.users[u].encode() for u in ("alice", "bob", OWN_LOGIN_USER)]
    for where, data in outputs.items():
        assert data, f"{where} is empty: nothing to check"
        for secret in secrets:
            assert secret not in data, f"{secret!r} in the {where}"
    # ... and not because nothing was there
    events = outputs["event log"].decode()
    assert '"principal":"alice"' in events and '"principal":"bob"' in events
    sasl_frames = [f for f in read_capture(capture) if f.api_key == SASL_AUTHENTICATE]
    assert len(sasl_frames) >= 4 and all(b"[redacted: " in f.frame for f in sasl_frames)
    assert b"tls_error" not in outputs["log"]
