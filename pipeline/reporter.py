"""Reporter Lambda: SQS batch in, CSV rows out, exactly once per record.

Each SQS record is parsed on its own by Powertools' BatchProcessor, so one malformed
message becomes one ``batchItemFailures`` entry and never fails the others. The valid
records are then written per (account, run) in one locked, fenced append. If a write
cannot complete (lock busy for every attempt, or conditional writes keep losing), its
records are reported as failures too and SQS redelivers them; after maxReceiveCount they
land in the DLQ, where they are counted and alarmed. Nothing is dropped.

The part write is the commit point. A record that reached a part is a success, whatever
happens afterwards: the lock release, the index write and the run record's count are
logged and counted when they fail, but never send committed records back to the queue
(that would put a record in the output and, after its receives, in the DLQ as well).

Environment variables: CIDB_BUCKET, CIDB_RUN_TABLE, CIDB_OUTPUT_MODE, MAX_ROWS_PER_FILE,
LOCK_TIMEOUT_SECONDS, LOCK_MAX_ATTEMPTS, LOCK_BASE_BACKOFF_SECONDS, LOCK_JITTER_FACTOR.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline import aws, run_store
from pipeline.csv_store import FencedCsvStore, SeedCsvStore, WriteIncompleteError, WriteResult
from pipeline.lock import LockNotAcquired, LockStats, S3Lock
from pipeline.record import PolicyRecord, key_digest, parse_message
from pipeline.settings import OUTPUT_MODE_SEED, Settings, load_settings
from pipeline.telemetry import LogField, MetricName, make_logger, make_metrics

logger = make_logger()
metrics = make_metrics()
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False, logger=logger)


def _parse(record: SQSRecord) -> PolicyRecord:
    """Record handler for BatchProcessor: a bad message raises and fails only itself."""
    parsed = parse_message(record.body)
    if parsed.document is None and parsed.document_ref:
        settings = load_settings(need_bucket=True, need_topic=False)
        body = aws.client("s3").get_object(Bucket=settings.bucket, Key=parsed.document_ref)["Body"].read()
        parsed = PolicyRecord(**{**parsed.__dict__, "document": json.loads(body)})
    logger.info(
        "record received",
        extra={LogField.RUN_ID: parsed.run_id, LogField.TRACE_ID: parsed.trace_id, "seq": parsed.seq},
    )
    return parsed


def _write_group(
    settings: Settings, account_id: str, run_id: str, records: list[PolicyRecord], owner: str, lock_stats: LockStats
) -> WriteResult:
    """Append the group under the lock; raises only before a record committed (or with the committed set)."""
    s3 = aws.client("s3")
    if settings.output_mode == OUTPUT_MODE_SEED:
        return SeedCsvStore(s3, settings.bucket, account_id, run_id).write(records)
    store = FencedCsvStore(s3, settings.bucket, account_id, run_id, settings.max_rows_per_file)
    lock = S3Lock(s3, settings.bucket, store.lock_target, settings.lock, owner=owner, logger=logger, stats=lock_stats)
    with lock.held():  # the release never raises, so it cannot undo the commit
        return store.write(records)


def _after_commit(settings: Settings, run_id: str, records: list[PolicyRecord], result: WriteResult) -> None:
    """Telemetry and the run record's count: best effort, because the rows are already in S3."""
    if result.index_error:
        logger.warning(
            "index write failed after the parts committed; the next writer rebuilds it",
            extra={LogField.RUN_ID: run_id, LogField.ERROR_CODE: result.index_error},
        )
    for ms in result.write_ms:
        metrics.add_metric(name=MetricName.S3_WRITE_MS, unit="Milliseconds", value=ms)
    metrics.add_metric(name=MetricName.RECORDS_WRITTEN, unit="Count", value=result.written)
    metrics.add_metric(name=MetricName.DUPLICATES_DROPPED, unit="Count", value=result.duplicates)
    metrics.add_metric(name=MetricName.WRITE_CONFLICTS, unit="Count", value=result.conflicts)
    logger.info(
        "rows written",
        extra={
            LogField.RUN_ID: run_id,
            LogField.RECORDS: len(records),
            LogField.WRITTEN: result.written,
            LogField.DUPLICATES: result.duplicates,
            LogField.WRITE_MS: round(sum(result.write_ms), 1),
            LogField.OBJECT_KEY: result.objects[-1] if result.objects else None,
            LogField.CONFLICTS: result.conflicts,
        },
    )
    try:
        run_store.add_written(aws.client("dynamodb"), table=settings.run_table, run_id=run_id, count=result.written)
    except Exception as exc:
        # Only the live progress count misses these rows; the verifier reconciles from S3 itself.
        logger.warning(
            "run record not updated after the rows committed",
            extra={LogField.RUN_ID: run_id, LogField.ERROR_CODE: aws.error_code(exc)},
        )


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = load_settings(need_bucket=True, need_topic=False)
    if settings.output_mode != OUTPUT_MODE_SEED:
        aws.require_conditional_writes()
    records = event.get("Records", [])
    metrics.add_metric(name=MetricName.RECORDS_RECEIVED, unit="Count", value=len(records))
    metrics.add_metadata(key="request_id", value=context.aws_request_id)
    with processor(records=records, handler=_parse):
        outcomes = processor.process()
    failures = list(processor.response()["batchItemFailures"])

    groups: dict[tuple[str, str], list[tuple[PolicyRecord, str]]] = defaultdict(list)
    for status, parsed, record in outcomes:
        if status == "success":
            groups[(parsed.account_id, parsed.run_id)].append((parsed, record["messageId"]))
    owner = f"{context.function_name}/{context.aws_request_id}"
    lock_stats = LockStats()
    for (account_id, run_id), members in groups.items():
        records = [p for p, _ in members]
        try:
            result = _write_group(settings, account_id, run_id, records, owner, lock_stats)
        except LockNotAcquired as exc:
            logger.warning(str(exc), extra={LogField.RUN_ID: run_id, LogField.ERROR_CODE: type(exc).__name__})
            failures += [{"itemIdentifier": message_id} for _, message_id in members]
            continue
        except WriteIncompleteError as exc:
            returned = [m for p, m in members if key_digest(p.key) not in exc.committed]
            logger.warning(
                f"write stopped part-way; {len(returned)} uncommitted records returned to the queue: {exc}",
                extra={
                    LogField.RUN_ID: run_id,
                    LogField.ERROR_CODE: type(exc).__name__,
                    LogField.COMMITTED: len(members) - len(returned),
                },
            )
            failures += [{"itemIdentifier": message_id} for message_id in returned]
            if exc.committed:
                kept = [p for p in records if key_digest(p.key) in exc.committed]
                _after_commit(settings, run_id, kept, WriteResult(written=len(kept)))
            continue
        except Exception:
            logger.exception("write failed; records returned to the queue", extra={LogField.RUN_ID: run_id})
            failures += [{"itemIdentifier": message_id} for _, message_id in members]
            continue
        _after_commit(settings, run_id, records, result)
    if settings.output_mode != OUTPUT_MODE_SEED:
        lock_stats.publish(metrics)
    metrics.add_metric(name=MetricName.RECORDS_FAILED, unit="Count", value=len(failures))
    metrics.add_metric(name=MetricName.SDK_RETRIES, unit="Count", value=aws.take_sdk_retries())
    return {"batchItemFailures": failures}
