"""Saved Logs Insights queries: loadable, structurally valid, and reading fields the pipeline really logs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from loadtest.emulator import lambda_bootstrap
from pipeline.telemetry import LockEvent
from queries import LOG_GROUP_ROLES, load_queries, load_query

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {"fields", "filter", "stats", "sort", "limit", "parse", "display", "dedup", "unmask", "pattern", "diff"}
KEYWORDS = {"as", "by", "and", "or", "not", "in", "like", "asc", "desc"}
# Fields CloudWatch Logs adds itself; the local emulator captures only what the functions print (their JSON lines
# and Lambda's platform.report lines), so none of these appear there.
CLOUDWATCH_FIELDS = {
    "@timestamp",
    "@message",
    "@log",
    "@logStream",
    "@requestId",
    "@ingestionTime",
    "@type",
    "@duration",
    "@billedDuration",
    "@initDuration",
    "@maxMemoryUsed",
    "@memorySize",
}
# Keys of rare error lines: Powertools Logger adds the first two only on logger.exception() lines, the Lambda runtime
# the last two only when an exception escapes a handler; a run without such errors logs none (the emulator writes the
# runtime's line as Lambda does: test_emulator_logs_an_uncaught_error_as_lambdas_runtime_does).
ERROR_FIELDS = {"exception", "exception_name", "errorType", "errorMessage"}
REQUIRED = {
    "lock-contention",
    "lock-wait-percentiles",
    "stale-locks",
    "lock-release-failures",
    "slowest-s3-writes",
    "trace-run",
    "run-reconciliation",
    "throttling-retries",
    "reporter-errors",
    "cold-starts-duration",
}
_LITERAL = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|(?<=like)\s*/(?:[^/\\]|\\.)+/')
_TOKEN = re.compile(r"(?<![\w@.])@?[A-Za-z_][\w.]*(\s*\()?")


def _segments(text: str) -> list[str]:
    """Split on pipes outside quotes and parentheses; fail on unbalanced quotes or parentheses."""
    segments, current, depth, quote = [], "", 0, ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
            assert depth >= 0, f"unbalanced closing bracket in {text!r}"
        elif char == "|" and depth == 0:
            segments.append(current)
            current = ""
            continue
        current += char
    assert not quote, f"unterminated quote in {text!r}"
    assert depth == 0, f"unbalanced parentheses in {text!r}"
    return [*segments, current]


def referenced_fields(text: str) -> set[str]:
    """Log fields a query reads: identifiers that are not commands, keywords, functions or aliases."""
    without_literals = _LITERAL.sub(" ", text)
    aliases = set(re.findall(r"\bas\s+(\w+)", without_literals))
    found = set()
    for match in _TOKEN.finditer(without_literals):
        name = match[0].rstrip("( ")
        if match[1] or name in COMMANDS | KEYWORDS | aliases:
            continue
        found.add(name)
    return found


def test_every_required_query_exists_with_purpose_and_log_groups():
    queries = {q.name: q for q in load_queries()}
    assert set(queries) >= REQUIRED, f"missing saved queries: {REQUIRED - set(queries)}"
    for query in queries.values():
        assert query.purpose, f"{query.name}: no purpose"
        assert query.log_groups and set(query.log_groups) <= set(LOG_GROUP_ROLES), f"{query.name}: bad log groups"


def test_query_files_start_with_comment_header():
    for path in (ROOT / "queries").glob("*.logsinsights"):
        assert path.read_text().startswith("# purpose:"), f"{path} must start with '# purpose:'"


def test_load_query_unknown_name_says_which_exist():
    with pytest.raises(KeyError, match="lock-contention"):
        load_query("no-such-query")


@pytest.mark.parametrize("query", load_queries(), ids=lambda q: q.name)
def test_query_is_structurally_valid_logs_insights(query):
    for segment in _segments(query.text):
        command = segment.split(maxsplit=1)[0] if segment.strip() else ""
        assert command in COMMANDS, f"{query.name}: {command!r} is not a Logs Insights command"
    assert "#" not in query.text, f"{query.name}: comments belong in the header, not in the query"


@pytest.mark.parametrize("query", load_queries(), ids=lambda q: q.name)
def test_lock_event_values_come_from_telemetry(query):
    values = re.findall(r'lock_event\s*=\s*"(\w+)"', query.text)
    for group in re.findall(r"lock_event\s+in\s*\[([^\]]*)\]", query.text):
        values += re.findall(r'"(\w+)"', group)
    unknown = set(values) - {e.value for e in LockEvent}
    assert not unknown, f"{query.name}: lock_event values {unknown} are not pipeline.telemetry.LockEvent values"


def test_field_extraction_skips_functions_aliases_and_literals():
    text = 'filter x = "a b" and ispresent(y) | stats pct(z, 99) as p99 by bin(5m), w | sort p99 desc'
    assert referenced_fields(text) == {"x", "y", "z", "w"}


def _logged_fields(report_dir: Path, function_name: str) -> set[str]:
    """Field names of the structured (non-EMF) log records one function printed during the local run."""
    fields: set[str] = set()
    path = report_dir / "logs" / f"{function_name}.jsonl"
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and "_aws" not in record:
            fields |= _flattened(record)
    return fields


def _flattened(record: dict, prefix: str = "") -> set[str]:
    """Keys as Logs Insights names them: nested JSON objects become dotted paths."""
    keys = set()
    for key, value in record.items():
        keys.add(prefix + key)
        if isinstance(value, dict):
            keys |= _flattened(value, f"{prefix}{key}.")
    return keys


@pytest.mark.parametrize("query", load_queries(), ids=lambda q: q.name)
def test_query_fields_appear_in_captured_logs(query, fault_run, throttled_run):
    """GIVEN two small local runs (stale lock and failing lock releases; throttled S3) WHEN a saved query reads a
    field THEN one of its log groups logged that field, platform.report lines included."""
    logged = set().union(
        *(
            _logged_fields(run.report_dir, getattr(run.spec, role).name)
            for run in (fault_run, throttled_run)
            for role in query.log_groups
        )
    )
    needed = referenced_fields(query.text) - CLOUDWATCH_FIELDS - ERROR_FIELDS
    missing = sorted(needed - logged)
    assert not missing, (
        f"{query.name} reads {missing}, which no {query.log_groups} log line carried in the local runs; fields of rare "
        "events (stale locks, throttling) need a load-test scenario that triggers them"
    )


def test_emulator_logs_an_uncaught_error_as_lambdas_runtime_does(capsys: pytest.CaptureFixture[str]) -> None:
    """reporter-errors finds escaped exceptions by the runtime's top-level errorType (JSON log format)."""
    try:
        raise KeyError("run_id")
    except KeyError as exc:
        lambda_bootstrap._log_error(lambda_bootstrap.error_payload(exc), "req-1")
    line = json.loads(capsys.readouterr().out)
    assert (line["level"], line["errorType"], line["requestId"]) == ("ERROR", "KeyError", "req-1"), line
    assert "errorMessage" in line and referenced_fields(load_query("reporter-errors").text) >= {"errorType"}


def test_throttling_query_leaves_lock_events_out() -> None:
    """ "lock busy" lines carry attempt and error_code too; they are contention, with queries of their own."""
    text = load_query("throttling-retries").text
    assert "not ispresent(lock_event)" in text and {"aws_service", "retries"} <= referenced_fields(text)


def test_reporter_errors_covers_all_three_functions_uncaught_errors_and_timeouts() -> None:
    query = load_query("reporter-errors")
    assert query.log_groups == LOG_GROUP_ROLES, "the runbook sends on-call to it for every function"
    assert {"errorType", "record.status", "exception_name"} <= referenced_fields(query.text)
    assert 'record.status != "success"' in query.text, "timeouts are platform reports whose status is not success"
