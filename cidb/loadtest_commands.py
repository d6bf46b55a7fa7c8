"""``cidb loadtest`` and ``cidb bench``: options in, tables out."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from artifact import ArtifactError, LockError
from cidb.app import app
from cidb.loadtest_output import (
    console,
    print_bench,
    print_rehearsal,
    print_summary,
    progress_bar,
    report_fault,
    show_progress,
)
from loadtest.bench.baseline import DEFAULT_TOLERANCE, BaselineError, load_baseline
from loadtest.bench.baseline import save_baseline as store_baseline
from loadtest.bench.cases import MATRICES
from loadtest.bench.runner import machine, run_bench
from loadtest.emulator.moto_server import EmulatorError, MotoServer
from loadtest.emulator.roles import RoleError
from loadtest.faults import FAULTS
from loadtest.faults.rehearsal import UnknownFault, parse_fault_names
from loadtest.run.job import run_loadtest
from loadtest.run.options import LoadTestError, LoadTestOptions
from loadtest.run.rehearse import run_rehearsal
from ops.outputs import OutputsError
from pipeline.spec import OVERRIDES, SpecError, parse_override


def _parse_overrides(values: list[str]) -> dict[str, object]:
    out: dict[str, object] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or key not in OVERRIDES:
            raise typer.BadParameter(f"{item!r}: use KEY=VALUE with KEY one of {sorted(OVERRIDES)}", param_hint="--set")
        try:
            out[key] = parse_override(key, raw)
        except SpecError as err:
            raise typer.BadParameter(f"{item!r}: {err}", param_hint="--set") from None
    return out


def _fault_names(values: list[str]) -> tuple[str, ...]:
    try:
        return parse_fault_names(values)
    except UnknownFault as err:
        raise typer.BadParameter(str(err), param_hint="--fault") from None


_D = LoadTestOptions()
USER_ERRORS = (LoadTestError, SpecError, OutputsError, ArtifactError, LockError, BaselineError, RoleError)


@app.command()
def loadtest(
    policies: Annotated[int, typer.Option(help="Synthetic policies to inject.")] = _D.policies,
    profile: Annotated[str, typer.Option(help="Deployment profile: tuned or seed.")] = _D.profile,
    concurrency: Annotated[int | None, typer.Option(help="Reporter instances (default: the spec's).")] = None,
    source: Annotated[str, typer.Option(help="synthetic, or iam (creates the policies in IAM first).")] = _D.source,
    out: Annotated[Path | None, typer.Option(help="Report directory.")] = None,
    endpoint_url: Annotated[str | None, typer.Option(help="Use an emulator that is already running.")] = None,
    target: Annotated[str, typer.Option(help="local (embedded emulator) or stack (a deployed stack).")] = _D.target,
    stack: Annotated[str | None, typer.Option(help="Pulumi stack to read outputs from.")] = None,
    outputs: Annotated[Path | None, typer.Option(help="JSON file of `pulumi stack output --json`.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic generator.")] = _D.seed,
    deadline: Annotated[float, typer.Option(help="Seconds after which the run stops and reports.")] = (
        _D.deadline_seconds
    ),
    fault: Annotated[
        list[str],
        typer.Option(
            help=f"Rehearse a fault (repeatable, or comma-separated; 'all' for every one): {', '.join(FAULTS)}."
        ),
    ] = [],  # noqa: B006
    inject_stale_lock: Annotated[
        bool, typer.Option(help="Start with the run's lock held by a crashed writer (tests stale-lock take-over).")
    ] = False,
    set_: Annotated[list[str], typer.Option("--set", help="Spec override KEY=VALUE, e.g. queue.batch_size=10.")] = [],  # noqa: B006
    measure_floor: Annotated[
        bool, typer.Option(help="Measure the emulator floor now instead of reusing this machine's cached one.")
    ] = False,
    fail_lock_release: Annotated[
        str | None,
        typer.Option(help="Fail the reporter's lock releases with this error: 412, 503, 501 or AccessDenied."),
    ] = None,
    lambda_lock: Annotated[
        Path | None, typer.Option(help="Build the Lambda artifact from this lock instead of lambda/requirements.lock.")
    ] = None,
    baseline: Annotated[
        Path | None, typer.Option(help="A `cidb bench` baseline; the report's cards show its values beside this run's.")
    ] = None,
    iam: Annotated[
        bool, typer.Option(help="The embedded emulator enforces each function's role policy (--no-iam: it does not).")
    ] = _D.iam,
    revoke: Annotated[
        list[str],
        typer.Option(help="Leave FUNCTION:ACTION out of its role's policy, e.g. reporter:s3:DeleteObject (repeatable)"),
    ] = [],  # noqa: B006
    latency: Annotated[
        str,
        typer.Option(help="AWS latency profile for the embedded emulator: none, or aws (see docs/latency.md)."),
    ] = _D.latency,
) -> None:
    """Inject policies through the whole pipeline and report what arrived.

    Exit status: 0 when every record arrived exactly once (and every expected alarm fired); 1 on a
    loss, a duplicate or a missed alarm; 3 when records were only still queued or in flight at the end.
    """
    options = LoadTestOptions(
        policies=policies,
        profile=profile,
        concurrency=concurrency,
        source=source,
        out=out,
        endpoint_url=endpoint_url,
        target=target,
        stack=stack,
        outputs_file=outputs,
        seed=seed,
        deadline_seconds=deadline,
        inject_stale_lock=inject_stale_lock,
        lambda_lock=lambda_lock,
        fail_lock_release=fail_lock_release,
        measure_floor=measure_floor,
        overrides=_parse_overrides(set_),
        faults=_fault_names(fault),
        baseline=baseline,
        iam=iam,
        revoke=tuple(revoke),
        latency=latency,
    )
    try:
        with progress_bar() as bar:
            if len(options.faults) > 1:
                rehearsal = run_rehearsal(
                    options, show_progress(bar, "records", policies), on_run=lambda name, run: report_fault(name, run)
                )
            else:
                result = run_loadtest(options, progress=show_progress(bar, "records", policies))
    except USER_ERRORS as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    if len(options.faults) > 1:
        print_rehearsal(rehearsal)
        raise typer.Exit(rehearsal.exit_code)
    print_summary(result)
    for line in result.problems + result.unsettled:
        console.print(f"[red]{escape(line)}[/red]")
    if not result.ok:
        console.print(
            f"Keys and details: {result.report_dir / 'summary.json'}; function logs: {result.report_dir / 'logs'}"
        )
        raise typer.Exit(result.exit_code)


@app.command()
def bench(
    matrix: Annotated[str, typer.Option(help=f"Which cases: {', '.join(MATRICES)}.")] = "full",
    out: Annotated[Path | None, typer.Option(help="Directory for bench.json, bench.html and each run.")] = None,
    baseline: Annotated[Path | None, typer.Option(help="Compare with this baseline; exit 1 on a regression.")] = None,
    save_baseline: Annotated[Path | None, typer.Option(help="Store this benchmark as a baseline.")] = None,
    tolerance: Annotated[float, typer.Option(help="Allowed worsening of a gated ratio (0.2: 20 %).")] = (
        DEFAULT_TOLERANCE
    ),
) -> None:
    """Run the benchmark matrix; gate on ratios (e2e ÷ floor, calls per policy, bytes per byte) against a baseline."""
    if matrix not in MATRICES:
        raise typer.BadParameter(f"{matrix!r} is not one of {list(MATRICES)}", param_hint="--matrix")
    out_dir = out or Path("bench-results") / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        if baseline is not None:
            load_baseline(baseline)  # fail before the runs, not after them
        with progress_bar() as bar:
            result = run_bench(
                MATRICES[matrix],
                out_dir,
                baseline=baseline,
                tolerance=tolerance,
                progress=show_progress(bar, "records", 0),
                on_case=lambda case: console.print(f"case {case.name}"),
            )
    except USER_ERRORS as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    print_bench(result.cases)
    if save_baseline is not None:
        store_baseline(save_baseline, result.cases, machine())
        console.print(f"Baseline saved: {save_baseline}")
    for row in result.regressions:
        console.print(
            f"[red]regression: {row['case']} {row['measure']} {row['baseline']} -> {row['current']} "
            f"({row['change']:+.0%}, tolerance {tolerance:.0%})[/red]"
        )
    console.print(f"Report: {out_dir / 'bench.html'}")
    if result.regressions:
        raise typer.Exit(1)


@app.command()
def emulator(
    port: Annotated[int | None, typer.Option(help="Port on 127.0.0.1 (default: a free one).")] = None,
) -> None:
    """Run the embedded AWS emulator until Ctrl-C, to practise on-call verbs against load tests.

    Example: `cidb emulator --port 5000`, then in another shell `cidb loadtest --endpoint-url
    http://127.0.0.1:5000 --fault poison` and `cidb status --endpoint-url http://127.0.0.1:5000`.
    """
    server = MotoServer(port=port)
    try:
        server.start()
    except EmulatorError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    console.print(f"Emulator on {server.endpoint_url} (Ctrl-C stops it).")
    try:
        raise typer.Exit(server.wait())
    except KeyboardInterrupt:
        server.stop()
