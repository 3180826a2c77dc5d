"""Build the Go and Java consumer harnesses on demand and hand out their command lines.

The matrix runner asks for an argv prefix (`go_harness_command("sarama")`,
`java_harness_command()`) and appends the contract's flags (tests/clients/README.md). Builds
happen here, lazily, because a matrix run may need only some harnesses and a Go build costs
tens of seconds of CPU on a small machine.

Why a content hash and not mtimes: a fresh clone or a checkout gives every file a new mtime,
while the hash of the sources (plus the toolchain and, for Java, the classpath) changes only
when the binary would. The stamp is written after a successful build, so an interrupted
build is redone. A file lock serializes concurrent builds of the same output (matrix cells
may start in parallel).

Go builds use the committed go.sum (`-mod=readonly`) and never download a toolchain
(`GOTOOLCHAIN=local`). Java compiles one source file with javac against kafka-clients and
slf4j-simple fetched by `proxy.real_kafka.fetch_classpath`.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from kafka_chaos_proxy.lab.paths import LabPathError, harness_dir

GoHarness = Literal["sarama", "kafka-go", "franz-go"]

#: Harness name -> (package dir under tests/clients/go, Go module path).
GO_HARNESSES: dict[str, tuple[str, str]] = {
    "sarama": ("sarama", "github.com/IBM/sarama"),
    "kafka-go": ("kafkago", "github.com/segmentio/kafka-go"),
    "franz-go": ("franz", "github.com/twmb/franz-go"),
}

JAVA_LIBRARY = "org.apache.kafka:kafka-clients"
JAVA_MAIN_CLASS = "ConsumerHarness"
#: kafka-clients 3.x and 4.x depend on slf4j-api 1.7.x; the binding must match that line.
SLF4J_SIMPLE = "org.slf4j:slf4j-simple:1.7.36"

#: Upper bound for one build step; a cold Go build of one harness takes well under this.
BUILD_TIMEOUT_S = 900.0
_LOG_TAIL_CHARS = 4000

#: How the harness sources are named inside build stamps, wherever `KCP_HARNESS_DIR` puts
#: them, so a stamp written for a checkout stays valid (and a moved tree is not rebuilt).
_STAMP_PREFIX = Path("tests") / "clients"


class HarnessBuildError(RuntimeError):
    """A harness could not be built (missing sources or tools, or the compiler failed)."""


def clients_dir() -> Path:
    """The harness sources: `KCP_HARNESS_DIR`, else tests/clients of the source checkout."""
    try:
        return harness_dir()
    except LabPathError as exc:
        raise HarnessBuildError(str(exc)) from None


def go_dir() -> Path:
    return clients_dir() / "go"


def java_dir() -> Path:
    return clients_dir() / "java"


# --- Go ------------------------------------------------------------------------------------


def go_harness_command(name: GoHarness) -> list[str]:
    """The argv prefix that runs the Go harness `name`, building it first if needed."""
    if name not in GO_HARNESSES:
        raise ValueError(f"unknown Go harness {name!r}; expected one of {sorted(GO_HARNESSES)}")
    package, _module = GO_HARNESSES[name]
    return go_program_command(package, name)


def go_program_command(package: str, name: str) -> list[str]:
    """The argv of any main package of the Go module (`tests/clients/go/<package>`), built
    as `bin/<name>` the way the harnesses are; e.g. the secured-cluster round trip."""
    src = go_dir()
    go = _tool("go")
    out_dir = src / "bin"
    binary = out_dir / name
    sources = [src / "go.mod", src / "go.sum", *_files(src / "internal", "*.go"),
               *_files(src / package, "*.go")]
    stamp = _digest(sources, extra=[_go_version(go), name])
    env = _go_env()
    with _build_lock(out_dir):
        if _fresh(binary, stamp):
            return [str(binary)]
        log = out_dir / f"{name}.build.log"
        _run([go, "mod", "download"], cwd=src, env=env, log=log, what="go mod download")
        _run([go, "build", "-o", str(binary), f"./{package}"], cwd=src, env=env, log=log,
             what=f"go build of the {name} harness", append=True)
        _write_stamp(binary, stamp)
    return [str(binary)]


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    env["GOTOOLCHAIN"] = "local"
    # Keep the caller's other GOFLAGS (e.g. -buildvcs=false) but never -mod=mod: the
    # committed go.sum is the source of truth and a build must not rewrite it.
    flags = [f for f in env.get("GOFLAGS", "").split() if not f.startswith("-mod=")]
    env["GOFLAGS"] = " ".join([*flags, "-mod=readonly"])
    return env


@functools.cache
def _go_version(go: str) -> str:
    proc = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True,
                          timeout=60, check=False)
    return proc.stdout.strip() or "unknown"


def go_module_versions() -> dict[str, str]:
    """Go module path -> version, as required by the committed go.mod (no build needed)."""
    text = (go_dir() / "go.mod").read_text()
    wanted = {module for _pkg, module in GO_HARNESSES.values()}
    out: dict[str, str] = {}
    for match in re.finditer(r"^\s*(?:require\s+)?(\S+)\s+v(\S+)", text, re.MULTILINE):
        if match.group(1) in wanted:
            out[match.group(1)] = match.group(2)
    return out


# --- Java ----------------------------------------------------------------------------------


def default_kafka_clients_version() -> str:
    """kafka-clients matches the broker the tests run by default."""
    from kafka_chaos_proxy.proxy.real_kafka import DEFAULT_KAFKA_VERSION

    return DEFAULT_KAFKA_VERSION


def java_classpath(kafka_clients_version: str) -> list[Path]:
    """The harness's runtime jars (kafka-clients, its dependencies, slf4j-simple)."""
    from kafka_chaos_proxy.proxy.real_kafka import fetch_classpath

    return fetch_classpath(
        [f"{JAVA_LIBRARY}:{kafka_clients_version}", SLF4J_SIMPLE],
        f"java-harness/{kafka_clients_version}",
    )


def java_harness_command(kafka_clients_version: str | None = None) -> list[str]:
    """The argv prefix that runs the Java harness against `kafka_clients_version` (default:
    the default broker version), compiling it first if needed."""
    version = kafka_clients_version or default_kafka_clients_version()
    if not re.fullmatch(r"[0-9A-Za-z.\-]+", version):
        raise ValueError(f"not a Maven version: {version!r}")
    src_dir = java_dir() / "src"
    sources = _files(src_dir, "*.java")
    if not sources:
        raise HarnessBuildError(f"no Java sources in {src_dir}")
    java, javac = _tool("java"), _tool("javac")
    jars = java_classpath(version)
    classpath = os.pathsep.join(str(j) for j in jars)
    out_dir = java_dir() / "classes" / version
    stamp = _digest(sources, extra=[_javac_version(javac), *(j.name for j in jars)])
    marker = out_dir / f"{JAVA_MAIN_CLASS}.class"
    with _build_lock(out_dir):
        if not _fresh(marker, stamp):
            for old in out_dir.glob("*.class"):
                old.unlink()
            _run([javac, "-nowarn", "-encoding", "UTF-8", "-d", str(out_dir), "-cp", classpath,
                  *(str(s) for s in sources)],
                 cwd=java_dir(), env=dict(os.environ), log=out_dir / "build.log",
                 what=f"javac of the Java harness (kafka-clients {version})")
            _write_stamp(marker, stamp)
    return [
        java,
        # slf4j-simple: client logs to stderr (the harness log), with times to line up
        # against the event stream.
        "-Dorg.slf4j.simpleLogger.logFile=System.err",
        "-Dorg.slf4j.simpleLogger.showDateTime=true",
        "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
        "-cp",
        os.pathsep.join([str(out_dir), classpath]),
        JAVA_MAIN_CLASS,
    ]


@functools.cache
def _javac_version(javac: str) -> str:
    proc = subprocess.run([javac, "-version"], capture_output=True, text=True, timeout=60,
                          check=False)
    return (proc.stdout + proc.stderr).strip() or "unknown"


# --- report --------------------------------------------------------------------------------


def library_versions(kafka_clients_version: str | None = None) -> dict[str, str]:
    """Harness name -> library version, for the matrix report; no build or download.

    Keys: "sarama", "kafka-go", "franz-go" (from go.mod) and "java" (kafka-clients), the
    latter also as "java-classic" and "java-consumer", the matrix's two Java columns.
    """
    modules = go_module_versions()
    out = {name: modules.get(module, "unknown") for name, (_pkg, module) in GO_HARNESSES.items()}
    java = kafka_clients_version or default_kafka_clients_version()
    out.update({"java": java, "java-classic": java, "java-consumer": java})
    return out


# --- build plumbing ------------------------------------------------------------------------


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise HarnessBuildError(f"`{name}` not found on PATH; it is needed to build the harness")
    return path


def _files(folder: Path, pattern: str) -> list[Path]:
    return sorted(p for p in folder.rglob(pattern) if p.is_file()) if folder.is_dir() else []


def _digest(files: Iterable[Path], extra: Iterable[str]) -> str:
    h = hashlib.sha256()
    root = clients_dir()
    for item in extra:
        h.update(item.encode() + b"\0")
    for path in files:
        h.update(str(_STAMP_PREFIX / path.relative_to(root)).encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


def _stamp_path(output: Path) -> Path:
    return output.with_name(f".{output.name}.stamp")


def _fresh(output: Path, stamp: str) -> bool:
    stamp_file = _stamp_path(output)
    return output.is_file() and stamp_file.is_file() and stamp_file.read_text() == stamp


def _write_stamp(output: Path, stamp: str) -> None:
    _stamp_path(output).write_text(stamp)


@contextmanager
def _build_lock(out_dir: Path) -> Iterator[None]:
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / ".build.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(cmd: list[str], *, cwd: Path, env: dict[str, str], log: Path, what: str,
         append: bool = False) -> None:
    """Run one build step with its output in `log`; fail with the log's tail."""
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with log.open("a" if append else "w") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        try:
            proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=BUILD_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired as exc:
            raise HarnessBuildError(
                f"{what} timed out after {BUILD_TIMEOUT_S:.0f}s (log: {log})"
            ) from exc
        out.write(f"# exit {proc.returncode} after {time.monotonic() - started:.1f}s\n")
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-_LOG_TAIL_CHARS:]
        raise HarnessBuildError(f"{what} failed (exit {proc.returncode}); log {log}:\n{tail}")
