"""Publish policy records to SNS with PublishBatch, never dropping one silently.

- Up to 10 entries per call (the API maximum) and at most 256 KiB per call in total, which
  SNS enforces for the whole batch as well as for each message.
- A record whose message would exceed 256 KiB has its document stored in S3 and travels
  as a reference (``policy.document_ref``); the reporter reads it back.
- Whole-request errors (throttling, 5xx) are retried by botocore's adaptive retry mode.
  Entries that SNS returns in ``Failed`` are re-published with botocore's exponential
  backoff; sender faults are not retryable and are counted and reported at once.
- Whatever is still unpublished at the end raises :class:`PublishIncomplete` with the count,
  so the collector invocation fails loudly and the Errors alarm fires.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from botocore.retries.standard import ExponentialBackoff, RetryContext

from pipeline.layout import oversize_key
from pipeline.record import PolicyRecord
from pipeline.spec import SNS_BATCH_ENTRIES, SNS_MESSAGE_LIMIT_BYTES, DeploymentSpec
from pipeline.telemetry import LogField, MetricName, emit_counts


class PublishIncomplete(RuntimeError):
    """Some records could not be published; the message says how many and why."""


@dataclass
class PublishResult:
    published: int = 0
    calls: int = 0
    failed_entries: int = 0
    republished: int = 0
    offloaded: int = 0
    given_up: list[str] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)  # entry id -> why its last attempt failed


def _attribute(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


def entry_size(entry: dict[str, Any]) -> int:
    """Bytes SNS counts toward its limits: the message plus every attribute's name, type and value."""
    size = len(entry["Message"].encode())
    for name, attr in entry.get("MessageAttributes", {}).items():
        size += len(name.encode()) + len(attr["DataType"].encode()) + len(attr["StringValue"].encode())
    return size


def pack_batches(entries: list[dict[str, Any]], limit: int = SNS_MESSAGE_LIMIT_BYTES) -> list[list[dict[str, Any]]]:
    batches: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    current_size = 0
    for entry in entries:
        size = entry_size(entry)
        if current and (len(current) == SNS_BATCH_ENTRIES or current_size + size > limit):
            batches.append(current)
            current, current_size = [], 0
        current.append(entry)
        current_size += size
    if current:
        batches.append(current)
    return batches


class BatchPublisher:
    def __init__(
        self,
        sns: Any,
        topic_arn: str,
        *,
        s3: Any = None,
        bucket: str | None = None,
        max_attempts: int = DeploymentSpec.publish_max_attempts,
        logger: Any = None,
        metrics: Any = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.sns, self.topic_arn, self.s3, self.bucket = sns, topic_arn, s3, bucket
        self.max_attempts, self.logger, self.metrics, self._sleep = max_attempts, logger, metrics, sleep
        self._backoff = ExponentialBackoff(max_backoff=20)

    def publish(self, records: list[PolicyRecord]) -> PublishResult:
        result = PublishResult()
        entries = {}
        for record in records:
            entry = self._entry(record, result)
            if entry is not None:
                entries[entry["Id"]] = entry
        pending = list(entries.values())
        for attempt in range(1, self.max_attempts + 1):
            retry = self._publish_round(pending, result, attempt)
            if not retry:
                break
            if attempt == self.max_attempts:
                result.given_up += [e["Id"] for e in retry]
                break
            result.republished += len(retry)
            self._sleep(self._backoff.delay_amount(RetryContext(attempt_number=attempt)))
            pending = retry
        self._publish_metrics(result)
        return result

    def _publish_metrics(self, result: PublishResult) -> None:
        if self.metrics is not None:
            emit_counts(
                self.metrics,
                (
                    (MetricName.MESSAGES_PUBLISHED, result.published),
                    (MetricName.PUBLISH_FAILED_ENTRIES, result.failed_entries),
                    (MetricName.PUBLISH_RETRIES, result.republished),
                    (MetricName.PUBLISH_GIVEN_UP, len(result.given_up)),
                    (MetricName.OVERSIZE_OFFLOADED, result.offloaded),
                ),
            )

    def _publish_round(self, pending: list[dict[str, Any]], result: PublishResult, attempt: int) -> list[dict]:
        retry = []
        for batch in pack_batches(pending):
            by_id = {e["Id"]: e for e in batch}
            resp = self.sns.publish_batch(TopicArn=self.topic_arn, PublishBatchRequestEntries=batch)
            result.calls += 1
            result.published += len(resp.get("Successful", []))
            for failed in resp.get("Failed", []):
                result.failed_entries += 1
                result.reasons[failed["Id"]] = f"{failed.get('Code')}: {failed.get('Message')} (attempt {attempt})"
                self._log_failure(failed, attempt)
                if failed.get("SenderFault"):
                    result.given_up.append(failed["Id"])
                else:
                    retry.append(by_id[failed["Id"]])
        return retry

    def _entry(self, record: PolicyRecord, result: PublishResult) -> dict[str, Any] | None:
        entry = self.make_entry(record)
        if entry_size(entry) <= SNS_MESSAGE_LIMIT_BYTES:
            return entry
        if self.s3 is None or not self.bucket:
            result.given_up.append(entry["Id"])
            result.reasons[entry["Id"]] = f"message over the SNS limit ({entry_size(entry)} bytes) and no bucket"
            self._log_oversize(record, entry_size(entry), offloaded=False)
            return None
        key = oversize_key(record.run_id, record.seq)
        body = json.dumps(record.document, separators=(",", ":")).encode()
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json")
        result.offloaded += 1
        self._log_oversize(record, entry_size(entry), offloaded=True)
        return self.make_entry(replace(record, document=None, document_ref=key))

    @staticmethod
    def make_entry(record: PolicyRecord) -> dict[str, Any]:
        return {
            "Id": str(record.seq),
            "Message": record.to_json(),
            "MessageAttributes": {"run_id": _attribute(record.run_id), "trace_id": _attribute(record.trace_id)},
        }

    def _log_failure(self, failed: dict[str, Any], attempt: int) -> None:
        if self.logger is not None:
            self.logger.warning(
                "publish entry failed",
                extra={
                    LogField.ERROR_CODE: failed.get("Code"),
                    LogField.ATTEMPT: attempt,
                    "entry_id": failed.get("Id"),
                    "sender_fault": failed.get("SenderFault"),
                    "detail": failed.get("Message"),
                },
            )

    def _log_oversize(self, record: PolicyRecord, size: int, *, offloaded: bool) -> None:
        if self.logger is not None:
            level = self.logger.info if offloaded else self.logger.error
            level(
                "message over the SNS limit; document stored in S3" if offloaded else "message over the SNS limit",
                extra={LogField.TRACE_ID: record.trace_id, "bytes": size, "limit": SNS_MESSAGE_LIMIT_BYTES},
            )
