"""The on-call verbs: status, runs, verify, trace, dlq, lock, query.

Every verb takes the same target options (``--stack``, ``--outputs``, ``--endpoint-url``).
Exit status: 0 healthy or done, 1 when the verb found a problem (unhealthy, a short run),
2 for bad input or a target that cannot be reached (one line, never a traceback).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape

from cidb.app import app
from cidb.ops_output import (
    console,
    print_dlq,
    print_locks,
    print_query,
    print_redrive,
    print_runs,
    print_status,
    print_trace,
    print_verification,
)
from ops import dlq as dlq_ops
from ops.errors import OpsError
from ops.locks import break_lock, run_lock
from ops.queries import log_groups, parse_since, query_text, run_query, saved_query
from ops.runs import close_run, get_run, list_runs
from ops.status import status as pipeline_status
from ops.target import Target, resolve_target
from ops.trace import trace as trace_record
from ops.verify import verify as verify_run
from pipeline.run_store import DONE_STATUSES
from queries import load_queries

Stack = Annotated[str | None, typer.Option(help="Pulumi stack whose outputs name the resources.")]
Outputs = Annotated[Path | None, typer.Option(help="JSON of `pulumi stack output --json` (or a load test's).")]
Endpoint = Annotated[str | None, typer.Option(help="An emulator that is already running, e.g. http://127.0.0.1:5000.")]
Profile = Annotated[str, typer.Option(help="With --endpoint-url alone: the profile the emulator was provisioned with.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the same data as JSON.")]

F = TypeVar("F", bound=Callable[..., Any])


def _one_line_errors(verb: F) -> F:
    """Bad input or an unreachable target: one red line and exit status 2."""

    @functools.wraps(verb)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return verb(*args, **kwargs)
        except OpsError as exc:
            console.print(f"[red]error:[/red] {escape(str(exc))}")
            raise typer.Exit(2) from None

    return run  # type: ignore[return-value]


def _target(stack: str | None, outputs: Path | None, endpoint_url: str | None, profile: str) -> Target:
    return resolve_target(stack=stack, outputs_file=outputs, endpoint_url=endpoint_url, profile=profile)


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


@app.command()
@_one_line_errors
def status(
    stack: Stack = None,
    outputs: Outputs = None,
    endpoint_url: Endpoint = None,
    profile: Profile = "tuned",
    as_json: AsJson = False,
) -> None:
    """Is the pipeline healthy right now? Alarms, queue, DLQ, latest runs, held locks. Exit 1 when not."""
    found = pipeline_status(_target(stack, outputs, endpoint_url, profile))
    _print_json(found.to_dict()) if as_json else print_status(found)
    raise typer.Exit(0 if found.healthy else 1)


runs_app = typer.Typer(help="Runs: list them (`cidb runs --last N`), or close one that can never complete.")
app.add_typer(runs_app, name="runs")


@runs_app.callback(invoke_without_command=True)
@_one_line_errors
def runs(
    ctx: typer.Context,
    last: Annotated[int, typer.Option(help="How many runs, newest first.")] = 10,
    stack: Stack = None,
    outputs: Outputs = None,
    endpoint_url: Endpoint = None,
    profile: Profile = "tuned",
    as_json: AsJson = False,
) -> None:
    """The latest runs: expected, written, shortfall and state."""
    if ctx.invoked_subcommand is not None:
        return
    rows = list_runs(_target(stack, outputs, endpoint_url, profile), last)
    _print_json([r.to_dict() for r in rows]) if as_json else print_runs(rows)


@runs_app.command("close")
@_one_line_errors
def runs_close(
    run_id: str,
    reason: Annotated[str, typer.Option(help="Why the run can never complete; kept in the run record.")],
    stack: Stack = None,
    outputs: Outputs = None,
    endpoint_url: Endpoint = None,
    profile: Profile = "tuned",
) -> None:
    """Close a run that can never complete: the verifier stops checking it and its data-loss alarm clears."""
    run, alarm = close_run(_target(stack, outputs, endpoint_url, profile), run_id, reason)
    console.print(f"Run {run.run_id} closed: {escape(run.closed_reason or '')}. {alarm}.")


@app.command()
@_one_line_errors
def verify(
    run_id: str,
    peek_queue: Annotated[
        bool,
        typer.Option(help="Also read the main queue (adds a receive to each message: only when nothing consumes)."),
    ] = False,
    stack: Stack = None,
    outputs: Outputs = None,
    endpoint_url: Endpoint = None,
    profile: Profile = "tuned",
    as_json: AsJson = False,
) -> None:
    """Reconcile one run from S3 against its run record; give each missing record its cause. Exit 1 when short."""
    found = verify_run(_target(stack, outputs, endpoint_url, profile), run_id, peek_queue=peek_queue)
    if as_json:
        r = found.reconciliation
        counts = {k: getattr(r, k) for k in ("expected", "rows_written", "unique_rows", "duplicates", "output_files")}
        forensics = found.forensics.to_summary()
        _print_json(
            {
                **counts,
                "shortfall": found.shortfall,
                "lost": found.lost,
                "by_cause": forensics["by_cause"],
                "versions_read": forensics["versions_read"],
                "missing": [m.to_dict() for m in found.missing],
            }
        )
    else:
        print_verification(found)
    raise typer.Exit(0 if found.ok else 1)


@app.command()
@_one_line_errors
def trace(
    run_id: str,
    seq: Annotated[int | None, typer.Option(help="The record's number in its run (1-based).")] = None,
    trace_id: Annotated[str | None, typer.Option(help="The record's trace id.")] = None,
    stack: Stack = None,
    outputs: Outputs = None,
    endpoint_url: Endpoint = None,
    profile: Profile = "tuned",
) -> None:
    """Follow one record: its publish, the reporter's log lines, and the CSV part and row that hold it."""
    found = trace_record(_target(stack, outputs, endpoint_url, profile), run_id, seq=seq, trace_id=trace_id)
    print_trace(found)
    raise typer.Exit(0 if found.found else 1)


dlq_app = typer.Typer(help="The dead-letter queue: what it holds and why; move it back.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")


@dlq_app.command("show")
@_one_line_errors
def dlq_show(
    limit: Annotated[int | None, typer.Option(help="Read at most this many messages.")] = None,
    stack: Stack = None,
    outputs: Outputs = None,
    endpoint_url: Endpoint = None,
    profile: Profile = "tuned",
    as_json: AsJson = False,
) -> None:
    """Decode the DLQ's messages and group them by error and receive count (messages stay in the DLQ)."""
    report = dlq_ops.show(_target(stack, outputs, endpoint_url, profile), limit)
    _print_json([m.to_dict() for m in report.messages]) if as_json else print_dlq(report)


@dlq_app.command("redrive")
@_one_line_errors
def dlq_redrive(
    dry_run: Annotated[bool, typer.Option(help="Say what would move; move nothing.")] = False,
    rate: Annotated[int, typer.Option(help="Messages per second.")] = 10,
    force: Annotated[bool, typer.Option(help="Redrive even while an alarm for the cause is firing.")] = False,
    include_poison: Annotated[bool, typer.Option(help="Also move messages that are no record.")] = False,
    stack: Stack = None,
    outputs: Outputs = None,
    endpoint_url: Endpoint = None,
    profile: Profile = "tuned",
) -> None:
    """Move the DLQ back to the queue; a message leaves the DLQ only after its send is confirmed."""
    result = dlq_ops.redrive(
        _target(stack, outputs, endpoint_url, profile),
        dry_run=dry_run,
        rate=rate,
        force=force,
        include_poison=include_poison,
    )
    print_redrive(result)
    raise typer.Exit(1 if result.failed_sends else 0)


lock_app = typer.Typer(help="The runs' S3 locks: who holds them; break a stale one.", no_args_is_help=True)
app.add_typer(lock_app, name="lock")


@lock_app.command("show")
@_one_line_errors
def lock_show(
    run_id: Annotated[str | None, typer.Argument(help="One run's lock; default: every unfinished run's.")] = None,
    stack: Stack = None,
    outputs: Outputs = None,
    endpoint_url: Endpoint = None,
    profile: Profile = "tuned",
) -> None:
    """Locks held: owner, age, expiry, stale or not, and the ETag that `lock break` deletes on."""
    target = _target(stack, outputs, endpoint_url, profile)
    if run_id:
        runs = [get_run(target, run_id)]
    else:
        runs = [r.run for r in list_runs(target) if r.run.status not in DONE_STATUSES]
    print_locks([lock for lock in (run_lock(target, run) for run in runs) if lock is not None and lock.held])


@lock_app.command("break")
@_one_line_errors
def lock_break(
    run_id: str,
    force: Annotated[
        bool, typer.Option(help="Break a lock that is not stale (its writer may still be working).")
    ] = False,
    stack: Stack = None,
    outputs: Outputs = None,
    endpoint_url: Endpoint = None,
    profile: Profile = "tuned",
) -> None:
    """Break a run's stale lock: delete only with IfMatch on the ETag shown."""
    target = _target(stack, outputs, endpoint_url, profile)
    lock = run_lock(target, get_run(target, run_id))
    if lock is None:
        raise OpsError(f"run {run_id} holds no lock")
    print_locks([lock], title="Breaking")
    console.print(f"Lock of run {run_id}: {break_lock(target, lock, force=force)} (IfMatch {lock.etag}).")


@app.command()
@_one_line_errors
def query(
    name: Annotated[str | None, typer.Argument(help="A saved query (see --list).")] = None,
    since: Annotated[str, typer.Option(help="How far back: 30m, 1h, 2d.")] = "1h",
    run_id: Annotated[str | None, typer.Option(help="Only this run's lines.")] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the saved queries and their purpose.")] = False,
    print_: Annotated[bool, typer.Option("--print", help="Print the query text for the console; run nothing.")] = False,
    stack: Stack = None,
    outputs: Outputs = None,
    endpoint_url: Endpoint = None,
    profile: Profile = "tuned",
) -> None:
    """Run a saved Logs Insights query against the stack's log groups and print a table."""
    if list_ or name is None:
        for saved in load_queries():
            console.print(f"[bold]{saved.name}[/bold] ({', '.join(saved.log_groups)}): {escape(saved.purpose)}")
        return
    saved = saved_query(name)
    if print_:
        target = _target(stack, outputs, endpoint_url, profile) if (stack or outputs or endpoint_url) else None
        groups = log_groups(target, saved) if target else [f"<{role} log group>" for role in saved.log_groups]
        console.print(f"# log groups: {', '.join(groups)}", markup=False)
        typer.echo(query_text(saved, run_id=run_id or ("RUN_ID" if "RUN_ID" in saved.text else None)))
        return
    result = run_query(_target(stack, outputs, endpoint_url, profile), name, since=parse_since(since), run_id=run_id)
    print_query(result)
    if endpoint_url:
        console.print(
            "[dim]An emulator evaluates only the fields, sort and limit of a query (moto): this checks the call "
            "and the log groups, not the answer. `cidb trace` reads the same logs term by term.[/dim]"
        )
