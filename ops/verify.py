"""``cidb verify RUN_ID``: reconcile one run from S3 against its run record, and place every missing record.

The counting is :func:`ops.reconcile.reconcile`, the same code that judges a load test. On top
of it each missing key gets a place: in the DLQ (with its error), committed in a segment that
the verifier's flush has not folded yet, still queued or in flight, or nowhere, with the trace
id that follows it through the logs (``cidb trace``).

The main queue is never read unless asked (``peek_queue``): a read adds a receive to each
message, which counts toward the DLQ's maxReceiveCount while reporters consume it.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ops.errors import OpsError, aws_errors
from ops.queue_state import queue_counts
from ops.reconcile import QueueContents, Reconciliation, download_output, reconcile
from ops.runs import get_run
from ops.target import Target
from pipeline.collection import trace_id
from pipeline.csv_store import csv_record_keys
from pipeline.dlq_messages import DecodedMessage, peek_messages
from pipeline.layout import segment_prefix
from pipeline.record import keys_digest
from pipeline.run_store import RunRecord

IN_DLQ = "dlq"
IN_SEGMENT = "segment"
QUEUED = "queued"
MAYBE_IN_QUEUE = "queued or in flight"
NOWHERE = "nowhere"


@dataclass(frozen=True)
class MissingRecord:
    key: str
    seq: int
    trace_id: str
    where: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Verification:
    run: RunRecord
    reconciliation: Reconciliation
    missing: list[MissingRecord] = field(default_factory=list)
    queue_visible: int = 0
    queue_in_flight: int = 0
    dlq_not_records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def shortfall(self) -> int:
        return len(self.missing)

    @property
    def ok(self) -> bool:
        return not self.missing and self.reconciliation.duplicates == 0

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for record in self.missing:
            counts[record.where] = counts.get(record.where, 0) + 1
        return counts


def verify(target: Target, run_id: str, *, peek_queue: bool = False) -> Verification:
    run = get_run(target, run_id)
    s3, bucket = target.client("s3"), target.outputs.bucket_name
    where = f"S3 bucket {bucket} at {target.where}"
    with aws_errors(where):
        expected = _expected_keys(s3, bucket, run)
        segment_keys = _segment_keys(s3, bucket, run)
    with aws_errors(f"SQS at {target.where}"):
        dlq = [m for m in peek_messages(target.client("sqs"), target.outputs.dlq_url) if _of_run(m, run_id)]
        queued = (
            [m.key for m in peek_messages(target.client("sqs"), target.outputs.queue_url) if m.key]
            if peek_queue
            else []
        )
    visible, in_flight = queue_counts(target, target.outputs.queue_url)
    with tempfile.TemporaryDirectory() as tmp, aws_errors(where):
        files = download_output(s3, bucket, run.account_id, run_id, Path(tmp))
        result = reconcile(expected, files, QueueContents([m.key for m in dlq if m.key]), queued_keys=queued)
    verification = Verification(
        run,
        result,
        queue_visible=visible,
        queue_in_flight=in_flight,
        dlq_not_records=[m.to_dict() for m in dlq if m.key is None],
    )
    seq_of = {key: seq for seq, key in enumerate(expected, start=1)}
    in_dlq = {m.key: m for m in dlq if m.key}
    unplaced = set(result.missing_keys) | set(result.queued_keys) | set(result.dlq_keys)
    for key in sorted(unplaced, key=lambda k: seq_of[k]):
        where_now, detail = _place(key, in_dlq, set(segment_keys), set(result.queued_keys), visible + in_flight)
        seq = seq_of[key]
        verification.missing.append(MissingRecord(key, seq, trace_id(run_id, seq), where_now, detail))
    return verification


def _place(
    key: str, in_dlq: dict[str, DecodedMessage], segments: set[str], queued: set[str], queue_depth: int
) -> tuple[str, str]:
    if key in in_dlq:
        message = in_dlq[key]
        return IN_DLQ, f"message {message.message_id}, {message.receive_count} receives: {message.cause}"
    if key in segments:
        return IN_SEGMENT, "committed in a segment; the next compaction or the verifier's flush folds it into a part"
    if key in queued:
        return QUEUED, "still in the main queue"
    if queue_depth:
        return MAYBE_IN_QUEUE, f"not found; the queue still holds {queue_depth} messages (--peek-queue to look)"
    return NOWHERE, "in no part, segment, queue or DLQ: lost; follow it with `cidb trace`"


def _of_run(message: DecodedMessage, run_id: str) -> bool:
    return message.record is None or message.record.run_id == run_id


def _expected_keys(s3: Any, bucket: str, run: RunRecord) -> list[str]:
    keys = json.loads(s3.get_object(Bucket=bucket, Key=run.expected_keys_key)["Body"].read())
    if keys_digest(keys) != run.keys_digest:
        raise OpsError(
            f"s3://{bucket}/{run.expected_keys_key} does not match run {run.run_id}'s keys_digest: the key list was "
            "changed after the collector wrote it, so a check against it would prove nothing"
        )
    return keys


def _segment_keys(s3: Any, bucket: str, run: RunRecord) -> list[str]:
    keys: list[str] = []
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=segment_prefix(run.account_id, run.run_id)
    )
    for obj in (o for page in pages for o in page.get("Contents", [])):
        keys += csv_record_keys(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode())
    return keys
