"""`kafka-chaos-proxy matrix` and `kafka-chaos-proxy scenario run|list|validate`.

`matrix` runs client libraries through the scenario catalog against a real broker and writes
matrix.md/json to a fresh ./matrix-out/<time> directory (the committed docs/ only when asked).
`matrix --shard K/N` runs one shard of the cells (one CI job of N), and `matrix-merge` joins the
shards' artifacts into one report (and, with --publish, the committed evidence).
`scenario run` plays one scenario file against a proxy that is already running (the user's
own clients are the members), so a cell of the matrix can be reproduced by hand: rules are
installed, timed steps fire on the clock, proxy-event triggers fire from the proxy's event
log. Steps that need the matrix's harness processes (starting, stopping, killing, pausing or
resuming members, harness-event triggers) or brokers the runner started (stop_broker,
restart_broker) are reported as skipped rather than faked; `produce_rate` runs with
`--bootstrap` and `--topic`, `move_coordinator` with `--bootstrap` and `--group`. The loop is
`lab.play.play`, the same the Python API's `run_scenario` reaches by entry point.

The product CLI does not import this module: it is declared in the `kafka_chaos_proxy.cli`
entry-point group (pyproject.toml), and `proxy.cli` calls `register_matrix(app)` and
`register_scenario(app)` from there, so the dependency stays `lab -> proxy`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer

from kafka_chaos_proxy.lab.paths import SCENARIOS_DIR_ENV, LabPathError, harness_dir, scenarios_dir
from kafka_chaos_proxy.lab.scenario import Scenario, ScenarioError, load_catalog, load_scenario
from kafka_chaos_proxy.proxy.cli.admin_client import DEFAULT_ADMIN_URL, AdminUrl, Token

EXIT_BAD_INPUT = 2
#: Modules of the `[lab]` extra; without them the matrix cannot run, which deserves one line
#: that names the extra rather than a traceback.
LAB_EXTRA_MODULES = ("confluent_kafka", "aiokafka", "kafka")
CATALOG_HELP = f"Scenario directory (default: ${SCENARIOS_DIR_ENV}, else the packaged catalog)."

scenario_app = typer.Typer(help="Validate, list and run fault scenarios.", no_args_is_help=True)


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_BAD_INPUT)


def _catalog(directory: Path | None) -> dict[str, Scenario]:
    """The scenarios of the catalog the option, the setting or the default names."""
    return load_catalog(scenarios_dir(directory))


def matrix(
    clients: Annotated[list[str] | None, typer.Option(
        "--clients", help="Clients (comma-separated or repeated); default: all.")] = None,
    scenarios: Annotated[list[str] | None, typer.Option(
        "--scenarios", help="Scenario names (comma-separated or repeated); default: all.")
    ] = None,
    runs: Annotated[int, typer.Option(min=1, max=50, help="Runs per cell.")] = 5,
    out: Annotated[Path | None, typer.Option(
        help="Where matrix.md/json are written. Default: a fresh directory "
             "./matrix-out/<UTC time>, never the committed docs/ (write those on purpose: "
             "--out docs --publish docs/matrix-evidence).", show_default=False)] = None,
    artifacts: Annotated[Path, typer.Option(help="Evidence directory.")] = Path(
        "artifacts/matrix"),
    catalog: Annotated[Path | None, typer.Option(
        "--scenarios-dir", "--catalog", help=CATALOG_HELP)] = None,
    max_total_s: Annotated[float, typer.Option(
        help="Time budget for the whole matrix; runs that would exceed it are not started.")
    ] = 3 * 3600.0,
    order: Annotated[str, typer.Option(
        help="round: run 1 of every cell, then run 2...; cell: all runs of a cell together; "
             "findings-first: round 1, then the cells whose first run was not recovered.")
    ] = "round",
    resume: Annotated[bool, typer.Option(help="Keep results.jsonl and skip runs in it.")] = False,
    kafka_version: Annotated[str | None, typer.Option(help="Local broker version.")] = None,
    report_only: Annotated[bool, typer.Option(
        help="Only rewrite the report from the artifacts' results.jsonl.")] = False,
    publish: Annotated[Path | None, typer.Option(
        help="Copy compact evidence (verdicts and scenarios as is, event streams gzipped) "
             "into this directory and link the report's cells there, e.g. docs/matrix-evidence."
    )] = None,
    readme: Annotated[Path | None, typer.Option(
        help="Also refresh the matrix section of this README (between its matrix markers).")
    ] = None,
    shard: Annotated[str | None, typer.Option(
        metavar="K/N", show_default=False,
        help="Run only shard K of N (e.g. 2/4): the cells are split by a hash of client and "
             "scenario, all runs of a cell in one shard. Give each shard its own --artifacts; "
             "join them with `kafka-chaos-proxy matrix-merge`.")] = None,
) -> None:
    """Run the client x scenario matrix against a real broker and write the report."""
    try:
        from kafka_chaos_proxy.lab.matrix.clients import CLIENTS
        from kafka_chaos_proxy.lab.matrix.runner import MatrixOptions, run_with_broker
        from kafka_chaos_proxy.lab.matrix.runner import report_only as write_report_only
    except ModuleNotFoundError as exc:
        if exc.name not in LAB_EXTRA_MODULES:
            raise
        _fail(f"the matrix needs the client libraries of the lab extra ({exc.name} is "
              "missing): pip install 'kafka-chaos-proxy[lab]'")
    from kafka_chaos_proxy.lab.matrix.selection import fresh_out_dir, select
    from kafka_chaos_proxy.lab.matrix.shards import Shard, load_results, resume_problem

    if order not in ("round", "cell", "findings-first"):
        _fail("--order must be round, cell or findings-first")
    try:
        part = Shard.parse(shard) if shard is not None else None
        found = _catalog(catalog)
        client_names = select(clients, CLIENTS, "client")
        scenario_names = select(scenarios, found, "scenario")
        if not report_only:
            harness_dir()  # fail here, once, rather than as every client "unavailable"
    except (ScenarioError, LabPathError, ValueError) as exc:
        _fail(str(exc))
    if part is not None and (publish is not None or readme is not None):
        # One shard's evidence would replace the others' in the published tree.
        _fail("--publish and --readme take the whole matrix: run the shards without them, "
              "then `kafka-chaos-proxy matrix-merge DIR... --publish ...`")
    if resume and not report_only:
        kept = [r for r in load_results(artifacts / "results.jsonl")
                if r.get("outcome") != "infra_error"]
        problem = resume_problem(artifacts, part, kept)
        if problem is not None:
            _fail(problem)
    if out is None:
        # A run's report is a result to look at, not a change to the committed docs.
        out = fresh_out_dir()
        typer.echo(f"report goes to {out}/ (--out to choose)")
    opts = MatrixOptions(
        clients=client_names, scenarios=[found[n] for n in scenario_names], runs=runs, out=out,
        artifacts=artifacts, max_total_s=max_total_s, kafka_version=kafka_version,
        resume=resume, order=order, publish=publish, log=lambda m: typer.echo(m), shard=part,
    )
    summary = write_report_only(opts) if report_only else run_with_broker(opts)
    if readme is not None:
        from kafka_chaos_proxy.lab.matrix.report import embed_in_readme

        try:
            embed_in_readme(readme, summary, out)
        except (OSError, ValueError) as exc:
            _fail(str(exc))


def matrix_merge(
    dirs: Annotated[list[Path], typer.Argument(
        help="The --artifacts directories of the matrix runs to merge (e.g. one per shard).",
        metavar="DIR", show_default=False)],
    out: Annotated[Path | None, typer.Option(
        help="Where the merged matrix.md/json are written. Default: a fresh directory "
             "./matrix-out/<UTC time>, never the committed docs/.", show_default=False)
    ] = None,
    artifacts: Annotated[Path, typer.Option(
        help="The merged evidence and results.jsonl (rebuilt on every merge; a directory "
             "that is not an earlier merge's is never overwritten).")
    ] = Path("artifacts/matrix-merged"),
    publish: Annotated[Path | None, typer.Option(
        help="Copy the merged compact evidence here and link the report's cells there, "
             "e.g. docs/matrix-evidence.")] = None,
    readme: Annotated[Path | None, typer.Option(
        help="Also refresh the matrix section of this README (between its matrix markers).")
    ] = None,
    clients: Annotated[list[str] | None, typer.Option(
        "--clients", help="Only these clients (default: every client the runs planned).")
    ] = None,
    scenarios: Annotated[list[str] | None, typer.Option(
        "--scenarios", help="Only these scenarios (default: every scenario the runs planned).")
    ] = None,
    runs: Annotated[int | None, typer.Option(
        min=1, max=50, help="Runs per cell (default: what the runs planned).")] = None,
    catalog: Annotated[Path | None, typer.Option(
        "--scenarios-dir", "--catalog", help=CATALOG_HELP)] = None,
) -> None:
    """Merge the results and evidence of several matrix runs (the shards of one matrix) into
    one report; a run found in two directories is refused, cells none ran are not_run."""
    from kafka_chaos_proxy.lab.matrix.clients import CLIENTS
    from kafka_chaos_proxy.lab.matrix.merge import MergeError, merge_matrix
    from kafka_chaos_proxy.lab.matrix.selection import fresh_out_dir, select

    try:
        found = _catalog(catalog)
        client_names = select(clients, CLIENTS, "client") if clients else None
        scenario_names = select(scenarios, found, "scenario") if scenarios else None
    except (ScenarioError, LabPathError, ValueError) as exc:
        _fail(str(exc))
    if out is None:
        out = fresh_out_dir()
        typer.echo(f"report goes to {out}/ (--out to choose)")
    try:
        summary = merge_matrix(dirs, out=out, artifacts=artifacts, catalog=found,
                               publish=publish, clients=client_names,
                               scenarios=scenario_names, runs=runs,
                               log=lambda m: typer.echo(m))
    except MergeError as exc:
        _fail(str(exc))
    if readme is not None:
        from kafka_chaos_proxy.lab.matrix.report import embed_in_readme

        try:
            embed_in_readme(readme, summary, out)
        except (OSError, ValueError) as exc:
            _fail(str(exc))


def matrix_compare(
    old: Annotated[Path, typer.Argument(
        help="The earlier matrix's results: results.jsonl(.gz) or a directory holding it "
             "(an --artifacts directory, docs/matrix-evidence).", show_default=False)],
    new: Annotated[Path, typer.Argument(help="The newer matrix's results, the same way.",
                                        show_default=False)],
    out: Annotated[Path | None, typer.Option(
        help="Write the Markdown here instead of printing it.")] = None,
) -> None:
    """List the cells whose answer changed between two matrix results, and why (works across
    the outcome classifier and the verdicts)."""
    from kafka_chaos_proxy.lab.matrix.compare import compare_files

    try:
        changes, text = compare_files(old, new)
    except (OSError, ValueError, KeyError) as exc:
        _fail(f"cannot compare {old} with {new}: {exc}")
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"{len(changes)} changed cells written to {out}")


@scenario_app.command("validate")
def validate(files: Annotated[list[Path], typer.Argument(help="Scenario YAML files.")]) -> None:
    """Check scenario files; exit 2 with the file and field of the first mistake."""
    for path in files:
        try:
            s = load_scenario(path)
        except ScenarioError as exc:
            _fail(str(exc))
        typer.echo(f"ok {path}: {s.name} v{s.version}, {len(s.steps)} steps, "
                   f"{len(s.rules())} rules")


@scenario_app.command("list")
def list_scenarios(
    catalog: Annotated[Path | None, typer.Option(
        "--scenarios-dir", "--catalog", help=CATALOG_HELP)] = None,
) -> None:
    """The scenario catalog: name, version, protocols, description."""
    try:
        found = _catalog(catalog)
    except (ScenarioError, LabPathError) as exc:
        _fail(str(exc))
    for s in found.values():
        typer.echo(f"{s.name} v{s.version} [{','.join(s.applicable_protocols)}]: "
                   f"{s.description[:100]}")


@scenario_app.command("run")
def run_scenario(
    file: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    admin_url: AdminUrl = DEFAULT_ADMIN_URL,
    token: Token = None,
    duration: Annotated[float | None, typer.Option(
        help="Stop after this many seconds (default: the scenario's max_duration_s).")] = None,
    bootstrap: Annotated[str | None, typer.Option(
        help="Broker (not proxy) HOST:PORT for the scenario's produce steps.")] = None,
    topic: Annotated[str | None, typer.Option(help="Topic for produce steps.")] = None,
    group: Annotated[str | None, typer.Option(
        help="Consumer group whose coordinator move_coordinator steps move (with --bootstrap)."
    )] = None,
    keep_rules: Annotated[bool, typer.Option(
        help="Leave the scenario's rules installed at the end.")] = False,
) -> None:
    """Play a scenario against a running proxy: its clients are whatever connects to it."""
    from kafka_chaos_proxy.lab.play import play
    from kafka_chaos_proxy.proxy.api.errors import ScenarioProblem
    from kafka_chaos_proxy.proxy.client import AdminClient

    try:
        scenario = load_scenario(file)
    except ScenarioError as exc:
        _fail(str(exc))
    with AdminClient(admin_url, token) as admin:
        if not admin.healthy():
            _fail(f"no proxy answers at {admin_url}/healthz")
        try:
            play(scenario, admin, duration_s=duration, bootstrap=bootstrap, topic=topic,
                 group=group, keep_rules=keep_rules, log=typer.echo)
        except ScenarioProblem as exc:
            _fail(str(exc))


def register_matrix(app: typer.Typer) -> None:
    """Entry point `matrix`: add the `matrix`, `matrix-merge` and `matrix-compare` commands to
    the CLI app."""
    app.command("matrix")(matrix)
    app.command("matrix-merge")(matrix_merge)
    app.command("matrix-compare")(matrix_compare)


def register_scenario(app: typer.Typer) -> None:
    """Entry point `scenario`: add the `scenario` command group to the CLI app."""
    app.add_typer(scenario_app, name="scenario")
