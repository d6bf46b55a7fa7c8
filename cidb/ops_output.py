"""What the on-call verbs print: short rich tables, one per concern."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ops.dlq import DlqReport, RedriveResult
from ops.locks import LockInfo
from ops.queries import QueryResult
from ops.runs import RunRow
from ops.status import Status
from ops.trace import Trace
from ops.verify import Verification

console = Console()
MAX_ROWS = 50


def _when(epoch: float | None) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S") if epoch else "-"


def print_runs(rows: list[RunRow], title: str = "Runs (newest first)") -> None:
    table = Table(title=title)
    for column in ("run", "started (UTC)", "expected", "written", "shortfall", "state"):
        table.add_column(column, justify="right" if column in ("expected", "written", "shortfall") else "left")
    for row in rows:
        run = row.run
        state = run.status + (f": {run.closed_reason}" if run.closed_reason else "")
        shortfall = "-" if row.shortfall is None else str(row.shortfall)
        style = "red" if not row.healthy else None
        table.add_row(
            run.run_id,
            _when(run.created_at),
            str(run.expected),
            str(row.written),
            shortfall,
            escape(state),
            style=style,
        )
    console.print(table if rows else "No runs recorded yet.")


def print_locks(locks: list[LockInfo], title: str = "Locks held") -> None:
    if not locks:
        console.print("No lock is held.")
        return
    table = Table(title=title)
    for column in ("run", "owner", "age s", "expires in s", "stale", "etag"):
        table.add_column(column)
    for lock in locks:
        expires = "-" if lock.expires_in_seconds is None else f"{lock.expires_in_seconds:.0f}"
        table.add_row(
            lock.run_id,
            escape(lock.owner),
            f"{lock.age_seconds:.0f}",
            expires,
            "[red]yes[/red]" if lock.stale else "no",
            lock.etag,
        )
    console.print(table)


def print_status(found: Status) -> None:
    verdict = "[green]HEALTHY[/green]" if found.healthy else "[red]UNHEALTHY[/red]"
    console.print(f"{verdict}  {escape(found.target)}")
    for problem in found.problems:
        console.print(f"  [red]- {escape(problem)}[/red]")
    if found.alarms:
        table = Table(title="Alarms not OK")
        for column in ("alarm", "severity", "state", "since (UTC)", "runbook"):
            table.add_column(column)
        for alarm in found.alarms:
            since = alarm.since.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if alarm.since else "-"
            table.add_row(alarm.name, alarm.severity, alarm.state, since, alarm.runbook or "-")
        console.print(table)
    else:
        console.print("Alarms: all OK.")
    q = found.queue
    age = "n/a (no CloudWatch datapoint)" if q.oldest_age_seconds is None else f"{q.oldest_age_seconds:.0f} s"
    mapping = (
        "none (the emulator's load test runs its own poller)"
        if q.mapping_state is None
        else f"{q.mapping_state}, max concurrency {q.mapping_max_concurrency or 'unset'}"
    )
    console.print(
        f"Queue: {q.visible} visible, {q.in_flight} in flight, oldest {age}.  DLQ: {q.dlq_depth} "
        f"(+{q.dlq_in_flight} in flight).  Event source mapping: {mapping}."
    )
    print_runs(found.runs, title="Latest runs")
    print_locks(found.locks)


def print_verification(found: Verification) -> None:
    r = found.reconciliation
    verdict = "[green]COMPLETE[/green]" if found.ok else "[red]SHORT[/red]"
    console.print(
        f"{verdict}  run {found.run.run_id}: expected {r.expected}, written {r.unique_rows} unique of "
        f"{r.rows_written} rows in {r.output_files} parts, duplicates {r.duplicates}, shortfall {found.shortfall}"
    )
    if found.missing:
        console.print("Not in the output, by cause: " + ", ".join(f"{k} {v}" for k, v in found.counts().items()))
        lost = found.lost_counts()
        console.print(
            f"[red]Lost: {found.lost}[/red] (" + ", ".join(f"{k} {v}" for k, v in lost.items()) + ")"
            if lost
            else "Lost: 0 (every missing record is still on its way or counted in the DLQ)"
        )
        table = Table(title=f"Records not in the output (first {MAX_ROWS})")
        for column in ("seq", "cause", "trace id", "evidence"):
            table.add_column(column)
        for record in found.missing[:MAX_ROWS]:
            table.add_row(str(record.seq), str(record.cause), record.trace_id or "", escape(record.detail))
        console.print(table)
        forensics = found.forensics
        console.print(
            f"Evidence read: {forensics.versions_listed} object versions, {forensics.log_lines_read} reporter log lines"
            + (f"; the log group could not be read: {escape(forensics.logs_error)}" if forensics.logs_error else "")
            + "".join(f"; not readable: {escape(e)}" for e in forensics.unreadable)
        )
    if found.dlq_not_records:
        console.print(f"The DLQ also holds {len(found.dlq_not_records)} messages that are no record (`cidb dlq show`).")


def print_trace(found: Trace) -> None:
    console.print(f"run {found.run_id} seq {found.seq} trace id {found.trace_id}")
    console.print(f"record key {escape(found.key)}")
    if not found.locations:
        console.print("[red]In no part, segment or DLQ message.[/red]")
    for place in found.locations:
        if place["where"] == "dlq":
            console.print(f"  DLQ: message {place['message_id']} ({place['receive_count']} receives)")
        else:
            console.print(f"  {place['where']}: s3://…/{escape(place['object_key'])} row {place['row']}")
    table = Table(title=f"Log lines ({len(found.log_lines)})")
    for column in ("time", "function", "level", "message", "request"):
        table.add_column(column)
    for line in found.log_lines[:MAX_ROWS]:
        table.add_row(
            str(line.get("timestamp", "")),
            line["function"],
            str(line.get("level", "")),
            escape(str(line.get("message", ""))[:100]),
            str(line.get("function_request_id", ""))[:12],
        )
    console.print(table if found.log_lines else "No log lines found (the function logs are in CloudWatch Logs).")


def print_dlq(report: DlqReport) -> None:
    console.print(f"DLQ: {len(report.messages)} messages; by run: {report.runs() or '-'}")
    if not report.messages:
        return
    table = Table(title="By error and receive count")
    for column in ("messages", "receives", "error"):
        table.add_column(column)
    for error, receives, count in report.groups:
        table.add_row(str(count), "-" if receives is None else str(receives), escape(error))
    console.print(table)


def print_redrive(result: RedriveResult) -> None:
    if result.dry_run:
        console.print(f"Dry run: would move {result.planned} messages with {result.method}.")
    elif result.task_handle:
        console.print(f"Started StartMessageMoveTask for {result.planned} messages (task {result.task_handle}).")
    else:
        console.print(f"Moved {result.moved} of {result.planned} messages ({result.method}).")
    if result.left_poison:
        console.print(
            f"Left {result.left_poison} messages that are no record in the DLQ (--include-poison moves them)."
        )
    for message in result.failed_sends:
        console.print(f"[red]still in the DLQ: {escape(message)}[/red]")


def print_query(result: QueryResult) -> None:
    if not result.rows:
        console.print(f"{result.query.name}: no rows ({', '.join(result.log_groups)}).")
        return
    columns = list(dict.fromkeys(k for row in result.rows for k in row))
    if not columns:
        console.print(f"{result.query.name}: {len(result.rows)} matching events, but the endpoint returned no fields.")
        return
    table = Table(title=f"{result.query.name}: {len(result.rows)} rows")
    for column in columns:
        table.add_column(column)
    for row in result.rows[:MAX_ROWS]:
        table.add_row(*(escape(str(row.get(c, ""))[:80]) for c in columns))
    console.print(table)
