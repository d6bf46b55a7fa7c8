"""The ``cidb`` command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from artifact import ArtifactError, LockError
from loadtest.job import LoadTestResult, run_loadtest
from loadtest.options import LoadTestError, LoadTestOptions
from loadtest.outputs import OutputsError
from loadtest.sampler import Sample
from pipeline.spec import OVERRIDES, SpecError

app = typer.Typer(help="CIDB pipeline toolkit.", no_args_is_help=True, add_completion=False)
console = Console()


@app.callback()
def main() -> None:
    """CIDB pipeline toolkit."""


def _parse_overrides(values: list[str]) -> dict[str, object]:
    out: dict[str, object] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or key not in OVERRIDES:
            raise typer.BadParameter(f"{item!r}: use KEY=VALUE with KEY one of {sorted(OVERRIDES)}", param_hint="--set")
        try:
            out[key] = OVERRIDES[key](raw)
        except ValueError:
            raise typer.BadParameter(
                f"{item!r}: {raw!r} is not a {OVERRIDES[key].__name__}", param_hint="--set"
            ) from None
    return out


def _print_summary(result: LoadTestResult) -> None:
    s = result.summary
    table = Table(title=f"CIDB load test ({s['profile']}, {s['target']})")
    table.add_column("measure")
    table.add_column("value", justify="right")
    lock = s["lock"]
    for label, value in (
        ("policies", s["policies"]),
        ("rows written / unique", f"{s['rows_written']} / {s['unique_rows']}"),
        ("lost", s["lost"]),
        ("duplicates", s["duplicates"]),
        ("DLQ", s["dlq"]),
        ("written and in the DLQ", s["written_and_dlq"]),
        ("still queued at the end", s["queued_at_end"]),
        ("e2e seconds", s["e2e_seconds"]),
        ("emulator floor seconds", s.get("emulator_floor_seconds", "n/a")),
        ("reporter invocations", s["reporter_invocations"]),
        ("API calls (per policy)", f"{s['api_calls']['total']} ({s['api_calls']['per_policy']})"),
        ("S3 bytes written (per output byte)", f"{s['s3_bytes_written']} ({s['s3_bytes_written_per_output_byte']})"),
        ("lock acquired / contended", f"{lock['acquired']} / {lock['contended']}"),
        ("lock stale taken over / release failed", f"{lock['stale_broken']} / {lock['release_failed']}"),
        ("lock wait p50 / p99 ms", f"{lock['wait_ms_p50']} / {lock['wait_ms_p99']}"),
        ("alarms that would fire", ", ".join(s["alarms_fired"]) or "none"),
    ):
        table.add_row(label, str(value))
    artifact = s.get("artifact")
    if artifact:
        for label, value in (
            ("artifact sha256", artifact["sha256"][:16]),
            ("Powertools / boto3", f"{artifact['aws_lambda_powertools']} / {artifact['boto3']}"),
            ("function python", f"{artifact['python']} (Lambda: {artifact['lambda_runtime']})"),
        ):
            table.add_row(label, str(value))
    console.print(table)
    console.print(f"Report: {result.report_dir / 'report.html'}")


@app.command()
def loadtest(
    policies: Annotated[int, typer.Option(help="Synthetic policies to inject.")] = 1500,
    profile: Annotated[str, typer.Option(help="Deployment profile: tuned or seed.")] = "tuned",
    concurrency: Annotated[int | None, typer.Option(help="Reporter instances (default: the spec's).")] = None,
    source: Annotated[str, typer.Option(help="synthetic, or iam (creates the policies in IAM first).")] = "synthetic",
    out: Annotated[Path | None, typer.Option(help="Report directory.")] = None,
    endpoint_url: Annotated[str | None, typer.Option(help="Use an emulator that is already running.")] = None,
    target: Annotated[str, typer.Option(help="local (embedded emulator) or stack (a deployed stack).")] = "local",
    stack: Annotated[str | None, typer.Option(help="Pulumi stack to read outputs from.")] = None,
    outputs: Annotated[Path | None, typer.Option(help="JSON file of `pulumi stack output --json`.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic generator.")] = 7,
    deadline: Annotated[float, typer.Option(help="Seconds after which the run stops and reports.")] = 900.0,
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
) -> None:
    """Inject policies through the whole pipeline and report what arrived."""
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
    )
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=console, transient=False) as bar:
            task = bar.add_task("records", total=policies, status="starting")

            def show(sample: Sample | None, expected: int) -> None:
                if sample is None:
                    return
                settled = min(expected, sample.written + sample.dlq)
                status = (
                    f"queued {sample.visible}  in flight {sample.not_visible}  instances {sample.instances_in_flight}  "
                    f"written {sample.written}  DLQ {sample.dlq}"
                )
                bar.update(task, total=expected, completed=settled, status=status)

            result = run_loadtest(options, progress=show)
    except (LoadTestError, SpecError, OutputsError, ArtifactError, LockError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    _print_summary(result)
    for line in result.problems:
        console.print(f"[red]{escape(line)}[/red]")
    if not result.ok:
        console.print(
            f"Keys and details: {result.report_dir / 'summary.json'}; function logs: {result.report_dir / 'logs'}"
        )
        raise typer.Exit(1)
