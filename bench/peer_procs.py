"""The peer proxies of bench/peers.py: how Toxiproxy and Kroxylicious are built and started.

Both are fetched from the registries this machine reaches and cached beside the Kafka jars
(`proxy.real_kafka.cache_root()`, i.e. `~/.cache/kafka-chaos-proxy/peers/` unless
`KCP_CACHE_DIR` or `XDG_CACHE_HOME` say otherwise), so only the first run pays:

- Toxiproxy: `go install github.com/Shopify/toxiproxy/v2/cmd/server@<version>` from the Go
  module proxy, into `peers/toxiproxy-<version>/`. It is a plain TCP proxy: it forwards bytes
  and rewrites nothing, so the broker must advertise the Toxiproxy port itself (the bench's
  broker has an extra listener for that, `proxy.real_kafka.kraft.ExtraListener`). Its proxy
  is created over its HTTP API (POST /proxies), with no toxics: pass-through.
- Kroxylicious: `io.kroxylicious:kroxylicious-runtime` and its runtime dependencies from
  Maven Central (`proxy.real_kafka.fetch_classpath`, the resolver the broker's jars come
  through), into `peers/kroxylicious-<version>/lib/`. Its command-line module is not
  published there, so `bench/KroxyliciousLauncher.java` (compiled once with javac into the
  cache) starts it from a YAML configuration: one virtual cluster in front of the broker, a
  port-per-broker gateway, no filters (pass-through).

Each runs as a subprocess like this proxy does in bench/throughput.py, so its CPU time and
RSS are read from /proc and are its own; its output goes to a log file.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

from throughput import ProxyProcess, api_versions_request, free_port, recv_exact

from kafka_chaos_proxy.proxy.real_kafka import cache_root, fetch_classpath

BENCH = Path(__file__).resolve().parent

TOXIPROXY_MODULE = "github.com/Shopify/toxiproxy/v2"
#: The newest release the Go module proxy serves (its version list stops at v2.5.0, yet
#: v2.12.0 resolves; nothing later does).
TOXIPROXY_VERSION = "v2.12.0"

#: The newest kroxylicious-runtime Maven Central serves (its metadata's latest; the jars of
#: later tags of the repository are not there).
KROXYLICIOUS_VERSION = "0.12.0"
#: The logging binding Kroxylicious's own distribution ships with (kroxylicious-app's pom).
KROXYLICIOUS_LOG4J_VERSION = "2.24.3"
KROXYLICIOUS_LAUNCHER = BENCH / "KroxyliciousLauncher.java"

#: Bounds: a cold `go install` or Maven fetch on a small machine takes a minute or two.
BUILD_TIMEOUT_S = 900.0
START_TIMEOUT_S = 90.0


class PeerError(RuntimeError):
    """A peer could not be built or started; the message says what to look at."""


def peers_cache() -> Path:
    """Where the peers' binaries and jars are kept between runs."""
    return Path(cache_root()) / "peers"


# --------------------------------------------------------------------------- building


def _go() -> str:
    """The go command: on PATH, else the official tarball's place (/usr/local/go)."""
    found = shutil.which("go") or (
        "/usr/local/go/bin/go" if os.access("/usr/local/go/bin/go", os.X_OK) else None)
    if found is None:
        raise PeerError("go not found on PATH nor in /usr/local/go/bin: Toxiproxy is built "
                        "from its Go module (install Go 1.23+ from https://go.dev/dl/)")
    return found


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One build per cache folder at a time across processes."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _run_build(cmd: Sequence[str], what: str, env: dict[str, str] | None = None) -> None:
    """Run one build step, bounded; its output comes back only when it fails."""
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, env=env,
                              timeout=BUILD_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise PeerError(f"{what} did not finish in {BUILD_TIMEOUT_S:.0f}s: {cmd}") from None
    if proc.returncode != 0:
        raise PeerError(f"{what} failed (exit {proc.returncode}):\n"
                        f"{(proc.stdout + proc.stderr)[-4000:]}")


def toxiproxy_binary(version: str = TOXIPROXY_VERSION) -> Path:
    """The toxiproxy server binary of `version`, built once with `go install`."""
    folder = peers_cache() / f"toxiproxy-{version}"
    binary = folder / "toxiproxy-server"
    if os.access(binary, os.X_OK):
        return binary
    with _locked(folder):
        if os.access(binary, os.X_OK):
            return binary
        with tempfile.TemporaryDirectory(dir=folder, prefix=".build-") as tmp:
            # GOBIN of its own, renamed into place: an interrupted build leaves no binary.
            # CGO off and these linker flags are those of Toxiproxy's release builds
            # (.goreleaser.yml), the version flag included.
            env = {**os.environ, "GOBIN": tmp, "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}
            ldflags = f"-s -w -X {TOXIPROXY_MODULE}.Version={version.lstrip('v')}"
            _run_build([_go(), "install", f"-ldflags={ldflags}",
                        f"{TOXIPROXY_MODULE}/cmd/server@{version}"],
                       f"go install of Toxiproxy {version}", env=env)
            os.replace(Path(tmp) / "server", binary)
    return binary


def kroxylicious_artifacts(version: str = KROXYLICIOUS_VERSION) -> list[str]:
    """Maven coordinates of a pass-through Kroxylicious: the runtime (which brings Netty, the
    Kafka protocol classes and Jackson) and the log4j binding its distribution uses."""
    return [f"io.kroxylicious:kroxylicious-runtime:{version}",
            f"org.apache.logging.log4j:log4j-core:{KROXYLICIOUS_LOG4J_VERSION}",
            f"org.apache.logging.log4j:log4j-slf4j2-impl:{KROXYLICIOUS_LOG4J_VERSION}"]


def kroxylicious_classpath(version: str = KROXYLICIOUS_VERSION) -> str:
    """The classpath that starts Kroxylicious `version`: its jars (fetched once) and the
    launcher, compiled once against them (keyed by the launcher's source and javac)."""
    jars = fetch_classpath(kroxylicious_artifacts(version), f"peers/kroxylicious-{version}")
    lib = jars[0].parent
    javac = shutil.which("javac")
    if javac is None:
        raise PeerError("javac not found on PATH: the Kroxylicious launcher is compiled once "
                        "(install a JDK 17+, e.g. `apt-get install openjdk-17-jdk-headless`)")
    digest = hashlib.sha256(KROXYLICIOUS_LAUNCHER.read_bytes() + version.encode()
                            + Path(javac).resolve().as_posix().encode()).hexdigest()[:12]
    classes = peers_cache() / f"kroxylicious-{version}" / f"launcher-{digest}"
    if not (classes / "KroxyliciousLauncher.class").is_file():
        with _locked(classes.parent):
            if not (classes / "KroxyliciousLauncher.class").is_file():
                # Compiled beside its final place and renamed: never half a folder.
                tmp = Path(tempfile.mkdtemp(dir=classes.parent, prefix=".javac-"))
                try:
                    _run_build([javac, "-proc:none", "-cp", f"{lib}/*", "-d", str(tmp),
                                str(KROXYLICIOUS_LAUNCHER)], "javac of the Kroxylicious launcher")
                    tmp.chmod(0o755)
                    tmp.rename(classes)
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
    return f"{lib}/*:{classes}"


# --------------------------------------------------------------------------- configuration


def toxiproxy_proxy_spec(name: str, listen_port: int, upstream: str) -> dict[str, object]:
    """The body of Toxiproxy's POST /proxies: listen on loopback, forward to `upstream`,
    enabled, no toxics (a proxy without toxics passes bytes through unchanged)."""
    return {"name": name, "listen": f"127.0.0.1:{listen_port}", "upstream": upstream,
            "enabled": True}


def kroxylicious_config(upstream: str, bootstrap_port: int, node_port: int,
                        node_ids: tuple[int, int] = (1, 1)) -> str:
    """Kroxylicious 0.12's YAML configuration for pass-through: one virtual cluster whose
    target is the broker's bootstrap, one gateway that gives each broker a port of its own
    (`portIdentifiesNode`: the bootstrap port for clients' first connection, then node
    `node_ids[0]` at `node_port`, the next node at `node_port + 1`, ...; Metadata answers are
    rewritten to these addresses), and no filters. JSON is YAML, so it is written as JSON:
    every string quoted, nothing for a YAML reader to guess."""
    first, last = node_ids
    config = {
        "virtualClusters": [{
            "name": "bench",
            "targetCluster": {"bootstrapServers": upstream},
            "gateways": [{
                "name": "plain",
                "portIdentifiesNode": {
                    "bootstrapAddress": f"127.0.0.1:{bootstrap_port}",
                    "nodeStartPort": node_port,
                    "nodeIdRanges": [{"name": "brokers", "start": first, "end": last}],
                },
            }],
            "logNetwork": False,
            "logFrames": False,
        }],
    }
    return json.dumps(config, indent=2) + "\n"


#: The log levels of Kroxylicious's own distribution (root WARN, io.kroxylicious INFO), to
#: stderr, which the bench sends to a log file.
KROXYLICIOUS_LOG4J2 = """\
status = warn
appender.err.type = Console
appender.err.name = STDERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = %d{yyyy-MM-dd HH:mm:ss} <%t> %-5p %c - %m%n
rootLogger.level = warn
rootLogger.appenderRef.err.ref = STDERR
logger.kroxylicious.name = io.kroxylicious
logger.kroxylicious.level = info
"""


# --------------------------------------------------------------------------- running


def api_versions_ok(host: str, port: int, timeout_s: float = 2.0) -> bool:
    """Whether one ApiVersions exchange completes at host:port (through a proxy: whether it
    is up and reaches the broker)."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as s:
            s.sendall(api_versions_request())
            (size,) = struct.unpack(">i", recv_exact(s, 4))
            recv_exact(s, size)
            return True
    except OSError:
        return False


def wait_serving(proc: subprocess.Popen[bytes], bootstrap: str, log_path: Path,
                 what: str, timeout_s: float = START_TIMEOUT_S) -> None:
    """Return once an ApiVersions exchange through `bootstrap` completes; fail early if the
    process exits, and after `timeout_s` at most."""
    host, port = bootstrap.rsplit(":", 1)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise PeerError(f"{what} exited with {proc.returncode} during start-up; "
                            f"see {log_path}")
        if api_versions_ok(host, int(port)):
            return
        time.sleep(0.2)
    raise PeerError(f"{what} did not serve {bootstrap} within {timeout_s:.0f}s; see {log_path}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _http(method: str, url: str, body: dict[str, object] | None = None) -> bytes:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:  # loopback only
        return bytes(resp.read())


@contextlib.contextmanager
def run_toxiproxy(binary: Path, listen_port: int, upstream: str, log_path: Path
                  ) -> Iterator[ProxyProcess]:
    """A toxiproxy server with one pass-through proxy 127.0.0.1:`listen_port` -> `upstream`,
    created over its HTTP API once the API answers."""
    api_port = free_port()
    # Without LOG_LEVEL its logger writes everything down to trace (four lines per
    # connection); info is the level the other proxies run at (one line per connection).
    env = {**os.environ, "LOG_LEVEL": "info"}
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([str(binary), "-host", "127.0.0.1", "-port", str(api_port)],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=env)
    try:
        api = f"http://127.0.0.1:{api_port}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise PeerError(f"toxiproxy exited with {proc.returncode}; see {log_path}")
            try:
                _http("GET", f"{api}/version")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise PeerError(f"toxiproxy's API did not answer; see {log_path}") from None
                time.sleep(0.1)
        _http("POST", f"{api}/proxies", toxiproxy_proxy_spec("kafka", listen_port, upstream))
        bootstrap = f"127.0.0.1:{listen_port}"
        wait_serving(proc, bootstrap, log_path, "toxiproxy")
        yield ProxyProcess(proc, bootstrap)
    finally:
        _stop(proc)


@contextlib.contextmanager
def run_kroxylicious(classpath: str, upstream: str, log_path: Path,
                     java_opts: Sequence[str] = (), node_ids: tuple[int, int] = (1, 1)
                     ) -> Iterator[ProxyProcess]:
    """Kroxylicious in pass-through mode in front of `upstream`, on free loopback ports."""
    java = shutil.which("java")
    if java is None:
        raise PeerError("java not found on PATH: Kroxylicious runs on Java 17+")
    with tempfile.TemporaryDirectory(prefix="kcp-bench-kroxylicious-") as tmp:
        bootstrap_port = free_port()
        node_port = free_port()
        config = Path(tmp) / "config.yaml"
        config.write_text(kroxylicious_config(upstream, bootstrap_port, node_port, node_ids))
        log4j = Path(tmp) / "log4j2.properties"
        log4j.write_text(KROXYLICIOUS_LOG4J2)
        cmd = [java, *java_opts, f"-Dlog4j2.configurationFile={log4j}", "-cp", classpath,
               "KroxyliciousLauncher", str(config)]
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT)
        try:
            bootstrap = f"127.0.0.1:{bootstrap_port}"
            wait_serving(proc, bootstrap, log_path, "kroxylicious")
            yield ProxyProcess(proc, bootstrap)
        finally:
            _stop(proc)
