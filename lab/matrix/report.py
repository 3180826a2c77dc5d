"""docs/matrix.md and docs/matrix.json from the runs' results.

A cell shows the modal verdict against the scenario's expectations and how many of its runs
gave it (k/N): one reproduction in ten is not a reproduction, so a cell whose runs disagree says
so instead of showing its most dramatic run. A failing cell names the one or two observations
that matter (the reasons of its most frequent failing expectations, with their numbers; zombie
fetching seen in any run is named in every cell, expected or not), marks a
finding that rests only on unrealistic faults `robustness`, and a run that failed without its
fault says what the fault-free control found. Every cell links to its evidence directory (and
to the rebalance timeline of one of its runs, when the evidence has one), and the JSON carries
every run's verdict and outcome, so the table can be checked, not just believed. The
classifier's older `outcome` stays in the notes, as evidence.

Deterministic: the same results give the same markdown (ties go to the first run).
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kafka_chaos_proxy.lab.matrix.classify import modal
from kafka_chaos_proxy.lab.matrix.clients import CLIENTS
from kafka_chaos_proxy.lab.matrix.timelines import TIMELINE
from kafka_chaos_proxy.lab.matrix.verdict import RUN_VERDICTS
from kafka_chaos_proxy.lab.scenario import Scenario

VERDICT_HELP = {
    "pass": "every expectation of the scenario held",
    "fail": "an expectation failed; the cell names the observations behind it",
    "undecided": "nothing failed, but an expectation could not be decided (e.g. a member that "
                 "never ran)",
    "fails_without_fault": "an expectation failed although the fault never fired; the "
                           "client's `baseline-no-fault` was run as a fault-free control, and "
                           "if that fails too the cell says the client fails without any fault",
    "not_exercised": "the fault never fired and nothing failed: the run says nothing about "
                     "the client",
    "infra_error": "the run itself failed (proxy, broker, harness build); not a client result",
}
assert tuple(VERDICT_HELP) == RUN_VERDICTS
#: The cell's findings: reasons of this many failing expectations, each at most this long.
FINDINGS = 2
FINDING_CHARS = 90

OUTCOME_HELP = {
    "recovered": "consumption resumed and every record was consumed exactly once",
    "duplicates": "every record consumed, some more than once (count in the notes)",
    "stalled": "records left unconsumed, members alive, no error surfaced",
    "silent_exit": "a member's consume loop/process ended without surfacing an error",
    "surfaced_error": "the application was told (error, failed commit, exit with error) and "
                      "the group did not fully recover",
    "crashed": "a harness process died abnormally",
    "not_injected": "the fault never fired (the client never sent the matching request)",
    "infra_error": "the run itself failed (proxy, broker, harness build); not a client result",
}


def run_verdict(result: dict[str, Any]) -> str:
    """A run's verdict; results written before verdicts existed are `unjudged`."""
    if result.get("verdict"):
        return str(result["verdict"])
    return "infra_error" if result.get("outcome") == "infra_error" else "unjudged"


def _findings(runs: list[dict[str, Any]], status: str) -> list[str]:
    """The reasons of the most frequent expectations with `status` over `runs` (ties: the
    scenario's order), each from the first run that has it."""
    return [reason for _, reason in _named_findings(runs, status)]


def _named_findings(runs: list[dict[str, Any]], status: str) -> list[tuple[str, str]]:
    """`_findings` with the expectation each reason is of."""
    counts: Counter[str] = Counter()
    order: dict[str, int] = {}
    reasons: dict[str, str] = {}
    for r in runs:
        for i, e in enumerate(r.get("expectations") or []):
            if e.get("status") != status:
                continue
            name = str(e.get("name"))
            counts[name] += 1
            order.setdefault(name, i)
            reasons.setdefault(name, str(e.get("reason") or name))
    names = sorted(counts, key=lambda n: (-counts[n], order[n]))[:FINDINGS]
    return [(n, _short(reasons[n])) for n in names]


def _zombie_note(runs: list[dict[str, Any]]) -> str | None:
    """Zombie fetching seen in any run (a member's `zombie_fetches` observation), said in the
    cell whatever the scenario expects: a member reading partitions the group gave to another
    is a finding even where no expectation asks for it. The longest span names the member."""
    hits: list[tuple[float, dict[str, Any]]] = []
    runs_with = 0
    for r in runs:
        members = (r.get("observations") or {}).get("members") or []
        found = [m for m in members if m.get("zombie_fetches")]
        runs_with += bool(found)
        hits += [(float(m.get("zombie_fetch_s") or 0.0), m) for m in found]
    if not hits:
        return None
    span, m = max(hits, key=lambda h: h[0])
    return (f"zombie fetches in {runs_with}/{len(runs)} runs: member {m.get('index')} fetched "
            f"{m.get('zombie_partition')} {span:.1f} s after it moved to member "
            f"{m.get('zombie_owner')}")


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= FINDING_CHARS else text[:FINDING_CHARS - 3] + "..."


def _verdict_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    verdicts = [run_verdict(r) for r in runs]
    verdict, agree = modal(verdicts)
    modal_runs = [r for r in runs if run_verdict(r) == verdict]
    named: list[tuple[str, str]] = []
    if verdict in ("fail", "fails_without_fault"):
        named = _named_findings(modal_runs, "fail")
    elif verdict == "undecided":
        named = _named_findings(modal_runs, "undecided")
    findings = [reason for _, reason in named]
    zombie = _zombie_note(runs)
    if zombie is not None and "no_zombie_fetch" not in {name for name, _ in named}:
        findings.append(_short(zombie))
    control = next((r["control"] for r in modal_runs if r.get("control")), None)
    failing = list(dict.fromkeys(
        _short(str(e.get("reason"))) for r in runs for e in r.get("expectations") or []
        if e.get("status") == "fail"))
    return {
        "verdict": verdict,
        "verdict_agree": agree,
        "verdicts": verdicts,
        "findings": findings,
        "failing_reasons": failing[:6],
        "robustness_only": verdict == "fail" and all(r.get("robustness_only")
                                                     for r in modal_runs),
        "control": control,
    }


def _cell_summary(runs: list[dict[str, Any]], planned: int) -> dict[str, Any]:
    runs = sorted(runs, key=lambda r: int(r["run"]))
    outcomes = [str(r["outcome"]) for r in runs]
    outcome, agree = modal(outcomes)
    modal_runs = [r for r in runs if r["outcome"] == outcome]
    ttrs = [float(r["time_to_recover_s"]) for r in modal_runs
            if r.get("time_to_recover_s") is not None]
    dups = [int(r.get("duplicates", 0)) for r in runs]
    errors = list(dict.fromkeys(e for r in runs for e in r.get("errors", [])))
    return {
        "outcome": outcome,
        "agree": agree,
        "runs": len(runs),
        "planned": planned,
        "outcomes": outcomes,
        "protocol": runs[0].get("protocol") if runs else None,
        "duplicates": dups,
        "missing": [int(r.get("missing", 0)) for r in runs],
        "time_to_recover_s_median": round(statistics.median(ttrs), 2) if ttrs else None,
        "errors": errors[:12],
        "detail": modal_runs[0]["detail"] if modal_runs else "",
        "durations_s": [r.get("duration_s") for r in runs],
        **_verdict_summary(runs),
    }


def _versions(results: Iterable[dict[str, Any]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for r in results:
        for library, version in (r.get("library_versions") or {}).items():
            out.setdefault(f"{r['client']}", f"{library} {version}")
    return out


def write_report(
    results: list[dict[str, Any]],
    *,
    out_dir: Path,
    artifacts: Path,
    clients: list[str],
    scenarios: list[Scenario],
    runs: int,
    kafka_version: str,
    unavailable: dict[str, str],
    not_run: list[dict[str, Any]],
    wall_time_s: float,
) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    by_cell: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in results:
        by_cell.setdefault((r["client"], r["scenario"]), []).append(r)
    cells: list[dict[str, Any]] = []
    for scenario in scenarios:
        for client in clients:
            spec = CLIENTS[client]
            protocol = spec.protocol_for_scenario(scenario)
            evidence = os.path.relpath(artifacts / client / scenario.name, out_dir)
            cell: dict[str, Any] = {"client": client, "scenario": scenario.name,
                                    "evidence": evidence}
            if protocol is None:
                cell.update(outcome="n/a", verdict="n/a", agree=0, verdict_agree=0, runs=0,
                            planned=0, detail=spec.not_applicable_reason(scenario))
            elif (client, scenario.name) in by_cell:
                cell.update(_cell_summary(by_cell[(client, scenario.name)], runs))
                timeline = _timeline_run(artifacts / client / scenario.name, cell,
                                         by_cell[(client, scenario.name)])
                if timeline is not None:
                    cell["timeline"] = f"{evidence}/{timeline}/{TIMELINE}"
            else:
                reason = unavailable.get(client, "not reached within the time budget")
                cell.update(outcome="not_run", verdict="not_run", agree=0, verdict_agree=0,
                            runs=0, planned=runs, detail=reason)
            cells.append(cell)
    versions = _versions(results)
    summary = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "kafka_version": kafka_version,
        "runs_per_cell": runs,
        "wall_time_s": round(wall_time_s, 1),
        "total_runs": len(results),
        "machine_load": machine_load_summary(results),
        "library_versions": versions,
        "clients": clients,
        "scenarios": [{"name": s.name, "version": s.version, "description": s.description,
                       "tags": s.tags, "protocols": s.applicable_protocols,
                       "expect": [e.describe() for e in s.expectations],
                       "default_expect": s.expect is None} for s in scenarios],
        "cells": cells,
        "unavailable_clients": unavailable,
        "not_run": not_run,
        "outcome_meanings": OUTCOME_HELP,
        "verdict_meanings": VERDICT_HELP,
    }
    (out_dir / "matrix.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    (out_dir / "matrix.md").write_text(render_markdown(summary))
    return summary


def machine_load_summary(results: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """How loaded the machine was while the runs ran (each result's `machine`, lab.matrix.cell):
    the median 1-minute load at the runs' ends and how many runs ended with more load than
    cores. Verdicts measure time; a reader should know whether the matrix had the machine."""
    loads = [(float(m["load_1m_end"]), int(m.get("cpus") or 1)) for r in results
             if isinstance(m := r.get("machine"), dict) and m.get("load_1m_end") is not None]
    if not loads:
        return {"runs_measured": 0}
    return {"runs_measured": len(loads),
            "median_load_1m": round(statistics.median(v for v, _ in loads), 2),
            "cpus": loads[0][1],
            "runs_over_cores": sum(1 for v, cpus in loads if v > cpus)}


def _load_line(load: dict[str, Any]) -> list[str]:
    if not load.get("runs_measured"):
        return []
    return [f"- Machine: {load['cpus']} cores; 1-minute load at the end of a run: median "
            f"{load['median_load_1m']:g}; {load['runs_over_cores']} of {load['runs_measured']} "
            "runs ended with more load than cores (`machine` in each result.json)"]


def _timeline_run(cell_dir: Path, cell: dict[str, Any],
                  runs: list[dict[str, Any]]) -> str | None:
    """The run whose timeline the cell links: the first that gave the cell's verdict (its
    outcome for unjudged results) and has a `timeline.svg`; else the first that has one."""
    ordered = sorted(runs, key=lambda r: int(r["run"]))
    modal_runs = [r for r in ordered if run_verdict(r) == cell.get("verdict")
                  or (cell.get("verdict") == "unjudged" and r.get("outcome") == cell["outcome"])]
    for r in [*modal_runs, *ordered]:
        if (cell_dir / str(r["run"]) / TIMELINE).is_file():
            return str(r["run"])
    return None


def _cell_text(cell: dict[str, Any], link_prefix: str = "") -> str:
    """`[fail 5/5: member 1 silent 27.3 s > 15 s](evidence/) robustness`: the modal verdict,
    k/N, the observations behind a failure, the fault-free control's word when the client
    failed without a fault, and whether the finding rests only on unrealistic faults."""
    verdict = cell.get("verdict") or cell["outcome"]
    if verdict in ("n/a", "not_run"):
        return str(verdict)
    text = f"{verdict} {cell.get('verdict_agree', cell['agree'])}/{cell['runs']}"
    notes = list(cell.get("findings") or [])
    control = cell.get("control") or {}
    if verdict == "fails_without_fault" and control.get("fails_without_any_fault"):
        notes.append("fails without any fault (baseline-no-fault fails too)")
    if notes:
        text += ": " + "; ".join(notes)
    if cell["runs"] < cell.get("planned", cell["runs"]):
        text += f" [{cell['runs']} of {cell['planned']} runs]"
    text = text.replace("|", "\\|")
    mark = " robustness" if cell.get("robustness_only") else ""
    if cell.get("timeline"):
        mark += f" [timeline]({link_prefix}{cell['timeline']})"
    return f"[{text}]({link_prefix}{cell['evidence']}/){mark}"


def matrix_table(summary: dict[str, Any], link_prefix: str = "") -> list[str]:
    """The scenario x client table; `link_prefix` makes the evidence links relative to another
    file than matrix.md (the README embeds the same table)."""
    clients: list[str] = summary["clients"]
    cells = {(c["scenario"], c["client"]): c for c in summary["cells"]}
    lines = ["| scenario | " + " | ".join(clients) + " |", "|---" * (len(clients) + 1) + "|"]
    for s in summary["scenarios"]:
        row = [f"`{s['name']}`"]
        row += [_cell_text(cells[(s["name"], c)], link_prefix) for c in clients]
        lines.append("| " + " | ".join(row) + " |")
    return lines


README_START = "<!-- matrix:start (written by kafka-chaos-proxy matrix --readme) -->"
README_END = "<!-- matrix:end -->"


def embed_in_readme(readme: Path, summary: dict[str, Any], report_dir: Path) -> None:
    """Replace the README's marked matrix section with the current table, so the table a
    newcomer sees first is always the one the last matrix run wrote."""
    text = readme.read_text()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"{readme} has no '{README_START}' ... '{README_END}' section")
    prefix = os.path.relpath(report_dir, readme.parent).replace(os.sep, "/") + "/"
    body = [
        f"Kafka {summary['kafka_version']}; {summary['total_runs']} runs; each cell: the "
        f"modal verdict against the scenario's expectations, `k/N` = runs that gave it, the "
        f"observations behind a failure; `robustness`: the finding rests only on faults a real "
        f"broker would not produce. Expectations, verdicts, notes per cell and library "
        f"versions: [{prefix}matrix.md]({prefix}matrix.md).",
        "",
        *matrix_table(summary, prefix),
    ]
    new = text[: start + len(README_START)] + "\n" + "\n".join(body) + "\n" + text[end:]
    readme.write_text(new)


def _cell_note(c: dict[str, Any]) -> str:
    """One client's line under a scenario: verdict, what failed, the control, the classifier's
    outcome and detail (evidence)."""
    text = f"- **{c['client']}** ({c.get('protocol')}):"
    if c.get("verdict"):
        text += f" {c['verdict']} {c.get('verdict_agree')}/{c['runs']}"
        if c.get("robustness_only"):
            text += " (robustness: only unrealistic faults injected)"
        text += "."
        if c.get("failing_reasons"):
            text += f" Failed: {'; '.join(c['failing_reasons'])}."
        control = c.get("control")
        if control:
            found = f" ({'; '.join(control['reasons'])})" if control.get("reasons") else ""
            text += (f" Fault-free control ({control.get('scenario')}, "
                     f"{control.get('protocol')}): {control.get('verdict')}{found}.")
        text += " Classifier:"
    text += f" {c['outcome']} {c['agree']}/{c['runs']}, {c['detail']}."
    if c.get("time_to_recover_s_median") is not None:
        text += f" Median time to recover: {c['time_to_recover_s_median']} s."
    if c.get("errors"):
        text += f" Errors surfaced: {', '.join(c['errors'][:6])}."
    return text


def render_markdown(summary: dict[str, Any]) -> str:
    clients: list[str] = summary["clients"]
    cells = {(c["scenario"], c["client"]): c for c in summary["cells"]}
    lines = [
        "# Client x coordination-fault matrix",
        "",
        "Generated by `kafka-chaos-proxy matrix` (do not edit by hand). Each cell: the modal "
        "verdict against the scenario's expectations (what a correct client does, listed "
        "under each scenario below), `k/N` = how many runs gave it, the one or two "
        "observations behind a failure, linked to the evidence directory (harness JSON lines "
        "per member, the proxy's coordination events, produced records, fired steps, "
        "observations and verdict per run).",
        "",
        f"- Kafka broker: {summary['kafka_version']}",
        f"- Runs per cell: {summary['runs_per_cell']}; runs executed: {summary['total_runs']}; "
        f"wall time: {summary['wall_time_s'] / 60:.1f} min",
        *_load_line(summary.get("machine_load") or {}),
        f"- Generated: {summary['generated_at']}",
        "- Reproduce one cell: `kafka-chaos-proxy matrix --clients CLIENT --scenarios SCENARIO "
        "--runs 5` (a local broker is started; evidence goes to `artifacts/matrix/`; "
        "`--publish docs/matrix-evidence` copies it compactly beside this report, event streams "
        "gzipped). Replay a scenario against your own clients: "
        "`kafka-chaos-proxy scenario run scenarios/SCENARIO.yaml --admin-url URL`.",
        "",
        "| client | library |",
        "|---|---|",
    ]
    for client in clients:
        spec = CLIENTS[client]
        version = summary["library_versions"].get(client, spec.library)
        lines.append(f"| {client} | {version} |")
    lines += ["", "## Verdicts", ""]
    lines += [f"- **{k}**: {v}" for k, v in VERDICT_HELP.items()]
    lines += ["- **unjudged**: a run recorded before verdicts existed (its outcome is in the "
              "notes)",
              "- **n/a**: the client cannot run the scenario (group protocol, static membership)",
              "- **not_run**: not reached (time budget) or the client's harness was unavailable",
              "- **robustness** (after a cell): every injection of its failing runs was one a "
              "real broker would not produce (an error no broker returns on that API and "
              "version, or one that leaves client and broker disagreeing, such as "
              "UNKNOWN_MEMBER_ID while the broker still holds the member): a robustness "
              "finding, not a race",
              "",
              "A scenario without `expect:` is judged against the default set: no_loss, "
              "recovers_within_s = its recovery bound, max_silence_s = its stall bound, "
              "duplicates_within_bound (docs/scenarios.md).",
              "", "## Matrix", ""]
    lines += matrix_table(summary)
    split = [c for c in summary["cells"]
             if c.get("runs") and c.get("verdict_agree", c["agree"]) < c["runs"]]
    lines += ["", "## Cells whose runs disagree", ""]
    if not split:
        lines.append("None: every cell that ran gave the same verdict in every run.")
    for c in split:
        counts = Counter(c.get("verdicts") or c["outcomes"])
        lines.append(f"- {c['client']} x `{c['scenario']}`: "
                     + ", ".join(f"{k} {v}/{c['runs']}" for k, v in counts.most_common()))
    lines += ["", "## Classifier outcomes (evidence in the notes)", ""]
    lines += [f"- **{k}**: {v}" for k, v in OUTCOME_HELP.items()]
    lines += ["", "## Notes per cell", ""]
    for s in summary["scenarios"]:
        notes = [cells[(s["name"], c)] for c in clients
                 if cells[(s["name"], c)].get("runs")]
        if not notes:
            continue
        lines.append(f"### `{s['name']}` (v{s['version']})")
        lines.append("")
        lines.append(s["description"])
        lines.append("")
        if s.get("expect"):
            default = " (the default set)" if s.get("default_expect") else ""
            lines.append(f"Expected{default}: {'; '.join(s['expect'])}.")
            lines.append("")
        lines += [_cell_note(c) for c in notes]
        lines.append("")
    if summary["unavailable_clients"]:
        lines += ["## Clients not available", ""]
        lines += [f"- {k}: {v}" for k, v in summary["unavailable_clients"].items()]
        lines.append("")
    if summary["not_run"]:
        lines += ["## Not reached within the time budget", "",
                  f"{len(summary['not_run'])} runs were not executed.", ""]
    return "\n".join(lines) + "\n"
