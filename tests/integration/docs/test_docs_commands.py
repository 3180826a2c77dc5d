"""The README and docs/*.md work verbatim in a fresh shell: every command line of their ```bash
and ```sh blocks is run, against a real proxy, or skipped for a reason this test names.

A new user copies commands top to bottom. So each line runs as written, with bash, from the
checkout's root, in an environment without .venv/bin on PATH and without our variables, against
a proxy started the way the Quickstart starts one (default ports 9192/9190; busy ports fail the
test rather than skip it) in front of the session's broker, after a consumer group `orders` went
through it, since that is what the examples look at. curl runs with `fail-with-body` from a
private .curlrc, so an HTTP error fails its line without the line being changed.

Lines that cannot run here (starting a second proxy, the test suite, hour-long matrix runs,
Docker, installing into the reader's environment) are listed with the reason; a line this
file cannot classify fails the test, so a new kind of example needs a decision here first.
`events tail` lines must have `--limit`; they run with a timeout, and a tail still following
live events when it expires counts as success (that is what a tail does); every other line
must end by itself with exit code 0.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from kafka_chaos_proxy.proxy.real_kafka import KafkaCluster

ROOT = Path(__file__).resolve().parents[3]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PORTS = (9192, 9193, 9190)  # bootstrap, first broker listener, admin API
ADMIN = "http://127.0.0.1:9190"
CAPTURE = Path("/tmp/kcp-rebalance.kcpcap")  # the path the README's capture example uses
TAIL_TIMEOUT_S = 10.0
LINE_TIMEOUT_S = 60.0

_FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass(frozen=True)
class Line:
    document: str
    number: int  # first line of the command in the document
    text: str

    def __str__(self) -> str:
        return f"{self.document}:{self.number}: {self.text}"


@dataclass(frozen=True)
class Verdict:
    run: bool
    reason: str
    tail: bool = False


def command_lines(path: Path) -> Iterator[Line]:
    """Every command of the ```bash/```sh blocks of a document: continuation lines and
    multi-line quoted arguments joined, blank and comment-only lines left out."""
    fenced, lang, pending, start = False, "", "", 0
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        fence = _FENCE.match(raw)
        if fence and not pending:
            fenced, lang = (True, fence.group(1)) if not fenced else (False, "")
            continue
        if not fenced or lang not in ("bash", "sh"):
            continue
        if not pending and (not raw.strip() or raw.lstrip().startswith("#")):
            continue
        if not pending:
            start = number
        pending = f"{pending}\n{raw}" if pending else raw
        if pending.endswith("\\"):
            continue
        try:
            shlex.split(pending, comments=True)
        except ValueError:  # an open quote: the command goes on on the next line
            continue
        yield Line(str(path.relative_to(ROOT)), start, pending)
        pending = ""
    assert not pending, f"{path}: a command never ends: {pending!r}"


def _segment(tokens: list[str]) -> Verdict | None:
    """One command of a pipeline; None when this file has no rule for it."""
    if not tokens:
        return None
    head, rest = tokens[0], tokens[1:]
    if head in ("echo", "printf"):
        return Verdict(True, "input for the next command")
    if head == "scripts/kcp" and rest:
        sub = rest[0]
        if sub == "events" and rest[1:2] == ["tail"]:
            if "--limit" in rest or "-n" in rest or any(t.startswith("--limit=") for t in rest):
                return Verdict(True, "events tail with --limit", tail=True)
            return None  # a tail without --limit never ends: give it one
        if sub in ("faults", "groups", "decode", "holds", "timeline"):
            return Verdict(True, f"{sub} against the test proxy")
        if sub == "matrix":
            return Verdict(False, "a matrix run: minutes to hours against its own broker")
        if sub == "matrix-merge":
            return Verdict(False, "merges the artifacts of matrix runs this test does not make")
        if sub == "run":
            return Verdict(False, "starts a second proxy")
    if head == "curl" and any("localhost:9190/" in t or "127.0.0.1:9190/" in t for t in rest):
        return Verdict(True, "the test proxy's admin API")
    if head == "scripts/run":
        return Verdict(False, "starts a proxy (and a broker): this test runs its own")
    if head == ".venv/bin/python" and rest[:2] == ["-m", "kafka_chaos_proxy.proxy.real_kafka"]:
        return Verdict(False, "starts a local Kafka broker: this test runs against its own")
    if head == "scripts/test":
        return Verdict(False, "the whole test suite")
    if head == ".venv/bin/python" and rest[:3] == ["-m", "pip", "wheel"]:
        return Verdict(True, "builds the wheel from the checkout")
    if head == "pip" and rest[:1] == ["install"]:
        return Verdict(False, "installs into the reader's own environment "
                       "(tests/integration/api/test_examples_python.py installs the wheel "
                       "into a fresh venv)")
    if head == "pytest" and rest[:1] == ["examples/python"]:
        return Verdict(False, "the example suite: test_examples_python.py runs it from the "
                       "built wheel against the session's broker")
    if head == "docker":
        return Verdict(False, "needs Docker")
    return None


def classify(line: Line) -> Verdict | None:
    """Whether a command line runs here (and why), or None when no rule covers it."""
    tokens = shlex.split(line.text.replace("\\\n", " "), comments=True)
    segments: list[list[str]] = [[]]
    for token in tokens:
        if token == "|":
            segments.append([])
        else:
            segments[-1].append(token)
    verdicts = [_segment(s) for s in segments]
    if any(v is None for v in verdicts):
        return None
    found = [v for v in verdicts if v is not None]
    if not all(v.run for v in found):
        return next(v for v in found if not v.run)
    return Verdict(True, found[-1].reason, tail=any(v.tail for v in found))


def _all_lines() -> list[Line]:
    return [line for doc in DOCUMENTS for line in command_lines(doc)]


def test_every_command_line_of_the_docs_is_classified() -> None:
    lines = _all_lines()
    assert len(lines) > 10, "too few command lines found to mean anything"
    unknown = [str(line) for line in lines if classify(line) is None]
    assert not unknown, ("lines this test cannot classify (an `events tail` needs --limit; "
                         "a new kind of command needs a rule in classify()):\n"
                         + "\n".join(unknown))


def test_the_classifier_and_the_splitter() -> None:
    def verdict(text: str) -> Verdict | None:
        return classify(Line("x", 1, text))

    assert verdict("scripts/kcp events tail --group g") is None
    assert verdict("scripts/kcp events tail --group g --limit 3") == Verdict(
        True, "events tail with --limit", tail=True)
    assert verdict("echo 00 | scripts/kcp decode --hex")
    assert verdict("rm -rf /") is None
    assert verdict("scripts/run --capture x") == Verdict(
        False, "starts a proxy (and a broker): this test runs its own")
    assert verdict(".venv/bin/python -m kafka_chaos_proxy.proxy.real_kafka --secured") == Verdict(
        False, "starts a local Kafka broker: this test runs against its own")
    assert verdict(".venv/bin/python -m something_else") is None
    assert verdict("curl -s example.com/faults") is None
    assert verdict("pytest tests") is None
    assert verdict("pip install x") == Verdict(False, "installs into the reader's own "
                                               "environment (tests/integration/api/"
                                               "test_examples_python.py installs the wheel "
                                               "into a fresh venv)")


# ---------------------------------------------------------------- against a real proxy


def _ports_free() -> list[int]:
    busy = []
    for port in PORTS:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                busy.append(port)
    return busy


@pytest.fixture
def docs_proxy(kafka_cluster: KafkaCluster, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`kafka-chaos-proxy run` as the Quickstart starts it, in front of the test broker."""
    busy = _ports_free()
    if busy:
        pytest.fail(f"ports {busy} are in use: the docs' commands talk to the default ports "
                    "9192 (bootstrap) and 9190 (admin API), so this test needs them free")
    CAPTURE.unlink(missing_ok=True)
    cmd = [str(ROOT / ".venv/bin/kafka-chaos-proxy"), "run",
           "--bootstrap-server", kafka_cluster.bootstrap_servers]
    cmd += ["--capture", str(CAPTURE), "--capture-api", "JoinGroup", "--capture-api", "SyncGroup"]
    log = open(tmp_path / "proxy.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{ADMIN}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail("the proxy did not start:\n" + (tmp_path / "proxy.log").read_text())
            time.sleep(0.2)
        yield proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()
        CAPTURE.unlink(missing_ok=True)


def _consumer_group_orders(unique_name: str) -> None:
    """The group the examples look at: one consumer of `orders` joins through the proxy."""
    from confluent_kafka import Consumer
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = f"{unique_name}-orders"
    bootstrap = "127.0.0.1:9192"
    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive until the result
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(30)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "orders",
                         "client.id": "docs-test"})
    consumer.subscribe([topic])
    for _ in range(60):
        consumer.poll(0.5)
        if consumer.assignment():
            break
    assert consumer.assignment(), "the docs' consumer group never formed"
    consumer.close()


def _ensure_capture() -> str:
    """The README's capture file, as the proxy's `run --capture` wrote it."""
    assert CAPTURE.exists() and CAPTURE.stat().st_size > 8, "run --capture wrote no frames"
    return "written by the proxy (run --capture)"


def _fresh_env(home: Path) -> dict[str, str]:
    """A new user's shell: no .venv/bin on PATH, none of our variables, curl failing on
    HTTP errors (from its own .curlrc, so the lines run unchanged)."""
    (home / ".curlrc").write_text("fail-with-body\nmax-time = 30\n")
    path = ":".join(p for p in ("/usr/local/bin", "/usr/bin", "/bin")
                    if Path(p).is_dir())
    return {"HOME": str(home), "PATH": path, "CURL_HOME": str(home), "LANG": "C.UTF-8",
            "TERM": "dumb", "COLUMNS": "120"}


def _run_line(line: Line, verdict: Verdict, env: dict[str, str]) -> tuple[str | None, str]:
    """(failure or None, how it went) for one line run with bash from the checkout's root."""
    timeout = TAIL_TIMEOUT_S if verdict.tail else LINE_TIMEOUT_S
    proc = subprocess.Popen(["bash", "-c", line.text], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
        if verdict.tail:
            return None, f"ran {timeout:g} s, still following live events (success)"
        return f"{line}\n  did not end within {timeout:g} s:\n{out.decode()[-2000:]}", ""
    if proc.returncode != 0:
        return f"{line}\n  exit code {proc.returncode}:\n{out.decode()[-2000:]}", ""
    return None, "exit 0"


def test_every_docs_command_runs_against_a_real_proxy(docs_proxy: subprocess.Popen[bytes],
                                                      unique_name: str,
                                                      tmp_path: Path) -> None:
    _consumer_group_orders(unique_name)
    time.sleep(1.5)  # the proxy's sweep flushes the capture once a second
    capture_note = _ensure_capture()
    env = _fresh_env(tmp_path)
    report, failures = [], []
    for document in DOCUMENTS:
        httpx.delete(f"{ADMIN}/faults", timeout=10).raise_for_status()  # each doc from scratch
        for line in command_lines(document):
            verdict = classify(line)
            if verdict is None:
                failures.append(f"{line}\n  cannot classify")
                continue
            if not verdict.run:
                report.append(f"skipped {line}\n  ({verdict.reason})")
                continue
            failure, how = _run_line(line, verdict, env)
            if failure:
                failures.append(failure)
            else:
                report.append(f"ran     {line}\n  ({verdict.reason}: {how})")
    summary = "\n".join([f"capture file: {capture_note}", *report])
    print(summary)  # what ran and what was skipped: shown with -s or -rA
    assert not failures, "\n\n".join(failures) + "\n\n" + summary
    assert any(r.startswith("ran") for r in report)
    sys.stdout.flush()
