"""Per-batch segments: the reporter's lock-free commit point.

A reporter writes each (account, run) group of its batch as one immutable CSV object under
``segments/`` with ``PutObject(IfNoneMatch="*")``: no lock, no read, no rewrite, so reporters
never queue behind each other. The key is a digest of the group's record keys, so the same
group delivered again finds its segment already there (``412``) and writes nothing.

Segments are not the output. :mod:`pipeline.compaction` folds them into the run's CSV parts
under the run's lock, deduplicating across segments and against the parts, and deletes the
segments it folded. Until then a record is committed (it will reach the output exactly once)
but not yet visible in the parts.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from pipeline.aws import error_code
from pipeline.csv_store import rows_to_csv
from pipeline.layout import segment_key
from pipeline.record import PolicyRecord, key_digest
from pipeline.writer_metadata import WriterStamp, now_ms

PRECONDITION_FAILED = {"PreconditionFailed", "412"}
CONCURRENT_WRITE = {"ConditionalRequestConflict", "409"}


@dataclass(frozen=True)
class SegmentResult:
    key: str
    records: int  # distinct records in the segment
    written: int  # records this call wrote (0 if the same segment existed already)
    bytes_written: int
    write_ms: float


def write_segment(
    s3: Any, bucket: str, account_id: str, run_id: str, records: list[PolicyRecord], *, writer: str = ""
) -> SegmentResult:
    """Commit one group as an immutable segment; idempotent for the same set of records."""
    distinct = {key_digest(r.key): r for r in records}
    content_id = hashlib.sha256("\n".join(sorted(distinct)).encode()).hexdigest()[:32]
    key = segment_key(account_id, run_id, content_id)
    ordered = [distinct[d] for d in sorted(distinct, key=lambda d: distinct[d].seq)]
    body = rows_to_csv([r.to_row() for r in ordered], header=True).encode()
    started = time.monotonic()
    for attempt in (1, 2):
        try:
            stamp = WriterStamp(writer, write_at_ms=now_ms()).to_metadata() if writer else {}
            s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="text/csv", Metadata=stamp, IfNoneMatch="*")
            return SegmentResult(key, len(distinct), len(distinct), len(body), (time.monotonic() - started) * 1000)
        except ClientError as exc:
            code = error_code(exc)
            if code in PRECONDITION_FAILED:  # this very segment exists: committed by an earlier delivery
                return SegmentResult(key, len(distinct), 0, 0, (time.monotonic() - started) * 1000)
            # 409: a concurrent write of the same segment; S3 asks for a retry, which ends in 412 or success.
            if code not in CONCURRENT_WRITE or attempt == 2:
                raise
    raise AssertionError("unreachable")
