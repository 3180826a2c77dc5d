"""One run of one matrix cell: a client library under one scenario, start to verdict.

Per run: a fresh topic and group, records produced straight to the broker, a fresh proxy, the
scenario's rules, the harness processes, and a monitor loop that feeds the scenario driver and
decides when the run is over. Everything the verdict rests on is written to the run's evidence
directory (harness lines, proxy events, produced records, fired steps, the verdict itself).

When is a run over (checked every POLL_S, all bounded by `max_duration_s`): as soon as every
expectation of the scenario is decided (`lab.matrix.verdict`), but never before every member has
had the chance to show its own timeout. In order:
- every member process has ended (nothing more can happen);
- `max_duration_s` is reached;
- steps are pending and nothing new happened for `stall_bound_s`, the members' timeouts shown
  (the scenario cannot go on: what its steps wait for is not happening);
- the run's activity is over (no step pending, `Scenario.member_timeout_s` passed since the last
  injection, no new record for `settle_s`: late duplicates arrive within that) and the judge,
  asked at most every JUDGE_EVERY_S, has no expectation pending (records outstanding until a
  stall, a member silent right now, a terminal error not seen yet...).
Continuous production and topology actions still under way count as pending steps: a run does
not end in the middle of a failover it started.

Teardown puts the cluster back as the run found it: continuous production stops, paused
members are resumed (a stopped process cannot act on SIGTERM), every broker the run stopped is
started again, so the next cell on a shared 3-broker cluster starts whole.
"""

from __future__ import annotations

import bisect
import itertools
import json
import os
import queue
import re
import secrets
import threading
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from kafka_chaos_proxy.lab.matrix.classify import (
    Classification,
    Outcome,
    RunEvidence,
    classify,
    is_fetch_sample,
)
from kafka_chaos_proxy.lab.matrix.clients import ClientSpec
from kafka_chaos_proxy.lab.matrix.driver import ScenarioDriver
from kafka_chaos_proxy.lab.matrix.members import Member
from kafka_chaos_proxy.lab.matrix.observations import observe
from kafka_chaos_proxy.lab.matrix.produce import RateProduction, SequenceProducer, create_topic
from kafka_chaos_proxy.lab.matrix.proxyproc import ProxyProcess, listener_failure
from kafka_chaos_proxy.lab.matrix.topology import (
    ClusterView,
    NodeControl,
    TopologyControl,
    annotate_with_proxy,
)
from kafka_chaos_proxy.lab.matrix.verdict import Progress, judge
from kafka_chaos_proxy.lab.scenario import MemberSettings, Scenario
from kafka_chaos_proxy.proxy.client import AdminClient
from kafka_chaos_proxy.proxy.real_kafka.cluster import KafkaCluster
from kafka_chaos_proxy.proxy.real_kafka.probe import metadata_brokers

POLL_S = 0.25


def machine_load() -> float | None:
    """The 1-minute load average, kept with every run: verdicts measure time, so a reader (and
    the report) can see whether a run shared the machine with other work."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None
#: Harnesses get more runtime than the run so that the runner, not the harness, ends a run.
HARNESS_RUNTIME_MARGIN_S = 30.0
EVENTS_PAGE = 1000
#: Topics on a 3-broker cluster: three replicas, and a write needs two of them, so acks=all
#: records survive the loss of any one broker.
REPLICATION_3 = 3
MIN_INSYNC_3 = 2
#: How often, at most, a run that could end asks the judge whether anything is pending.
JUDGE_EVERY_S = 1.0
#: A live member not heard from on the wire for two heartbeat intervals (at least this long) is
#: in a silence that may still grow past a bound. KIP-848 members heartbeat at the broker's
#: interval (group.consumer.heartbeat.interval.ms, 5 s by default).
MIN_OPEN_SILENCE_S = 3.0
KIP848_HEARTBEAT_S = 5.0


@dataclass(frozen=True)
class RunRequest:
    client: ClientSpec
    scenario: Scenario
    run: int
    protocol: str
    kafka_bootstrap: str
    artifacts: Path  # this run's evidence directory
    seed: int
    #: The cluster behind `kafka_bootstrap`, when the runner has it (node addresses, and node
    #: control for stop/restart steps on a local cluster).
    cluster: KafkaCluster | None = None


def _slug(text: str, limit: int) -> str:
    return "".join(c if c.isalnum() or c == "-" else "-" for c in text)[:limit].strip("-")


class _RunActions:
    """The driver's side effects for a matrix run."""

    def __init__(self, run: CellRun) -> None:
        self.run = run

    def produce(self, count: int) -> None:
        self.run.producer.produce(count)

    def start_members(self, count: int) -> None:
        for _ in range(count):
            self.run.start_member()

    def stop_members(self, indexes: list[int]) -> None:
        for i in indexes:
            if i < len(self.run.members):
                self.run.members[i].request_stop()

    def _members(self, indexes: list[int], what: str) -> list[Member]:
        missing = [i for i in indexes if i >= len(self.run.members)]
        if missing:
            raise RuntimeError(f"{what}: member(s) {missing} not started yet")
        return [self.run.members[i] for i in indexes]

    def kill_members(self, indexes: list[int]) -> None:
        for member in self._members(indexes, "kill"):
            member.kill()

    def pause_members(self, indexes: list[int], ms: int) -> None:
        for member in self._members(indexes, "pause"):
            if member.pause():
                timer = threading.Timer(ms / 1000.0, member.resume)
                timer.daemon = True
                self.run.timers.append(timer)
                timer.start()

    def resume_members(self, indexes: list[int]) -> None:
        for member in self._members(indexes, "resume"):
            member.resume()

    def produce_rate(self, records_per_s: float, duration_s: float) -> None:
        rate = RateProduction(self.run.producer, records_per_s, duration_s)
        self.run.rates.append(rate)
        rate.start()

    def _topology(self) -> TopologyControl:
        if self.run.topology is None:
            raise RuntimeError("topology steps need setup.brokers: 3")
        return self.run.topology

    def move_coordinator(self, step: int) -> None:
        self._topology().move_coordinator(step)

    def stop_broker(self, step: int, node: str | int, mode: str) -> None:
        self._topology().stop_broker(step, node, mode)

    def restart_broker(self, step: int, node: str | int) -> None:
        self._topology().restart_broker(step, node)


def member_flags(scenario: Scenario, index: int, *, bootstrap: str, topic: str, group: str,
                 client_prefix: str, protocol: str) -> list[str]:
    """The harness contract's flags for member `index`: the group's settings with the
    member's override (`setup.members.overrides`) applied."""
    m = scenario.setup.members.settings(index)
    flags = [
        "--bootstrap", bootstrap,
        "--topic", topic,
        "--group", group,
        "--client-id", f"{client_prefix}-m{index}",
        "--session-timeout-ms", str(m.session_timeout_ms),
        "--heartbeat-interval-ms", str(m.heartbeat_interval_ms),
        "--rebalance-timeout-ms", str(m.rebalance_timeout_ms),
        "--commit", m.commit,
        "--protocol", protocol,
        "--max-runtime-s", str(int(scenario.outcome.max_duration_s + HARNESS_RUNTIME_MARGIN_S)),
    ]
    if m.static:
        flags += ["--instance-id", m.group_instance_id or f"{client_prefix}-i{index}"]
    return flags + option_flags(m)


def option_flags(m: MemberSettings) -> list[str]:
    """The harness options (tests/clients/README.md) that differ from the harnesses'
    defaults, which are the scenario format's defaults: a member's command line names only
    what the scenario asked for, and its `config` event lists everything it ran with."""
    flags: list[str] = []
    if m.request_timeout_ms is not None:
        flags += ["--request-timeout-ms", str(m.request_timeout_ms)]
    if m.assignor is not None:
        flags += ["--assignor", m.assignor]
    if m.commit_in_revoke:
        flags += ["--commit-in-revoke", "true"]
    if m.processing_delay_ms:
        flags += ["--processing-delay-ms", str(m.processing_delay_ms)]
    if m.async_processing:
        flags += ["--async-processing", "true"]
    if m.consume_mode != "loop":
        flags += ["--consume-mode", m.consume_mode]
    if m.sarama_return_errors:
        flags += ["--return-errors", "true"]
    return flags


def _cluster_view(req: RunRequest) -> tuple[ClusterView, NodeControl | None]:
    """Where admin requests go, and what stops brokers: the runner's cluster when it has one,
    else the brokers the bootstrap address lists (no node control then)."""
    cluster = req.cluster
    if cluster is not None and cluster.nodes:
        control = cluster.control
        return ClusterView(lambda: dict(cluster.nodes),
                           control.is_running if control is not None else None), control

    def from_bootstrap() -> dict[int, tuple[str, int]]:
        host, _, port = req.kafka_bootstrap.split(",")[0].rpartition(":")
        return {b.node_id: (b.host, b.port) for b in metadata_brokers(host, int(port))}

    return ClusterView(from_bootstrap), None


class CellRun:
    def __init__(self, req: RunRequest) -> None:
        self.req = req
        token = secrets.token_hex(3)
        name = _slug(req.scenario.name, 40)
        self.topic = f"mx-{name}-{token}"
        self.group = f"mx-{_slug(req.client.name, 16)}-{name}-{token}"
        self.client_prefix = f"{_slug(req.client.name, 16)}-{token}"
        self.dir = req.artifacts
        self.members: list[Member] = []
        self.inbox: queue.Queue[tuple[int, dict[str, Any]]] = queue.Queue()
        self.producer = SequenceProducer(req.kafka_bootstrap, self.topic)
        self.proxy = ProxyProcess(req.kafka_bootstrap, self.dir, req.seed)
        self.proxy_events: dict[int, dict[str, Any]] = {}
        self.last_seq = 0  # the admin API pages forward from `since` (exclusive); seqs start at 1
        self.notes: list[str] = []
        self.command: list[str] = []
        self.rates: list[RateProduction] = []
        self.timers: list[threading.Timer] = []
        self.topology: TopologyControl | None = None
        self.t_begin = time.time()
        #: From the proxy's events: injections, and when each member was last heard on the wire.
        self.first_injection_at: float | None = None
        self.last_injection_at: float | None = None
        self.heard: dict[int, float] = {}
        self._member_id = re.compile(rf"^{re.escape(self.client_prefix)}-m(\d+)")
        self._judged_at = 0.0
        self._pending: list[str] = []
        if req.scenario.changes_topology:
            view, control = _cluster_view(req)
            self.topology = TopologyControl(self.group, view, control, log=self.notes.append)

    # -- members

    def member_flags(self, index: int) -> list[str]:
        return member_flags(self.req.scenario, index, bootstrap=self.proxy.bootstrap,
                            topic=self.topic, group=self.group,
                            client_prefix=self.client_prefix, protocol=self.req.protocol)

    def start_member(self) -> Member:
        index = len(self.members)
        member = Member(index, [*self.command, *self.member_flags(index)], self.dir,
                        lambda i, ev: self.inbox.put((i, ev)))
        self.members.append(member)
        member.start()
        return member

    # -- proxy events

    def poll_proxy(self, admin: AdminClient) -> list[dict[str, Any]]:
        new: list[dict[str, Any]] = []
        for _ in range(20):  # bounded paging
            page = admin.events(since=self.last_seq, limit=EVENTS_PAGE)
            fresh = [e for e in page if int(e.get("seq", -1)) not in self.proxy_events]
            for event in fresh:
                seq = int(event.get("seq", -1))
                self.proxy_events[seq] = event
                self.last_seq = max(self.last_seq, seq)
                new.append(event)
            if len(page) < EVENTS_PAGE or not fresh:
                break
        return new

    # -- the run

    def execute(self) -> dict[str, Any]:
        req, scenario = self.req, self.req.scenario
        self.dir.mkdir(parents=True, exist_ok=True)
        t_begin = self.t_begin = time.time()
        self.load_begin = machine_load()
        driver: ScenarioDriver | None = None
        admin: AdminClient | None = None
        infra_error: str | None = None
        try:
            self.command = req.client.command()
            if scenario.setup.brokers == 3:
                create_topic(req.kafka_bootstrap, self.topic, scenario.setup.partitions,
                             replication=REPLICATION_3, min_insync=MIN_INSYNC_3)
            else:
                create_topic(req.kafka_bootstrap, self.topic, scenario.setup.partitions)
            if scenario.setup.records:
                self.producer.produce(scenario.setup.records)
            admin = self.proxy.start()
            driver = ScenarioDriver(scenario, admin, _RunActions(self), log=self.notes.append)
            driver.install_initial(time.time())
            m = scenario.setup.members
            for i in range(m.count):
                if i and m.start_stagger_s:
                    time.sleep(m.start_stagger_s)
                self.start_member()
            driver.begin(time.time())
            self._monitor(driver, admin)
        except Exception as exc:
            infra_error = f"{type(exc).__name__}: {exc}"
            self.notes.append(traceback.format_exc())
        finally:
            for rate in self.rates:
                rate.stop()
            for timer in self.timers:
                timer.cancel()
            for member in self.members:
                member.request_stop()
            for member in self.members:
                member.wait_stopped()
            if admin is not None and self.proxy.alive():
                try:
                    self.poll_proxy(admin)
                except Exception as exc:
                    self.notes.append(f"final event fetch failed: {exc}")
            proxy_rc = self.proxy.stop()
            self._restore_topology()
        t_end = time.time()
        return self._verdict(driver, infra_error, proxy_rc, t_begin, t_end)

    def _restore_topology(self) -> None:
        """Let topology actions finish (bounded), then start every broker the run stopped."""
        if self.topology is None:
            return
        if not self.topology.drain():
            self.notes.append("a topology action was still under way at the end of the run")
        try:
            restarted = self.topology.restore()
            if restarted:
                self.notes.append(f"teardown restarted broker(s) {restarted}")
        except Exception as exc:
            self.notes.append(f"teardown could not restart brokers: {exc}")
        self.topology.close()

    def _busy(self) -> list[str]:
        """Work the run started that is still going on (counts as pending steps)."""
        busy = [f"produce_rate {r.records_per_s:g}/s" for r in self.rates if r.busy()]
        if self.topology is not None and self.topology.busy():
            busy.append("topology action")
        return busy

    def _monitor(self, driver: ScenarioDriver, admin: AdminClient) -> None:
        start = time.time()
        last_progress = start
        consumed: set[tuple[str, int, int]] = set()
        while True:
            now = time.time()
            for event in self.poll_proxy(admin):
                self._note_wire(event)
                driver.on_proxy_event(event, now)
            if self._drain_inbox(driver, now, consumed):
                last_progress = now
            driver.tick(now)
            fired = driver.last_fired_at
            if fired is not None:
                last_progress = max(last_progress, fired)
            if not self.proxy.alive():
                raise RuntimeError("the proxy process died during the run")
            reason = self._stop_reason(driver, consumed, now - start, now - last_progress,
                                       now=now)
            if reason is not None:
                if reason:
                    self.notes.append(reason)
                return
            time.sleep(POLL_S)

    def _drain_inbox(self, driver: ScenarioDriver, now: float,
                     consumed: set[tuple[str, int, int]]) -> bool:
        """Hand the harnesses' events to the driver; True if a new record was consumed."""
        progress = False
        while True:
            try:
                index, event = self.inbox.get_nowait()
            except queue.Empty:
                return progress
            driver.on_harness_event(index, event, now)
            if event.get("event") == "record":
                key = (str(event.get("topic")), int(event.get("partition", -1)),
                       int(event.get("offset", -1)))
                if key not in consumed:
                    consumed.add(key)
                    progress = True

    def _note_wire(self, event: dict[str, Any]) -> None:
        """Injections and who was heard, from one proxy event."""
        ts = float(event.get("ts") or 0.0)
        if event.get("fault"):
            if self.first_injection_at is None:
                self.first_injection_at = ts
            self.last_injection_at = max(self.last_injection_at or ts, ts)
        # Heard: coordination traffic (the open silence is the coordination silence); a member
        # that only fetches is silent to its group.
        match = None if is_fetch_sample(event) else self._member_id.match(
            str(event.get("client_id") or ""))
        if match:
            index = int(match.group(1))
            self.heard[index] = max(self.heard.get(index, ts), ts)

    def _stop_reason(self, driver: ScenarioDriver, consumed: set[tuple[str, int, int]],
                     elapsed: float, idle: float, *, now: float | None = None) -> str | None:
        """Why the run ends now ("" for the normal end: every expectation decided), or None to
        go on (the rules are in the module doc)."""
        now = time.time() if now is None else now
        outcome = self.req.scenario.outcome
        pending = driver.pending() + self._busy()
        if self.members and not any(m.alive() for m in self.members):
            return "every member process ended"
        if elapsed >= outcome.max_duration_s:
            waiting = f"; still pending: {'; '.join(self._pending)}" if self._pending else ""
            return f"max_duration_s {outcome.max_duration_s:g} reached{waiting}"
        shown = self._timeouts_shown(now)
        if pending:
            if shown and idle >= outcome.stall_bound_s:
                return f"steps pending and nothing happening for {outcome.stall_bound_s:g} s"
            return None
        if not shown or idle < outcome.settle_s:
            return None
        if self._expectations_pending(driver, now, idle):
            return None
        return ""

    def _timeouts_shown(self, now: float) -> bool:
        """Has every member had the chance to show its own timeout after the last injection?"""
        last = self.last_injection_at
        return last is None or now - last >= self.req.scenario.member_timeout_s

    def _expectations_pending(self, driver: ScenarioDriver, now: float, idle: float) -> bool:
        """Ask the judge (at most every JUDGE_EVERY_S) whether waiting could still decide an
        expectation; what is pending is kept for the notes."""
        if now - self._judged_at >= JUDGE_EVERY_S:
            self._judged_at = now
            t0 = self.t_begin
            changes = [t for t in (self.last_injection_at, driver.last_fired_at) if t is not None]
            progress = Progress(
                elapsed_s=now - t0, idle_s=idle,
                first_injection_s=(self.first_injection_at - t0
                                   if self.first_injection_at is not None else None),
                last_change_s=max(changes, default=t0) - t0,
                open_silence_s=self._open_silence(now))
            try:
                evidence = self._evidence(driver, now)
                verdict = judge(self.req.scenario, observe(evidence, self._produced_at()),
                                classify(evidence), progress)
                self._pending = [f"{e.name}: {e.reason}" for e in verdict.pending()]
            except Exception as exc:  # the final verdict reports it; do not hold the run
                self.notes.append(f"judging during the run failed: {type(exc).__name__}: {exc}")
                self._pending = []
        return bool(self._pending)

    def _open_silence(self, now: float) -> float:
        """The longest silence on the wire still going on among live, unpaused members that
        the scenario did not kill (0 if each was heard within two heartbeat intervals)."""
        longest = 0.0
        consumer = self.req.protocol == "consumer"
        for m in self.members:
            if not m.alive() or m.paused or m.killed_by_scenario_at is not None:
                continue
            events = m.snapshot()[:1]
            since = max(self.heard.get(m.index, 0.0),
                        float(events[0].get("ts") or now) if events else now)
            heartbeat = (KIP848_HEARTBEAT_S if consumer else
                         self.req.scenario.setup.members.settings(m.index).heartbeat_interval_ms
                         / 1000.0)
            quiet = now - since
            if quiet > max(2 * heartbeat, MIN_OPEN_SILENCE_S):
                longest = max(longest, quiet)
        return longest

    def _produced_at(self) -> dict[tuple[str, int, int], float]:
        """When each delivered record was produced (epoch seconds), from the producer's
        batches: record seq N belongs to the batch whose running count first exceeds N. For
        the observations' freeze, which otherwise cannot tell a frozen consumer from one
        waiting for records not produced yet."""
        production = getattr(self.producer, "production", None)
        if production is None:  # a stand-in producer (tests)
            return {}
        delivered, batches = production()
        ends = list(itertools.accumulate(count for _, count in batches))
        out: dict[tuple[str, int, int], float] = {}
        for key, seq in delivered.items():
            i = bisect.bisect_right(ends, seq)
            if i < len(batches):
                out[key] = batches[i][0]
        return out

    def _evidence(self, driver: ScenarioDriver | None, ended_at: float) -> RunEvidence:
        scenario = self.req.scenario
        return RunEvidence(
            members=[m.to_run() for m in self.members],
            expected=self.producer.expected(),
            proxy_events=[self.proxy_events[k] for k in sorted(self.proxy_events)],
            started_at=self.t_begin,
            ended_at=ended_at,
            expect_injection=scenario.outcome.expect_injection,
            recovery_bound_s=scenario.outcome.recovery_bound_s,
            pending_steps=driver.pending() if driver else [],
        )

    def _verdict(self, driver: ScenarioDriver | None, infra_error: str | None,
                 proxy_rc: int | None, t_begin: float, t_end: float) -> dict[str, Any]:
        req, scenario = self.req, self.req.scenario
        self.t_begin = t_begin
        evidence = self._evidence(driver, t_end)
        events = evidence.proxy_events
        classification = classify(evidence)
        infra_error = infra_error or listener_failure(self.proxy.log_path)
        if infra_error is not None:
            classification = replace(classification, outcome=Outcome.INFRA_ERROR,
                                     detail=f"{infra_error}; {classification.detail}")
        judged = self._judge(evidence, classification)
        versions = {
            str(ev.get("library")): str(ev.get("version"))
            for m in evidence.members for ev in m.events if ev.get("event") == "started"
        }
        topology: list[dict[str, Any]] = []
        if self.topology is not None:
            topology = self.topology.report()
            annotate_with_proxy(topology, events, self.group)
        control = [{"member": m.index, **c} for m in evidence.members for c in m.control]
        result = {
            "client": req.client.name,
            "scenario": scenario.name,
            "scenario_version": scenario.version,
            "run": req.run,
            "protocol": req.protocol,
            "seed": req.seed,
            "topic": self.topic,
            "group": self.group,
            "library_versions": versions,
            "started_at": t_begin,
            "duration_s": round(t_end - t_begin, 3),
            "members": len(self.members),
            "proxy_returncode": proxy_rc,
            "steps": driver.report() if driver else [],
            "notes": self.notes[-20:],
            "machine": {"cpus": os.cpu_count(), "load_1m_begin": getattr(self, "load_begin", None),
                        "load_1m_end": machine_load()},
            **classification.to_json(),
            **judged,
        }
        if req.scenario.setup.brokers != 1:
            result["brokers"] = req.scenario.setup.brokers
        if topology:
            result["topology"] = topology
        if control:
            result["member_control"] = control
        if self.rates:
            result["produce_rate"] = [r.report() for r in self.rates]
        if self.producer.failures:
            result["produce_failures"] = self.producer.failures[:20]
        self._write(result, events)
        return result

    def _judge(self, evidence: RunEvidence, classification: Classification) -> dict[str, Any]:
        """`verdict`, `expectations`, `robustness_only` and the `observations` they rest on.
        A judge that fails makes the run an infra_error (not a client result), with the
        reason in the notes."""
        try:
            observations = observe(evidence, self._produced_at())
            verdict = judge(self.req.scenario, observations, classification)
        except Exception as exc:
            self.notes.append(traceback.format_exc())
            return {"verdict": Outcome.INFRA_ERROR.value, "expectations": [],
                    "robustness_only": False, "observations": None,
                    "judge_error": f"{type(exc).__name__}: {exc}"}
        return {**verdict.to_json(), "observations": observations.to_json()}

    def _write(self, result: dict[str, Any], events: list[dict[str, Any]]) -> None:
        (self.dir / "proxy-events.json").write_text(json.dumps(events, indent=1, default=str))
        produced = sorted(self.producer.delivered.items())
        (self.dir / "produced.json").write_text(json.dumps(
            [{"topic": t, "partition": p, "offset": o, "seq": s} for (t, p, o), s in produced],
            indent=0))
        (self.dir / "scenario.yaml").write_text(yaml.safe_dump(
            self.req.scenario.model_dump(mode="json"), sort_keys=False))
        (self.dir / "result.json").write_text(json.dumps(result, indent=2, default=str))


def run_cell_once(req: RunRequest) -> dict[str, Any]:
    return CellRun(req).execute()
