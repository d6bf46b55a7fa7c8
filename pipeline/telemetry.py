"""Metric names and structured-log fields that the handlers emit.

Monitoring, dashboards, saved queries and the load-test report refer to these names;
tests check that every referenced name is really emitted by a run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum

from aws_lambda_powertools import Logger, Metrics


class MetricName(StrEnum):
    """EMF metrics, namespace from ``POWERTOOLS_METRICS_NAMESPACE``, dimension ``service``."""

    # collector
    POLICIES_COLLECTED = "PoliciesCollected"
    MESSAGES_PUBLISHED = "MessagesPublished"
    PUBLISH_FAILED_ENTRIES = "PublishFailedEntries"
    PUBLISH_RETRIES = "PublishRetries"
    PUBLISH_GIVEN_UP = "PublishGivenUp"
    OVERSIZE_OFFLOADED = "OversizeOffloaded"
    SDK_RETRIES = "SdkRetries"
    # reporter
    RECORDS_RECEIVED = "RecordsReceived"
    RECORDS_WRITTEN = "RecordsWritten"
    DUPLICATES_DROPPED = "DuplicatesDropped"
    RECORDS_FAILED = "RecordsFailed"
    LOCK_ACQUIRED = "LockAcquired"
    LOCK_CONTENDED = "LockContended"
    LOCK_WAIT_MS = "LockWaitMs"
    LOCK_STALE_BROKEN = "LockStaleBroken"
    LOCK_ACQUIRE_FAILED = "LockAcquireFailed"
    LOCK_RELEASE_FAILED = "LockReleaseFailed"
    S3_WRITE_MS = "S3WriteMs"
    RECORDS_COMPACTED = "RecordsCompacted"
    COMPACTION_FAILED = "CompactionFailed"
    WRITE_CONFLICTS = "WriteConflicts"
    # verifier (one datapoint per run it reconciles)
    RUN_EXPECTED = "RunExpected"
    RUN_WRITTEN = "RunWritten"
    RUN_SHORTFALL = "RunShortfall"
    RUNS_VERIFIED = "RunsVerified"


class LogField(StrEnum):
    """Keys that structured log lines carry, for Logs Insights queries."""

    RUN_ID = "run_id"
    TRACE_ID = "trace_id"
    TRACE_IDS = "trace_ids"
    LOCK_ID = "lock_id"
    LOCK_KEY = "lock_key"
    LOCK_EVENT = "lock_event"
    WAIT_MS = "wait_ms"
    STALE_AGE_S = "stale_age_s"
    WRITE_MS = "write_ms"
    OBJECT_KEY = "object_key"
    EXPECTED = "expected"
    WRITTEN = "written"
    ATTEMPT = "attempt"
    ERROR_CODE = "error_code"
    MISSING = "missing"
    RECORDS = "records"
    DUPLICATES = "duplicates"
    CONFLICTS = "conflicts"
    PREVIOUS_OWNER = "previous_owner"
    RELEASE_METHOD = "release_method"
    SEGMENT_KEY = "segment_key"
    SEGMENTS = "segments"
    FLUSH = "flush"
    MESSAGE_ID = "message_id"
    RECEIVE_COUNT = "receive_count"
    AWS_SERVICE = "aws_service"
    OPERATION = "operation"
    RETRIES = "retries"


class LockEvent(StrEnum):
    """Values of the ``lock_event`` log field."""

    ACQUIRED = "acquired"
    CONTENDED = "contended"
    STALE_BROKEN = "stale_broken"
    ACQUIRE_FAILED = "acquire_failed"
    RELEASED = "released"
    RELEASE_FAILED = "release_failed"
    SKIPPED = "skipped"


def emit_counts(metrics: Metrics, counts: Iterable[tuple[MetricName, int]]) -> None:
    """Emit counters once per invocation, zeros included, so alarms and graphs see steady data."""
    for name, value in counts:
        metrics.add_metric(name=name, unit="Count", value=value)


def report_sdk_retries(
    metrics: Metrics, logger: Logger, retries: int, retry_errors: Mapping[tuple[str, str, str], int]
) -> None:
    """The SdkRetries metric, plus one log line per (AWS service, operation, error code) that made them.

    The metric says how many; the lines say why (``Throttling`` from IAM, ``SlowDown`` from S3), which the
    ``throttling-retries`` query groups by.
    """
    metrics.add_metric(name=MetricName.SDK_RETRIES, unit="Count", value=retries)
    for (service, operation, code), count in sorted(retry_errors.items()):
        logger.warning(
            "AWS call attempts failed and botocore retried them",
            extra={
                LogField.AWS_SERVICE: service,
                LogField.OPERATION: operation,
                LogField.ERROR_CODE: code,
                LogField.RETRIES: count,
            },
        )


def make_logger() -> Logger:
    """JSON logs; an exception that escapes the handler is logged too, with its type, before the runtime's line."""
    return Logger(use_rfc3339=True, log_uncaught_exceptions=True)


def make_metrics() -> Metrics:
    return Metrics()
