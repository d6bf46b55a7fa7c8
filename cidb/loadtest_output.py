"""What the ``cidb`` commands print: progress, and the tables that end each command."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from loadtest.run.job import LoadTestResult
from loadtest.run.rehearse import Rehearsal
from loadtest.run.sampler import Sample

console = Console()


def progress_bar() -> Progress:
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
    )
    return Progress(*columns, console=console, transient=False)


def show_progress(bar: Progress, description: str, total: int) -> Callable[[Sample | None, int], None]:
    task = bar.add_task(description, total=total, status="starting")

    def show(sample: Sample | None, expected: int) -> None:
        if sample is None:
            return
        settled = min(expected, sample.written + sample.dlq)
        status = (
            f"queued {sample.visible}  in flight {sample.not_visible}  instances {sample.instances_in_flight}  "
            f"written {sample.written}  DLQ {sample.dlq}"
        )
        bar.update(task, total=expected, completed=settled, status=status)

    return show


def print_summary(result: LoadTestResult) -> None:
    s = result.summary
    table = Table(title=f"CIDB load test ({s['profile']}, {s['target']}, latency {s.get('latency', 'none')})")
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
        ("iam", f"{s['iam']['mode']}, denied {s['iam']['denied']}"),
        ("latency profile", _latency_line(s)),
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


def _latency_line(s: dict[str, Any]) -> str:
    """The latency profile, and under one what it added: delayed calls, cold starts, how pollers scaled."""
    if s.get("latency", "none") == "none":
        return "none"
    injected, scaling = s["latency_injected"], s["poller_scaling"]
    return (
        f"{s['latency']}: {injected['total_calls']} calls delayed, {injected['cold_starts']} cold starts "
        f"({injected['cold_start_ms_total']} ms), pollers {scaling['pollers_used']}/{scaling['max_pollers']} "
        f"(capped by {scaling['capped_by']})"
    )


def report_fault(name: str, run: LoadTestResult) -> None:
    verdict = "[green]passed[/green]" if run.ok else f"[red]failed ({'; '.join(run.problems + run.unsettled)})[/red]"
    console.print(f"fault {name}: {verdict}")


def print_rehearsal(rehearsal: Rehearsal) -> None:
    table = Table(title="Fault rehearsal")
    for column in ("fault", "injected", "lost", "dup", "DLQ", "queued", "verdict", "alarms fired"):
        table.add_column(column)
    for row in rehearsal.rows:
        fired = ", ".join(a.removeprefix("cidb-loadtest-") for a in row["alarms_fired"]) or "none"
        verdict = (
            "pass"
            if row["passed"]
            else "FAIL" + (f": missing {row['alarms_missing']}" if row["alarms_missing"] else "")
        )
        cells = (row["fault"], row["injected"], row["lost"], row["duplicates"], row["dlq"], row["queued_or_in_flight"])
        table.add_row(*(str(c) for c in cells), verdict, escape(fired))
    console.print(table)
    console.print(f"Report: {rehearsal.report_dir / 'report.html'}")


BENCH_COLUMNS = (
    "e2e_seconds",
    "floor_seconds",
    "e2e_over_floor",
    "records_per_second",
    "api_calls_per_policy",
    "bytes_per_output_byte",
    "lock_wait_p50_ms",
    "lock_wait_p99_ms",
    "reporter_invocations",
    "peak_rss_mb",
    "lost",
    "duplicates",
    "dlq",
)


def print_bench(cases: dict[str, dict[str, Any]]) -> None:
    table = Table(title="cidb bench")
    table.add_column("measure")
    for name in cases:
        table.add_column(name, justify="right")
    for measure in BENCH_COLUMNS:
        table.add_row(measure, *(str(values[measure]) for values in cases.values()))
    console.print(table)
