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

Environment variables: see :mod:`pipeline.settings`.
"""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline import aws, run_store
from pipeline.compaction import compact_under_lock
from pipeline.csv_store import FencedCsvStore, SeedCsvStore
from pipeline.env import OUTPUT_MODE_SEED
from pipeline.lock import LockStats
from pipeline.record import PolicyRecord, RecordError, claim_of, parse_message
from pipeline.segments import SegmentResult, write_segment
from pipeline.settings import Settings, load_settings
from pipeline.telemetry import LogField, MetricName, make_logger, make_metrics, report_sdk_retries

WRITE_FAILED = "write failed; records returned to the queue"
logger = make_logger()
metrics = make_metrics()
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False, logger=logger)
# Message ids of this invocation's malformed messages: no retry can mend them, so they go back at once.
_malformed: set[str] = set()


def _parse(record: SQSRecord) -> PolicyRecord:
    """Record handler for BatchProcessor: a bad message raises and fails only itself."""
    try:
        parsed = parse_message(record.body)
    except RecordError as exc:
        _malformed.add(record.message_id)
        claim = claim_of(record.body)
        logger.warning(
            f"malformed message; it fails alone and reaches the DLQ after maxReceiveCount receives: {exc}",
            extra={
                LogField.MESSAGE_ID: record.message_id,
                LogField.RECEIVE_COUNT: int(record.attributes.approximate_receive_count),
                LogField.TRACE_ID: claim.trace_id if claim else None,
            },
        )
        raise
    if parsed.document is None and parsed.document_ref:
        settings = load_settings(need_bucket=True, need_topic=False)
        body = aws.client("s3").get_object(Bucket=settings.bucket, Key=parsed.document_ref)["Body"].read()
        parsed = PolicyRecord(**{**parsed.__dict__, "document": json.loads(body)})
    logger.info(
        "record received",
        extra={LogField.RUN_ID: parsed.run_id, LogField.TRACE_ID: parsed.trace_id, "seq": parsed.seq},
    )
    return parsed


def _commit_group(
    settings: Settings, account_id: str, run_id: str, records: list[PolicyRecord], writer: str
) -> SegmentResult:
    """The commit point: one immutable segment, no lock. Raises only if nothing was committed."""
    result = write_segment(aws.client("s3"), settings.bucket, account_id, run_id, records, writer=writer)
    metrics.add_metric(name=MetricName.S3_WRITE_MS, unit="Milliseconds", value=result.write_ms)
    metrics.add_metric(name=MetricName.RECORDS_WRITTEN, unit="Count", value=result.written)
    metrics.add_metric(name=MetricName.DUPLICATES_DROPPED, unit="Count", value=len(records) - result.written)
    logger.info(
        "rows committed",
        extra={
            LogField.RUN_ID: run_id,
            LogField.RECORDS: len(records),
            LogField.WRITTEN: result.written,
            LogField.DUPLICATES: len(records) - result.written,
            LogField.WRITE_MS: round(result.write_ms, 1),
            LogField.SEGMENT_KEY: result.key,
        },
    )
    return result


def _compact_if_due(
    settings: Settings, account_id: str, run_id: str, committed: int, owner: str, lock_stats: LockStats
) -> bool:
    """After the commit: fold segments into parts each time the run commits another part's worth, or flush at its end.

    Only the batch whose count crosses a multiple of a part's rows tries the lock, so
    reporters rarely meet there; if that try finds the lock busy, the next crossing (or the
    flush) folds the rows it left. Returns False if the compaction failed (``CompactionFailed``).

    Best effort: the records are committed already, and whatever is not compacted now is
    compacted by a later batch or by the verifier's flush.
    """
    dynamodb = aws.client("dynamodb")
    try:
        progress = run_store.add_written(dynamodb, table=settings.run_table, run_id=run_id, count=committed)
    except Exception as exc:
        logger.warning(
            f"run record not updated after the rows committed; compacting now instead: {exc}",
            extra={LogField.RUN_ID: run_id, LogField.ERROR_CODE: aws.error_code(exc)},
        )
        progress = None
    # Without a count to go by (no run record, or no answer), flush: correct, only costlier.
    flush = progress is None or progress.expected is None or progress.committed >= progress.expected
    if progress is not None and not flush and not progress.crossed(committed, settings.max_rows_per_file):
        return True
    try:
        store = FencedCsvStore(
            aws.client("s3"), settings.bucket, account_id, run_id, settings.max_rows_per_file, writer=owner
        )
        result = compact_under_lock(
            store, settings.lock, flush=flush, owner=owner, logger=logger, lock_stats=lock_stats
        )
        if result is None:
            return True
        for ms in result.write.write_ms:
            metrics.add_metric(name=MetricName.S3_WRITE_MS, unit="Milliseconds", value=ms)
        metrics.add_metric(name=MetricName.RECORDS_COMPACTED, unit="Count", value=result.written)
        metrics.add_metric(name=MetricName.WRITE_CONFLICTS, unit="Count", value=result.write.conflicts)
        run_store.add_compacted(dynamodb, table=settings.run_table, run_id=run_id, count=result.written)
        return True
    except Exception as exc:
        logger.warning(
            f"compaction failed after the rows committed; a later batch or the verifier compacts them: {exc}",
            extra={LogField.RUN_ID: run_id, LogField.ERROR_CODE: aws.error_code(exc)},
        )
        return False


def _write_seed(settings: Settings, account_id: str, run_id: str, records: list[PolicyRecord], writer: str) -> None:
    """The seed's lossy read-append-overwrite, kept as the contrast the load test measures."""
    result = SeedCsvStore(aws.client("s3"), settings.bucket, account_id, run_id, writer=writer).write(records)
    metrics.add_metric(name=MetricName.RECORDS_WRITTEN, unit="Count", value=result.written)
    run_store.add_written(aws.client("dynamodb"), table=settings.run_table, run_id=run_id, count=result.written)


def _return_later(
    records: list[dict[str, Any]], failed_ids: set[str], settings: Settings, malformed: set[str] = frozenset()
) -> None:
    """Give failed messages a short, growing visibility instead of the queue's whole timeout.

    Lambda leaves a message that the batch response names invisible for the rest of its
    visibility timeout (5430 s in ``tuned``); a retry after seconds is what a transient
    failure needs. The delay doubles with each receive, up to the cap. A malformed message
    goes back at once: waiting mends nothing, and its receives end in the DLQ, where the
    DLQ alarm tells on-call within a minute instead of after the whole backoff.
    """
    failed = [r for r in records if r["messageId"] in failed_ids]
    if not failed:
        return
    entries = [
        {
            "Id": str(n),
            "ReceiptHandle": r["receiptHandle"],
            "VisibilityTimeout": 0
            if r["messageId"] in malformed
            else retry_delay_seconds(settings, int(r["attributes"].get("ApproximateReceiveCount", 1))),
        }
        for n, r in enumerate(failed)
    ]
    try:
        queue_url = _queue_url(failed[0]["eventSourceARN"])
        sqs = aws.client("sqs")
        for i in range(0, len(entries), 10):
            response = sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries[i : i + 10])
            for entry in response.get("Failed", []):
                logger.warning(
                    "could not shorten a failed message's visibility; it retries after the queue's timeout",
                    extra={LogField.ERROR_CODE: entry.get("Code")},
                )
    except Exception as exc:
        logger.warning(
            "could not shorten failed messages' visibility; they retry after the queue's timeout",
            extra={LogField.ERROR_CODE: aws.error_code(exc)},
        )


def _write_group(
    settings: Settings,
    account_id: str,
    run_id: str,
    members: list[tuple[PolicyRecord, str]],
    owner: str,
    lock_stats: LockStats,
    failures: list[dict[str, str]],
) -> bool:
    """Commit one (account, run) group, then compact if due; False only when the compaction failed.

    A group that could not be committed adds its messages to ``failures``, so SQS redelivers them.
    """
    group = [p for p, _ in members]
    try:
        if settings.output_mode == OUTPUT_MODE_SEED:
            _write_seed(settings, account_id, run_id, group, owner)
            return True
        committed = _commit_group(settings, account_id, run_id, group, owner)
    except Exception:
        # The trace ids tie each returned record to this error, for forensics of records that end in the DLQ.
        logger.exception(
            WRITE_FAILED,
            extra={LogField.RUN_ID: run_id, LogField.TRACE_IDS: [p.trace_id for p in group]},
        )
        failures += [{"itemIdentifier": message_id} for _, message_id in members]
        return True
    return _compact_if_due(settings, account_id, run_id, committed.written, owner, lock_stats)


def retry_delay_seconds(settings: Settings, receive_count: int) -> int:
    return int(min(settings.retry_base_seconds * 2 ** max(0, receive_count - 1), settings.retry_max_seconds))


@functools.cache
def _queue_url(queue_arn: str) -> str:
    _, _, _, _, account, name = queue_arn.split(":", 5)
    return aws.client("sqs").get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]


def records_of(event: dict[str, Any]) -> list[dict[str, Any]]:
    return event.get("Records", [])


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = load_settings(need_bucket=True, need_topic=False)
    if settings.output_mode != OUTPUT_MODE_SEED:
        aws.require_conditional_writes()
    records = records_of(event)
    metrics.add_metric(name=MetricName.RECORDS_RECEIVED, unit="Count", value=len(records))
    metrics.add_metadata(key="request_id", value=context.aws_request_id)
    _malformed.clear()
    with processor(records=records, handler=_parse):
        outcomes = processor.process()
    failures = list(processor.response()["batchItemFailures"])

    groups: dict[tuple[str, str], list[tuple[PolicyRecord, str]]] = defaultdict(list)
    for status, parsed, record in outcomes:
        if status == "success":
            groups[(parsed.account_id, parsed.run_id)].append((parsed, record["messageId"]))
    owner = f"{context.function_name}/{context.aws_request_id}"
    lock_stats = LockStats()
    compaction_failures = 0
    for (account_id, run_id), members in groups.items():
        # Every line logged while this group is written (lock events included) names its run, for trace-run.
        logger.append_keys(**{LogField.RUN_ID: run_id})
        try:
            if not _write_group(settings, account_id, run_id, members, owner, lock_stats, failures):
                compaction_failures += 1
        finally:
            logger.remove_keys([LogField.RUN_ID])
    _return_later(records_of(event), {f["itemIdentifier"] for f in failures}, settings, malformed=_malformed)
    if settings.output_mode != OUTPUT_MODE_SEED:
        lock_stats.publish(metrics)
        metrics.add_metric(name=MetricName.COMPACTION_FAILED, unit="Count", value=compaction_failures)
    metrics.add_metric(name=MetricName.RECORDS_FAILED, unit="Count", value=len(failures))
    report_sdk_retries(metrics, logger, aws.take_sdk_retries(), aws.take_retry_errors())
    return {"batchItemFailures": failures}
