"""The image of ./Dockerfile, checked without a Docker engine (none runs here or in CI).

1. Its build context: the checkout filtered by .dockerignore, the build stage's COPYs done into
   a folder and its `pip wheel --no-deps` run there. The wheel must hold every module and data
   file of the package (the links to codec/, faults/, proxy/, lab/ and scenarios/ followed)
   and the console script the ENTRYPOINT names: a COPY or an ignore line too few fails here.
2. Its run: the ENTRYPOINT and CMD, with the final stage's ENV, as a subprocess of the suite's
   venv (which stands in for the image's /opt/kcp), its ports remapped to free ones, plus what
   a user passes with `-e` (the brokers: the suite's real broker; a token; the advertised host
   127.0.0.1, as for clients outside the container). Then: the HEALTHCHECK's own command fails
   before the start and passes after it, a consumer group produces and consumes through the
   proxy, the admin API answers (/healthz without a token, 401 without one elsewhere, rules
   with it), clients are told the advertised host and the broker listener's own port, and
   SIGTERM (`docker stop`) ends the process with exit code 0.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx

from kafka_chaos_proxy.proxy.real_kafka import KafkaCluster
from tests.support import dockerfile
from tests.support.go_harness import create_topic
from tests.support.proxy_subprocess import ProxySubprocess, free_ports

ROOT = Path(__file__).resolve().parents[3]
#: What the base image (python:3.11-slim) sets before our ENV lines.
BASE_ENV = {"PATH": "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8"}
TOKEN = "image-test-token"
PACKAGE_DATA = (".py", ".json", ".tsv", ".properties", ".yaml", ".xml")


def _stages() -> list[dockerfile.Stage]:
    return dockerfile.stages((ROOT / "Dockerfile").read_text())


def _venv_in_image(runtime: dockerfile.Stage) -> str:
    """/opt/kcp: the folder the runtime stage copies from the build stage."""
    for instruction in runtime.all("COPY"):
        words = instruction.args.split()
        if words[0] == "--from=build":
            assert words[1] == words[2], "the venv must keep its path (its scripts name it)"
            return words[2]
    raise AssertionError("the runtime stage copies no venv from the build stage")


def _package_files() -> set[str]:
    """Every module and data file of kafka_chaos_proxy in the checkout, links followed."""
    out: set[str] = set()
    package = ROOT / "kafka_chaos_proxy"
    for folder, dirs, files in os.walk(package, followlinks=True):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            if name.endswith(PACKAGE_DATA):
                out.add((Path(folder) / name).relative_to(ROOT).as_posix())
    return out


def test_the_build_context_builds_a_complete_wheel(tmp_path: Path) -> None:
    build = _stages()[0]
    context = tmp_path / "context"
    sent = dockerfile.stage_context(ROOT, context)
    assert not any(p.startswith((".venv/", ".git/", "tests/", "examples/")) for p in sent)
    workdir = tmp_path / "src"  # the build stage's WORKDIR
    assert build.last("WORKDIR").args == "/src"
    workdir.mkdir()
    dockerfile.apply_copies(context, workdir, build)
    dist = tmp_path / "dist"
    # The build stage's `pip wheel --no-cache-dir --no-deps --wheel-dir /dist .`, build
    # isolation included (setuptools comes from PyPI as in the image).
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir",
                           "--disable-pip-version-check", "-q", "--wheel-dir", str(dist), "."],
                          cwd=workdir, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    wheels = list(dist.glob("kafka_chaos_proxy-*.whl"))
    assert len(wheels) == 1, wheels  # the name the build stage installs (/dist/kafka_chaos_...)
    with zipfile.ZipFile(wheels[0]) as wheel:
        names = set(wheel.namelist())
        entry_points = next(wheel.read(n).decode() for n in names
                            if n.endswith(".dist-info/entry_points.txt"))
    missing = _package_files() - names
    assert not missing, f"the image's wheel lacks {sorted(missing)[:20]}"
    assert any(n.startswith("kafka_chaos_proxy/lab/catalog/") and n.endswith(".yaml")
               for n in names), "no scenario catalog in the wheel"
    entrypoint = dockerfile.exec_form(_stages()[-1].last("ENTRYPOINT").args)
    assert f"{entrypoint[0]} = kafka_chaos_proxy.proxy.cli:main" in entry_points


def _image_run(tmp_path: Path, bootstrap: str) -> tuple[list[str], list[str], dict[str, str],
                                                        dict[str, int]]:
    """(argv, health check argv, environment, ports) of `docker run -e ... kafka-chaos-proxy`
    with the image's ports remapped to free ones and its venv replaced by the suite's."""
    runtime = _stages()[-1]
    env = {**BASE_ENV, **runtime.env(BASE_ENV)}
    image_bin = f"{_venv_in_image(runtime)}/bin"
    assert env["PATH"].startswith(image_bin + ":")
    env["PATH"] = str(Path(sys.executable).parent) + env["PATH"][len(image_bin):]
    env["HOME"] = str(tmp_path / "home")
    ports = dict(zip(("KCP_PORT", "KCP_PORT_BASE", "KCP_ADMIN_PORT"), free_ports(3),
                     strict=True))
    for key in ports:
        assert key in env, f"the image sets no {key}"
    env.update({k: str(v) for k, v in ports.items()})
    # What `docker run -e` adds: the brokers, the token, the host clients outside can reach.
    env.update(KCP_BOOTSTRAP_SERVER=bootstrap, KCP_ADMIN_TOKEN=TOKEN,
               KCP_ADVERTISED_HOST="127.0.0.1")
    entrypoint = dockerfile.exec_form(runtime.last("ENTRYPOINT").args)
    cmd = dockerfile.exec_form(runtime.last("CMD").args)
    program = shutil.which(entrypoint[0], path=env["PATH"])
    assert program and program.startswith(str(Path(sys.executable).parent)), program
    _options, check = dockerfile.healthcheck(runtime.last("HEALTHCHECK").args)
    check_program = shutil.which(check[0], path=env["PATH"])
    assert check_program, check
    return [program, *entrypoint[1:], *cmd], [check_program, *check[1:]], env, ports


def _health_check(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    options, _ = dockerfile.healthcheck(_stages()[-1].last("HEALTHCHECK").args)
    timeout = float(options["timeout"].rstrip("s"))
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout + 5,
                          check=False)


def _produce_and_consume(bootstrap: str, topic: str, group: str, count: int) -> list[bytes]:
    from confluent_kafka import Consumer, Producer

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i in range(count):
        producer.produce(topic, f"record-{i}".encode())
    assert producer.flush(30) == 0, "not every record was delivered through the proxy"
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "auto.offset.reset": "earliest", "client.id": "image-test"})
    consumer.subscribe([topic])
    got: list[bytes] = []
    try:
        for _ in range(120):
            got += [m.value() or b"" for m in consumer.consume(count, timeout=0.5)
                    if not m.error()]
            if len(got) >= count:
                break
    finally:
        consumer.close()
    return got


def test_the_image_command_serves_clients_and_its_health_check(
        kafka_cluster: KafkaCluster, unique_name: str, tmp_path: Path) -> None:
    argv, check, env, ports = _image_run(tmp_path, kafka_cluster.bootstrap_servers)
    refused = _health_check(check, env)
    assert refused.returncode != 0, "the health check passed with no proxy running"

    admin = f"http://127.0.0.1:{ports['KCP_ADMIN_PORT']}"
    proxy = ProxySubprocess(argv, env, admin, tmp_path / "proxy.log", tmp_path / "home")
    proxy.start()
    try:
        passed = _health_check(check, env)
        assert passed.returncode == 0, passed.stdout + passed.stderr

        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.get(f"{admin}/healthz", timeout=10).json() == {"status": "ok"}
        assert httpx.get(f"{admin}/faults", timeout=10).status_code == 401
        rule = {"id": "image-test", "match": {"apis": ["Heartbeat"], "group_id": "nobody"},
                "action": {"type": "error", "error": "NOT_COORDINATOR"}}
        added = httpx.post(f"{admin}/faults", json=rule, headers=auth, timeout=10)
        assert added.status_code == 201, added.text
        listed = httpx.get(f"{admin}/faults", headers=auth, timeout=10).json()
        assert [r["id"] for r in listed] == ["image-test"]

        bootstrap = f"127.0.0.1:{ports['KCP_PORT']}"
        topic, group = f"{unique_name}-t", f"{unique_name}-g"
        create_topic(bootstrap, topic, 1)
        got = _produce_and_consume(bootstrap, topic, group, 20)
        assert sorted(got) == sorted(f"record-{i}".encode() for i in range(20))

        brokers = httpx.get(f"{admin}/brokers", headers=auth, timeout=10).json()
        assert [(b["proxy_host"], b["proxy_port"]) for b in brokers] == [
            ("127.0.0.1", ports["KCP_PORT_BASE"])], brokers
        groups = httpx.get(f"{admin}/groups/{group}", headers=auth, timeout=10)
        assert groups.status_code == 200, groups.text
    finally:
        code = proxy.stop()
    assert code == 0, proxy.log()[-3000:]


def test_the_image_command_refuses_to_start_without_a_token(
        kafka_cluster: KafkaCluster, tmp_path: Path) -> None:
    """`docker run kafka-chaos-proxy` without KCP_ADMIN_TOKEN: one line, exit 2, as the image
    binds the admin API beyond loopback."""
    argv, _check, env, _ports = _image_run(tmp_path, kafka_cluster.bootstrap_servers)
    del env["KCP_ADMIN_TOKEN"]
    proc = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "without a token" in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
