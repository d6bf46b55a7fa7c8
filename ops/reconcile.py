"""Reconcile a run from what S3 and the DLQ really hold, not from the pipeline's counters."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.dlq_messages import DecodedMessage, decode_message, peek_messages
from pipeline.layout import report_prefix


@dataclass
class Reconciliation:
    expected: int
    rows_written: int
    unique_rows: int
    duplicates: int
    lost: int
    dlq: int  # records in the DLQ and not in the output
    unexpected: int
    output_bytes: int
    output_files: int
    missing_keys: list[str] = field(default_factory=list)
    duplicate_keys: list[str] = field(default_factory=list)
    dlq_keys: list[str] = field(default_factory=list)
    dlq_unparseable: int = 0
    # DLQ messages that are no record at all (poison), named so that on-call sees what they were.
    dlq_unparseable_messages: list[dict[str, Any]] = field(default_factory=list)
    # In the output and in the DLQ: written, but its message came back until its receives ran out.
    # Counted neither as DLQ nor as lost; a clean run has none.
    written_and_dlq: int = 0
    written_and_dlq_keys: list[str] = field(default_factory=list)
    # Still in the queue when the run ended (at its deadline): not written yet, and not lost.
    queued: int = 0
    queued_keys: list[str] = field(default_factory=list)
    # In flight when the run ended: a delete or visibility change that SQS refused left them invisible.
    # On AWS they come back after the visibility timeout; not lost.
    in_flight: int = 0
    in_flight_keys: list[str] = field(default_factory=list)


@dataclass
class QueueContents:
    """What a queue held: record keys, and the messages that are no record (with their first bytes)."""

    keys: list[str] = field(default_factory=list)
    unparseable: list[dict[str, Any]] = field(default_factory=list)
    messages: list[DecodedMessage] = field(default_factory=list)  # every message, decoded, for forensics


def _contents(messages: list[DecodedMessage]) -> QueueContents:
    contents = QueueContents(messages=list(messages))
    for message in messages:
        if message.key is not None:
            contents.keys.append(message.key)
        else:
            fields = message.to_dict()
            keep = ("message_id", "receive_count", "error", "first_bytes", "claimed_key", "claimed_trace_id")
            contents.unparseable.append({k: fields[k] for k in keep})
    return contents


def keys_of_bodies(bodies: dict[str, str]) -> QueueContents:
    """Record keys of message bodies (by message id), e.g. of the messages still in flight."""
    return _contents([decode_message({"MessageId": mid, "Body": body}) for mid, body in bodies.items()])


def download_output(s3: Any, bucket: str, account_id: str, run_id: str, out_dir: Path) -> list[Path]:
    """Copy the run's CSV files, byte for byte, into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=report_prefix(account_id, run_id))
    for obj in (o for page in pages for o in page.get("Contents", [])):
        if obj["Key"].endswith(".csv"):
            path = out_dir / Path(obj["Key"]).name
            path.write_bytes(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            files.append(path)
    return sorted(files)


def read_queue(sqs: Any, queue_url: str, wait_seconds: int = 0) -> QueueContents:
    """Every message in a queue (the DLQ, or the main queue once nothing consumes it), as record keys.

    Messages stay where they are (made visible again). ``wait_seconds`` long-polls for messages
    that are about to become visible again, such as retries of the last failed invocations.
    """
    return _contents(peek_messages(sqs, queue_url, wait_seconds=wait_seconds))


def wait_until_visible(sqs: Any, queue_url: str, max_seconds: float) -> int:
    """Wait for in-flight messages (failed ones sit out a short visibility); returns how many never came back."""
    deadline = time.monotonic() + max_seconds
    while True:
        attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
        invisible = int(attrs["Attributes"]["ApproximateNumberOfMessagesNotVisible"])
        if invisible == 0 or time.monotonic() >= deadline:
            return invisible
        time.sleep(1)


def reconcile(
    expected_keys: list[str],
    csv_files: list[Path],
    dlq: QueueContents,
    queued_keys: list[str] | None = None,
    in_flight_keys: list[str] | None = None,
) -> Reconciliation:
    """Each expected key ends in exactly one bucket: written, DLQ, queued, in flight, or lost.

    A DLQ message that failed validation but still names an expected record (its body was
    corrupted on the way) counts as that record's DLQ entry, not as an unparseable message.
    """
    expected_set = set(expected_keys)
    corrupted = [m for m in dlq.unparseable if m.get("claimed_key") in expected_set]
    unparseable = [m for m in dlq.unparseable if m.get("claimed_key") not in expected_set]
    frames = [pd.read_csv(io.BytesIO(p.read_bytes()), dtype=str, keep_default_na=False) for p in csv_files]
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"record_key": pd.Series(dtype=str)})
    counts = rows["record_key"].value_counts()
    expected = pd.Index(sorted(set(expected_keys)))
    written = expected.intersection(counts.index)
    dlq_messages = pd.Series(dlq.keys + [m["claimed_key"] for m in corrupted], dtype=str)
    also_written = dlq_messages.isin(counts.index)
    in_dlq = pd.Index(sorted(set(dlq_messages[~also_written])))
    queued = expected.difference(written).difference(in_dlq).intersection(pd.Index(sorted(set(queued_keys or []))))
    unsettled = expected.difference(written).difference(in_dlq).difference(queued)
    in_flight = unsettled.intersection(pd.Index(sorted(set(in_flight_keys or []))))
    missing = unsettled.difference(in_flight)
    duplicate_keys = counts[counts > 1]
    return Reconciliation(
        expected=len(expected),
        rows_written=len(rows),
        unique_rows=int(counts.size),
        duplicates=int((duplicate_keys - 1).sum()),
        lost=len(missing),
        dlq=int((~also_written).sum()) + len(unparseable),
        unexpected=len(counts.index.difference(expected)),
        output_bytes=sum(p.stat().st_size for p in csv_files),
        output_files=len(csv_files),
        missing_keys=list(missing),
        duplicate_keys=list(duplicate_keys.index),
        dlq_keys=list(in_dlq),
        dlq_unparseable=len(unparseable),
        dlq_unparseable_messages=unparseable,
        written_and_dlq=int(also_written.sum()),
        written_and_dlq_keys=sorted(set(dlq_messages[also_written])),
        queued=len(queued),
        queued_keys=list(queued),
        in_flight=len(in_flight),
        in_flight_keys=list(in_flight),
    )
