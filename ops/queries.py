"""``cidb query``: run a saved Logs Insights query against the stack's log groups.

The query text is the file in ``queries/`` exactly as the Pulumi program saves it. ``RUN_ID`` and
``TRACE_ID`` placeholders are filled in; for a query without them, ``--run-id`` adds a filter.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ops.errors import OpsError, aws_errors
from ops.target import Target
from queries import SavedQuery, load_queries, load_query

POLL_SECONDS = 1.0
MAX_WAIT_SECONDS = 120
_SINCE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


@dataclass(frozen=True)
class QueryResult:
    query: SavedQuery
    text: str
    log_groups: list[str]
    status: str
    rows: list[dict[str, str]]


def saved_query(name: str) -> SavedQuery:
    try:
        return load_query(name)
    except KeyError:
        known = ", ".join(q.name for q in load_queries())
        raise OpsError(f"no saved query {name!r}; `cidb query --list` shows them: {known}") from None


def parse_since(value: str) -> timedelta:
    match = _SINCE.match(value.strip())
    if not match:
        raise OpsError(f"--since {value!r}: use a number and a unit, e.g. 30m, 1h, 2d")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def query_text(query: SavedQuery, *, run_id: str | None = None, trace_id: str | None = None) -> str:
    text = query.text
    if "RUN_ID" in text:
        if not run_id:
            raise OpsError(f"query {query.name} needs --run-id (its text filters on RUN_ID)")
        return text.replace("RUN_ID", run_id).replace("TRACE_ID", trace_id or "TRACE_ID")
    return f'filter run_id = "{run_id}"\n| {text}' if run_id else text


def log_groups(target: Target, query: SavedQuery) -> list[str]:
    return [getattr(target.outputs, f"{role}_log_group_name") for role in query.log_groups]


def run_query(target: Target, name: str, *, since: timedelta, run_id: str | None = None) -> QueryResult:
    query = saved_query(name)
    text, groups = query_text(query, run_id=run_id), log_groups(target, query)
    logs = target.client("logs")
    end = datetime.now(UTC)
    with aws_errors(f"CloudWatch Logs at {target.where}"):
        query_id = logs.start_query(
            logGroupNames=groups,
            startTime=int((end - since).timestamp()),
            endTime=int(end.timestamp()) + 60,
            queryString=text,
        )["queryId"]
        deadline = time.monotonic() + MAX_WAIT_SECONDS
        while True:  # Logs Insights has no waiter: poll until the query leaves Scheduled/Running
            response = logs.get_query_results(queryId=query_id)
            if response["status"] not in ("Scheduled", "Running") or time.monotonic() > deadline:
                break
            time.sleep(POLL_SECONDS)
    if response["status"] != "Complete":
        raise OpsError(f"query {name} ended {response['status']} (id {query_id}); try a shorter --since")
    rows = [{f["field"]: f["value"] for f in row if f["field"] != "@ptr"} for row in response.get("results", [])]
    return QueryResult(query, text, groups, response["status"], rows)
