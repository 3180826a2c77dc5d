"""Fetch Maven artifacts and their runtime dependencies into a flat lib folder.

Why Maven: the machine reaches Maven Central but no other download site, and the official
Apache Kafka jars (broker, tools, clients) are all published there. Resolving through
`mvn dependency:copy-dependencies` gives us the exact runtime classpath the Kafka build
declares, instead of a hand-kept jar list that would rot with every release.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from xml.sax.saxutils import escape

#: Folder name inside a lib dir that marks a finished, complete fetch. Written last, so an
#: interrupted fetch is redone rather than trusted.
_DONE_MARKER = ".complete"

#: Upper bound for one Maven run: a cold fetch of the broker is ~100 MB.
MAVEN_TIMEOUT_S = 900.0


class MavenError(RuntimeError):
    """Raised when Maven cannot resolve the requested artifacts."""


#: What a user without Maven is told (Debian/Ubuntu names; the JDK comes along with it).
MAVEN_INSTALL_HINT = "install Maven 3.8+, e.g. `apt-get install maven`"


def cache_root() -> Path:
    """The root of everything this package caches; `KCP_CACHE_DIR` overrides it so tests and
    CI can measure a cold start or keep the cache inside a workspace. Otherwise the XDG base
    directory spec applies: `$XDG_CACHE_HOME/kafka-chaos-proxy`, else `~/.cache/...`."""
    env = os.environ.get("KCP_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and Path(xdg).is_absolute():  # the spec says a relative value is to be ignored
        return Path(xdg) / "kafka-chaos-proxy"
    return Path.home() / ".cache" / "kafka-chaos-proxy"


def _pom(artifacts: list[str]) -> str:
    deps = []
    for coord in artifacts:
        parts = coord.split(":")
        if len(parts) != 3:
            raise ValueError(f"expected group:artifact:version, got {coord!r}")
        group, artifact, version = (escape(p) for p in parts)
        deps.append(
            "    <dependency>"
            f"<groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
            f"<version>{version}</version></dependency>"
        )
    body = "\n".join(deps)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.kafka-chaos-proxy</groupId>
  <artifactId>classpath-fetch</artifactId>
  <version>0</version>
  <packaging>pom</packaging>
  <dependencies>
{body}
  </dependencies>
</project>
"""


def _fingerprint(artifacts: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(artifacts)).encode()).hexdigest()[:16]


def lib_dir(name: str) -> Path:
    """Where `fetch_classpath(..., name)` puts its jars."""
    return cache_root() / name / "lib"


def fetch_classpath(
    artifacts: list[str],
    name: str,
    *,
    maven_repo: Path | None = None,
    timeout_s: float = MAVEN_TIMEOUT_S,
) -> list[Path]:
    """Return the jars of `artifacts` plus their runtime dependencies, fetching them once.

    `name` picks the cache folder (`<cache>/<name>/lib`), so different classpaths (a broker
    version, a client harness) never mix jars of different versions; a different artifact
    set asked for under a name already taken lands in `<cache>/<name>/lib-<hash>`. A second
    call with the same artifacts only lists the folder: no Maven run, so fixtures stay fast
    when warm.
    `maven_repo` (or env `KCP_MAVEN_REPO`) points Maven at another local repository, e.g. to
    measure a cold fetch or keep CI's downloads apart.
    """
    if not artifacts:
        raise ValueError("no artifacts given")
    dest = lib_dir(name)
    fingerprint = _fingerprint(artifacts)
    if _complete(dest, fingerprint):
        return _jars(dest)
    if (dest / _DONE_MARKER).is_file():
        # The name already holds another artifact set, maybe in use by a running JVM:
        # never replace it; this set gets a folder of its own beside it.
        dest = dest.with_name(f"lib-{fingerprint}")
        if _complete(dest, fingerprint):
            return _jars(dest)
    if maven_repo is None and os.environ.get("KCP_MAVEN_REPO"):
        maven_repo = Path(os.environ["KCP_MAVEN_REPO"]).expanduser()
    dest.parent.mkdir(parents=True, exist_ok=True)
    # One fetch per folder at a time across processes (parallel pytest sessions): the others
    # wait, then find the finished folder instead of replacing jars a broker is using.
    with open(dest.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _complete(dest, fingerprint):
            _run_maven(artifacts, dest, fingerprint, maven_repo, timeout_s)
    return _jars(dest)


def is_cached(artifacts: list[str], name: str) -> bool:
    """Whether `fetch_classpath(artifacts, name)` would only list a folder (no Maven run), so
    a start-up check asks for `mvn` only when it will really be needed."""
    dest = lib_dir(name)
    fingerprint = _fingerprint(artifacts)
    return _complete(dest, fingerprint) or _complete(
        dest.with_name(f"lib-{fingerprint}"), fingerprint)


def _complete(dest: Path, fingerprint: str) -> bool:
    marker = dest / _DONE_MARKER
    return marker.is_file() and marker.read_text().strip() == fingerprint


def _run_maven(
    artifacts: list[str], dest: Path, fingerprint: str, maven_repo: Path | None, timeout_s: float
) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise MavenError(f"mvn not found on PATH (needed once to fetch the Kafka jars into "
                         f"{cache_root()}): {MAVEN_INSTALL_HINT}")
    # Fetch into a sibling temp folder and rename, so an interrupted fetch never leaves a
    # half-filled lib folder behind the marker.
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".fetch-") as tmp:
        tmp_path = Path(tmp)
        (tmp_path / "pom.xml").write_text(_pom(artifacts))
        out = tmp_path / "lib"
        cmd = [
            mvn,
            "-q",
            "-B",
            "-f",
            str(tmp_path / "pom.xml"),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={out}",
        ]
        if maven_repo is not None:
            cmd.append(f"-Dmaven.repo.local={maven_repo}")
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise MavenError(f"Maven timed out after {timeout_s:.0f}s: {cmd}") from exc
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr)[-4000:]
            raise MavenError(f"Maven failed for {artifacts}:\n{tail}")
        (out / _DONE_MARKER).write_text(fingerprint)
        if dest.exists():  # left by an interrupted fetch (no marker): not in use
            shutil.rmtree(dest)
        out.rename(dest)


def _jars(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.jar"))
