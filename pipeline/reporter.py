"""Reporter Lambda: SQS batch in, CSV rows out, exactly once per record.

Each SQS record is parsed on its own by Powertools' BatchProcessor, so one malformed
message becomes one ``batchItemFailures`` entry and never fails the others. The valid
records are then written per (account, run) in one locked, fenced append. If a write
cannot complete (lock busy for every attempt, or conditional writes keep losing), its
records are reported as failures too and SQS redelivers them; after maxReceiveCount they
land in the DLQ, where they are counted and alarmed. Nothing is dropped.

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
from pipeline.csv_store import FencedCsvStore, SeedCsvStore, WriteConflictError
from pipeline.lock import LockNotAcquired, LockStats, S3Lock
from pipeline.record import PolicyRecord, parse_message
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
) -> None:
    s3 = aws.client("s3")
    if settings.output_mode == OUTPUT_MODE_SEED:
        result = SeedCsvStore(s3, settings.bucket, account_id, run_id).write(records)
    else:
        store = FencedCsvStore(s3, settings.bucket, account_id, run_id, settings.max_rows_per_file)
        lock = S3Lock(
            s3, settings.bucket, store.lock_target, settings.lock, owner=owner, logger=logger, stats=lock_stats
        )
        with lock.held():
            result = store.write(records)
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
    run_store.add_written(aws.client("dynamodb"), table=settings.run_table, run_id=run_id, count=result.written)


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
        try:
            _write_group(settings, account_id, run_id, [p for p, _ in members], owner, lock_stats)
        except (LockNotAcquired, WriteConflictError) as exc:
            logger.warning(str(exc), extra={LogField.RUN_ID: run_id, LogField.ERROR_CODE: type(exc).__name__})
            failures += [{"itemIdentifier": message_id} for _, message_id in members]
        except Exception:
            logger.exception("write failed; records returned to the queue", extra={LogField.RUN_ID: run_id})
            failures += [{"itemIdentifier": message_id} for _, message_id in members]
    if settings.output_mode != OUTPUT_MODE_SEED:
        lock_stats.publish(metrics)
    metrics.add_metric(name=MetricName.RECORDS_FAILED, unit="Count", value=len(failures))
    metrics.add_metric(name=MetricName.SDK_RETRIES, unit="Count", value=aws.take_sdk_retries())
    return {"batchItemFailures": failures}
