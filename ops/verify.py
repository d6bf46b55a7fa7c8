"""``cidb verify RUN_ID``: reconcile one run from S3 against its run record, and explain every missing record.

The counting is :func:`ops.reconcile.reconcile`, the same code that judges a load test, and
each record not in the output gets its cause from :func:`ops.forensics.explain`, also the load
test's: in the DLQ (with its error), still queued, committed in a segment that no compaction
has folded yet, never published, overwritten (from the output's S3 versions), rejected, or
unknown; each with its trace id, which follows it through the logs (``cidb trace``).

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
from ops.forensics import LOSS_CAUSES, Explained, Forensics, RunEvidence, explain
from ops.log_lines import filter_lines
from ops.queue_state import queue_counts
from ops.reconcile import QueueContents, Reconciliation, download_output, reconcile
from ops.runs import get_run
from ops.target import Target
from pipeline.csv_store import csv_record_keys
from pipeline.dlq_messages import DecodedMessage, peek_messages
from pipeline.layout import segment_prefix
from pipeline.record import keys_digest
from pipeline.run_store import RunRecord

# The reporter logs a line per record received: a 1.5 M-record run would page FilterLogEvents for minutes.
MAX_LOG_EVENTS = 20_000


@dataclass
class Verification:
    run: RunRecord
    reconciliation: Reconciliation
    forensics: Forensics = field(default_factory=Forensics)
    queue_visible: int = 0
    queue_in_flight: int = 0
    dlq_not_records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def missing(self) -> list[Explained]:
        return self.forensics.explained

    @property
    def shortfall(self) -> int:
        return len(self.missing)

    @property
    def lost(self) -> int:
        return self.forensics.lost

    @property
    def ok(self) -> bool:
        return not self.missing and self.reconciliation.duplicates == 0

    def counts(self) -> dict[str, int]:
        """Records not in the output, by cause; only the causes that have some."""
        return {cause: n for cause, n in self.forensics.counts().items() if n}

    def lost_counts(self) -> dict[str, int]:
        return {cause: n for cause, n in self.counts().items() if cause in LOSS_CAUSES}


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
        result = reconcile(expected, files, QueueContents([m.key for m in dlq if m.key], _unparseable(dlq)), queued)
        evidence = RunEvidence(
            run_id=run_id,
            account_id=run.account_id,
            expected=expected,
            s3=s3,
            bucket=bucket,
            dlq=dlq,
            queued=result.queued_keys,
            committed=segment_keys,
            unread_queue_depth=in_flight if peek_queue else visible + in_flight,
            logs=lambda: filter_lines(
                target.client("logs"),
                target.outputs.reporter_log_group_name,
                f'"{run_id}"',
                int((run.created_at - 60) * 1000),
                max_events=MAX_LOG_EVENTS,
            ),
        )
        not_in_output = {*result.missing_keys, *result.dlq_keys, *result.queued_keys}
        forensics = explain([key for key in expected if key in not_in_output], evidence)
    return Verification(
        run,
        result,
        forensics,
        queue_visible=visible,
        queue_in_flight=in_flight,
        dlq_not_records=[m.to_dict() for m in dlq if m.key is None],
    )


def _unparseable(messages: list[DecodedMessage]) -> list[dict[str, Any]]:
    keep = ("message_id", "receive_count", "error", "first_bytes", "claimed_key", "claimed_trace_id")
    return [{k: m.to_dict()[k] for k in keep} for m in messages if m.key is None]


def _of_run(message: DecodedMessage, run_id: str) -> bool:
    if message.record is not None:
        return message.record.run_id == run_id
    return message.claim is None or message.claim.run_id == run_id


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
