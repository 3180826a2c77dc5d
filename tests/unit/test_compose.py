"""docker-compose.yml, Dockerfile and prometheus.yml stay wired to each other and to the code.

Why: no Docker engine runs in CI, so nothing would notice a renamed port, a CLI flag the
proxy no longer has, or a Prometheus target pointing at the wrong port. These checks parse
the files and compare the values that must agree.
"""

from __future__ import annotations

import base64
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from kafka_chaos_proxy.proxy.real_kafka import DEFAULT_KAFKA_VERSION

ROOT = Path(__file__).resolve().parents[2]
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


def _interpolate(value: str) -> str:
    """Resolve `${VAR:-default}` the way compose does when VAR is unset."""
    return _VAR.sub(lambda m: m.group(2) or "", value)


def _load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / name).read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _load("docker-compose.yml")


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    svc = compose["services"]
    assert {"kafka", "proxy", "prometheus"} <= set(svc)
    return dict(svc)


def _flags(command: list[str]) -> dict[str, str]:
    """`["run", "--a", "1", ...]` -> {"--a": "1"} (interpolated)."""
    assert command[0] == "run"
    args = [_interpolate(str(a)) for a in command[1:]]
    assert len(args) % 2 == 0, args
    pairs = dict(zip(args[::2], args[1::2], strict=True))
    assert all(k.startswith("--") for k in pairs), pairs
    return pairs


def _published(service: dict[str, Any]) -> dict[int, tuple[str, int]]:
    """container port -> (host ip, host port) from "IP:HOST:CONTAINER" entries."""
    out: dict[int, tuple[str, int]] = {}
    for entry in service.get("ports", []):
        host_ip, host_port, container_port = str(entry).split(":")
        out[int(container_port)] = (host_ip, int(host_port))
    return out


def _listeners(value: str) -> dict[str, tuple[str, int]]:
    out: dict[str, tuple[str, int]] = {}
    for item in value.split(","):
        name, _, address = item.partition("://")
        host, _, port = address.rpartition(":")
        out[name] = (host, int(port))
    return out


def _proxy_flags(services: dict[str, Any]) -> dict[str, str]:
    return _flags(list(services["proxy"]["command"]))


def test_kafka_is_official_image_of_default_version(services: dict[str, Any]) -> None:
    image = services["kafka"]["image"]
    assert image == f"apache/kafka:{DEFAULT_KAFKA_VERSION}"


def test_kafka_kraft_settings(services: dict[str, Any]) -> None:
    env = services["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    cluster_id = env["CLUSTER_ID"]
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16
    voters = env["KAFKA_CONTROLLER_QUORUM_VOTERS"]
    listeners = _listeners(env["KAFKA_LISTENERS"])
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert voters == f"{env['KAFKA_NODE_ID']}@kafka:{listeners[controller][1]}"
    protocol_map = dict(
        p.split(":") for p in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    assert set(listeners) == set(protocol_map)
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"


def test_proxy_bootstraps_from_kafka_internal_listener(services: dict[str, Any]) -> None:
    env = services["kafka"]["environment"]
    advertised = _listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    internal = advertised[env["KAFKA_INTER_BROKER_LISTENER_NAME"]]
    assert internal[0] == "kafka"
    assert _proxy_flags(services)["--bootstrap-server"] == f"{internal[0]}:{internal[1]}"
    assert services["proxy"]["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_proxy_ports_published_on_loopback(services: dict[str, Any]) -> None:
    flags = _proxy_flags(services)
    published = _published(services["proxy"])
    for flag in ("--port", "--admin-port"):
        port = int(flags[flag])
        assert published[port] == ("127.0.0.1", port), flag
    assert flags["--listen-host"] == "0.0.0.0"  # inside the container network
    assert flags["--admin-host"] == "0.0.0.0"
    assert flags["--advertised-host"] == "proxy"
    for name in ("kafka", "prometheus"):
        assert all(ip == "127.0.0.1" for ip, _ in _published(services[name]).values()), name


def test_healthchecks(services: dict[str, Any]) -> None:
    kafka_check = " ".join(services["kafka"]["healthcheck"]["test"])
    assert "kafka-broker-api-versions.sh" in kafka_check
    assert "kafka:9092" in kafka_check
    proxy_check = " ".join(services["proxy"]["healthcheck"]["test"])
    admin_port = _proxy_flags(services)["--admin-port"]
    assert f"127.0.0.1:{admin_port}/healthz" in proxy_check  # the route that needs no token
    image_check = " ".join(rest for word, rest in _dockerfile() if word == "HEALTHCHECK")
    assert f"127.0.0.1:{admin_port}/healthz" in image_check


def test_admin_beyond_loopback_has_a_token(services: dict[str, Any]) -> None:
    proxy = services["proxy"]
    assert proxy["environment"]["KCP_ADMIN_TOKEN"].startswith("${KCP_ADMIN_TOKEN:?")
    assert _proxy_flags(services)["--admin-allowed-host"] == "proxy"
    secret = _load("docker-compose.yml")["secrets"]["admin_token"]
    assert secret == {"environment": "KCP_ADMIN_TOKEN"}
    assert "admin_token" in services["prometheus"]["secrets"]
    job = _load("prometheus.yml")["scrape_configs"][0]
    assert job["authorization"] == {"type": "Bearer",
                                    "credentials_file": "/run/secrets/admin_token"}


def test_prometheus_scrapes_proxy_admin_port(services: dict[str, Any]) -> None:
    prometheus = services["prometheus"]
    assert any(
        str(v).startswith("./prometheus.yml:/etc/prometheus/prometheus.yml")
        for v in prometheus["volumes"]
    )
    config = _load("prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    job = jobs["kafka-chaos-proxy"]
    assert job["metrics_path"] == "/metrics"
    targets = [t for group in job["static_configs"] for t in group["targets"]]
    assert targets == [f"proxy:{_proxy_flags(services)['--admin-port']}"]


def _dockerfile() -> list[tuple[str, str]]:
    lines: list[tuple[str, str]] = []
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            lines.append((word.upper(), rest.strip()))
    return lines


def test_dockerfile_matches_compose(services: dict[str, Any]) -> None:
    import json

    instructions = _dockerfile()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    runs = " ".join(rest for word, rest in instructions if word == "RUN")
    assert "pip install ." in runs
    entrypoint = json.loads(next(rest for word, rest in instructions if word == "ENTRYPOINT"))
    assert entrypoint == ["kafka-chaos-proxy"]
    cmd = json.loads(next(rest for word, rest in instructions if word == "CMD"))
    assert _flags(cmd) == _proxy_flags(services)
    exposed = {
        int(p) for word, rest in instructions if word == "EXPOSE" for p in shlex.split(rest)
    }
    flags = _proxy_flags(services)
    assert exposed == {int(flags["--port"]), int(flags["--admin-port"])}
    copied = {rest.split()[0] for word, rest in instructions if word == "COPY"}
    for package in ("codec", "faults", "proxy", "lab", "scenarios"):
        assert package in copied, package
    assert services["proxy"]["build"] == "."


def test_cli_run_accepts_compose_flags(services: dict[str, Any]) -> None:
    """Every flag compose passes exists on `kafka-chaos-proxy run` (once that command is in)."""
    import typer.main

    from kafka_chaos_proxy.proxy.cli import app

    group = typer.main.get_command(app)
    commands = getattr(group, "commands", {})
    if "run" not in commands:
        pytest.skip("`kafka-chaos-proxy run` is not registered yet")
    options = {opt for param in commands["run"].params for opt in getattr(param, "opts", [])}
    missing = set(_proxy_flags(services)) - options
    assert not missing, f"compose passes flags `run` lacks: {sorted(missing)}"


def test_image_command_refuses_to_start_without_a_token(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The image's CMD as the CLI reads it: no token, no start (one line, exit 2)."""
    import json

    from typer.testing import CliRunner

    from kafka_chaos_proxy.proxy import logging as proxy_logging
    from kafka_chaos_proxy.proxy import runtime as proxy_runtime
    from kafka_chaos_proxy.proxy.cli import app

    cmd = json.loads(next(rest for word, rest in _dockerfile() if word == "CMD"))
    started: list[object] = []
    monkeypatch.setattr(proxy_runtime, "run", lambda options: started.append(options) or 0)
    monkeypatch.setattr(proxy_logging, "configure_logging", lambda *a, **k: None)
    monkeypatch.delenv("KCP_ADMIN_TOKEN", raising=False)
    result = CliRunner().invoke(app, cmd)
    assert result.exit_code == 2 and not started
    assert result.output.count("\n") == 1 and "without a token" in result.output
    monkeypatch.setenv("KCP_ADMIN_TOKEN", "s3cret")
    result = CliRunner().invoke(app, cmd)
    assert result.exit_code == 0 and len(started) == 1
