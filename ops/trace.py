"""``cidb trace``: one record from its publish to the CSV row that holds it, with the log lines between.

The record is named by its seq or its trace id (``sha256(run_id:seq)``, see
:func:`pipeline.collection.trace_id`). The logs are read with FilterLogEvents, term by term: the
trace id finds the reporter's "record received" lines, and their request ids find the rest of
each invocation ("rows committed" names the segment). The S3 side is read directly: the part and
row, or the segment that holds the record until it is compacted, or the DLQ.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

from ops.errors import OpsError, aws_errors
from ops.log_lines import filter_lines
from ops.runs import get_run
from ops.target import Target
from pipeline.collection import trace_id as trace_id_of
from pipeline.dlq_messages import peek_messages
from pipeline.layout import report_prefix, segment_prefix
from pipeline.run_store import RunRecord

ROLES = ("collector", "reporter", "verifier")
MAX_EVENTS = 200


@dataclass
class Trace:
    run_id: str
    seq: int
    trace_id: str
    key: str
    locations: list[dict[str, Any]] = field(default_factory=list)  # part/row, segment, DLQ
    log_lines: list[dict[str, Any]] = field(default_factory=list)  # time-ordered, from every function

    @property
    def found(self) -> bool:
        return bool(self.locations)


def trace(target: Target, run_id: str, *, seq: int | None = None, trace_id: str | None = None) -> Trace:
    if (seq is None) == (trace_id is None):
        raise OpsError("name the record with exactly one of --seq N or --trace-id T")
    run = get_run(target, run_id)
    s3, bucket = target.client("s3"), target.outputs.bucket_name
    with aws_errors(f"S3 bucket {bucket} at {target.where}"):
        keys = json.loads(s3.get_object(Bucket=bucket, Key=run.expected_keys_key)["Body"].read())
    seq = seq if seq is not None else _seq_of(trace_id or "", run_id, len(keys))
    if not 1 <= seq <= len(keys):
        raise OpsError(f"run {run_id} has records 1..{len(keys)}; there is no seq {seq}")
    found = Trace(run_id, seq, trace_id_of(run_id, seq), keys[seq - 1])
    with aws_errors(f"S3 bucket {bucket} at {target.where}"):
        found.locations += _in_csv(s3, bucket, report_prefix(run.account_id, run_id), found.key, "part")
        found.locations += _in_csv(s3, bucket, segment_prefix(run.account_id, run_id), found.key, "segment")
    with aws_errors(f"SQS at {target.where}"):
        found.locations += [
            {"where": "dlq", "message_id": m.message_id, "receive_count": m.receive_count}
            for m in peek_messages(target.client("sqs"), target.outputs.dlq_url)
            if m.key == found.key
        ]
    with aws_errors(f"CloudWatch Logs at {target.where}"):
        found.log_lines = _log_lines(target, run, found.trace_id)
    return found


def _seq_of(trace_id: str, run_id: str, count: int) -> int:
    for seq in range(1, count + 1):
        if trace_id_of(run_id, seq) == trace_id:
            return seq
    raise OpsError(f"no record of run {run_id} has trace id {trace_id!r}")


def _in_csv(s3: Any, bucket: str, prefix: str, key: str, kind: str) -> list[dict[str, Any]]:
    hits = []
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    for obj in (o for page in pages for o in page.get("Contents", [])):
        if not obj["Key"].endswith(".csv"):
            continue
        text = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode()
        for row_no, row in enumerate(csv.DictReader(io.StringIO(text)), start=1):
            if row["record_key"] == key:
                hits.append({"where": kind, "object_key": obj["Key"], "row": row_no})
    return hits


def _log_lines(target: Target, run: RunRecord, trace_id: str) -> list[dict[str, Any]]:
    """Lines naming the trace id, every line of the invocations that received it, and the run's publish summary."""
    start = int((run.created_at - 60) * 1000)
    lines = _filter(target, "reporter", f'"{trace_id}"', start)
    request_ids = {line.get("function_request_id") for line in lines} - {None}
    for request_id in sorted(request_ids):
        lines += _filter(target, "reporter", f'"{request_id}"', start)
    lines += [
        line
        for line in _filter(target, "collector", f'"{run.run_id}"', start)
        if line.get("message") in ("run started", "run published") or trace_id in json.dumps(line)
    ]
    lines += [line for line in _filter(target, "verifier", f'"{run.run_id}"', start) if "run reconciled" in str(line)]
    # The invocation's lines about other records are noise; lines with no message are platform records.
    ours = [line for line in lines if line.get("message") and line.get("trace_id") in (None, trace_id)]
    unique = {json.dumps(line, sort_keys=True): line for line in ours}
    return sorted(unique.values(), key=lambda line: str(line.get("timestamp", "")))


def _filter(target: Target, role: str, pattern: str, start_ms: int) -> list[dict[str, Any]]:
    group = getattr(target.outputs, f"{role}_log_group_name")
    lines = filter_lines(target.client("logs"), group, pattern, start_ms, max_events=MAX_EVENTS)
    return [{"function": role, **line} for line in lines]
