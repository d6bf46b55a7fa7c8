"""Fold a run's segments into its CSV parts, under the run's lock.

Why: with one lock per run and every batch rewriting the part it appends to, reporters
queued behind each other and wrote each part once per batch (11.5 bytes written per byte
of output). Segments (:mod:`pipeline.segments`) take the lock off the hot path; compaction
takes it once per part instead of once per batch:

- a *fill* compaction (``flush=False``) writes only what completes the last part and then
  whole parts, and runs when a reporter sees at least a part's worth of rows pending;
- a *flush* (``flush=True``) also writes the remainder as a short last part; it runs when
  the run's count of committed records reaches its expected count, and from the verifier
  for any run past its grace period (a record that went to the DLQ keeps the count short).

The parts stay fenced (``IfMatch``/``IfNoneMatch``, see :mod:`pipeline.csv_store`) and
deduplicated on the record key across segments and parts. A segment is deleted only once
every one of its records is in a part, so a crash anywhere leaves it for the next
compaction, which skips what is already there.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.aws import error_code
from pipeline.csv_store import CsvRow, FencedCsvStore, WriteResult, csv_rows
from pipeline.layout import segment_prefix
from pipeline.lock import LockNotAcquired, LockStats, S3Lock
from pipeline.record import key_digest
from pipeline.settings import LockSettings
from pipeline.telemetry import LogField

DELETE_BATCH = 1000  # DeleteObjects' limit


@dataclass
class CompactionResult:
    segments: int = 0
    segments_deleted: int = 0
    delete_errors: list[str] = field(default_factory=list)
    write: WriteResult = field(default_factory=WriteResult)

    @property
    def written(self) -> int:
        return self.write.written


def pending_segments(s3: Any, bucket: str, account_id: str, run_id: str) -> list[str]:
    """Segment keys, oldest first, so that parts keep roughly the order records arrived in."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=segment_prefix(account_id, run_id))
    objects = [o for page in pages for o in page.get("Contents", [])]
    return [o["Key"] for o in sorted(objects, key=lambda o: (o["LastModified"], o["Key"]))]


def compact(store: FencedCsvStore, *, flush: bool) -> CompactionResult:
    """Call while holding the lock on ``store.lock_target``."""
    s3, bucket = store.s3, store.bucket
    keys = pending_segments(s3, bucket, store.account_id, store.run_id)
    result = CompactionResult(segments=len(keys))
    if not keys:
        return result
    rows: dict[str, list[CsvRow]] = {
        key: csv_rows(s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()) for key in keys
    }
    result.write = store.write([row for segment in rows.values() for row in segment], complete_parts_only=not flush)
    folded = [key for key, segment in rows.items() if all(key_digest(r.key) in result.write.present for r in segment)]
    for i in range(0, len(folded), DELETE_BATCH):
        chunk = folded[i : i + DELETE_BATCH]
        try:
            response = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True})
        except (ClientError, BotoCoreError) as exc:
            result.delete_errors.append(error_code(exc))
            continue
        # A segment left behind is compacted again later and adds nothing: its rows are in the parts.
        errors = response.get("Errors", [])
        result.delete_errors += [e.get("Code", "?") for e in errors]
        result.segments_deleted += len(chunk) - len(errors)
    return result


def compact_under_lock(
    store: FencedCsvStore, lock_settings: LockSettings, *, flush: bool, owner: str, logger: Any, lock_stats: LockStats
) -> CompactionResult | None:
    """Compact while holding the run's lock; None if the lock was busy.

    A fill compaction tries the lock once: if another writer holds it, that writer is
    compacting already. A flush waits for the lock as a write used to, because it is the
    run's last chance before the verifier's.
    """
    settings = lock_settings if flush else replace(lock_settings, max_attempts=1)
    lock = S3Lock(
        store.s3,
        store.bucket,
        store.lock_target,
        settings,
        owner=owner,
        logger=logger,
        stats=lock_stats,
        optional=not flush,
    )
    try:
        with lock.held():
            result = compact(store, flush=flush)
    except LockNotAcquired:
        if flush:
            logger.warning(
                "final compaction could not get the lock; the verifier's flush will fold the rest",
                extra={LogField.RUN_ID: store.run_id},
            )
        return None
    logger.info(
        "segments compacted",
        extra={
            LogField.RUN_ID: store.run_id,
            LogField.FLUSH: flush,
            LogField.SEGMENTS: result.segments,
            LogField.WRITTEN: result.written,
            LogField.DUPLICATES: result.write.duplicates,
            LogField.CONFLICTS: result.write.conflicts,
            LogField.WRITE_MS: round(sum(result.write.write_ms), 1),
            LogField.OBJECT_KEY: result.write.objects[-1] if result.write.objects else None,
            "segments_deleted": result.segments_deleted,
            LogField.ERROR_CODE: result.delete_errors[0] if result.delete_errors else None,
        },
    )
    return result
