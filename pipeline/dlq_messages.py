"""Reading and decoding the DLQ without consuming it: one implementation for every reader.

The load test's reconciliation, ``cidb dlq show``/``verify`` and the alarm notifier all need the
same answer to "what is in the DLQ, and why": a record (its key, run, seq and trace id) or a
body that is no record (with the parser's error, naming the field). A message that parses as a
record failed in the reporter for another reason; its error is in the reporter's log lines, found
by its message id (the ``reporter-errors`` query).

Example::

    >>> decoded = decode_message({"MessageId": "m-1", "Body": "not json", "Attributes": {}})
    >>> decoded.error
    'message body is not JSON: Expecting value at position 0'
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pipeline.record import PolicyRecord, RecordClaim, RecordError, claim_of, parse_message

__all__ = ["RECORD_FAILED_ELSEWHERE", "DecodedMessage", "decode_message", "group_by_error", "peek_messages"]

FIRST_BYTES = 120
RECORD_FAILED_ELSEWHERE = "valid record; the reporter's error is in its log lines (query reporter-errors)"
_ATTRIBUTES = ["ApproximateReceiveCount", "SentTimestamp", "ApproximateFirstReceiveTimestamp"]


@dataclass(frozen=True)
class DecodedMessage:
    message_id: str
    receive_count: int | None
    sent_at: datetime | None
    record: PolicyRecord | None
    error: str | None  # why the body is no record; None for a valid record
    first_bytes: str
    claim: RecordClaim | None = None  # for an invalid body: the record it names, if its key fields are intact

    @property
    def key(self) -> str | None:
        return self.record.key if self.record else None

    @property
    def cause(self) -> str:
        """The error to group by: the parser's, or where a valid record's error is to be found."""
        return self.error or RECORD_FAILED_ELSEWHERE

    def to_dict(self) -> dict[str, Any]:
        record = self.record
        return {
            "message_id": self.message_id,
            "receive_count": self.receive_count,
            "sent_at": self.sent_at.isoformat() if self.sent_at else None,
            "error": self.error,
            "first_bytes": self.first_bytes,
            "record_key": record.key if record else None,
            "run_id": record.run_id if record else None,
            "seq": record.seq if record else None,
            "trace_id": record.trace_id if record else None,
            "claimed_key": self.claim.key if self.claim else None,
            "claimed_trace_id": self.claim.trace_id if self.claim else None,
        }


def decode_message(message: dict[str, Any], *, own_receives: int = 0) -> DecodedMessage:
    """One SQS message as returned by ReceiveMessage; ``own_receives`` is subtracted from its count."""
    attributes = message.get("Attributes", {})
    raw_count = attributes.get("ApproximateReceiveCount")
    sent = attributes.get("SentTimestamp")
    body = message["Body"]
    try:
        record, error = parse_message(body), None
    except RecordError as exc:
        record, error = None, str(exc)
    return DecodedMessage(
        message_id=message["MessageId"],
        receive_count=int(raw_count) - own_receives if raw_count is not None else None,
        sent_at=datetime.fromtimestamp(int(sent) / 1000, UTC) if sent else None,
        record=record,
        error=error,
        first_bytes=body[:FIRST_BYTES],
        claim=claim_of(body) if record is None else None,
    )


def peek_messages(
    sqs: Any, queue_url: str, *, limit: int | None = None, wait_seconds: int = 0, hold_seconds: int = 60
) -> list[DecodedMessage]:
    """Receive every message (or ``limit``), then make each visible again at once.

    Holding them for ``hold_seconds`` while reading keeps one message from being counted twice.
    Each read adds one to a message's receive count; the count shown excludes it. The
    ``Failed`` list of the visibility reset is checked: a message left invisible is named.
    """
    decoded: list[DecodedMessage] = []
    handles: list[str] = []
    while limit is None or len(decoded) < limit:
        want = 10 if limit is None else min(10, limit - len(decoded))
        got = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=want,
            VisibilityTimeout=hold_seconds,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=_ATTRIBUTES,
        ).get("Messages", [])
        if not got:
            break
        for message in got:
            handles.append(message["ReceiptHandle"])
            decoded.append(decode_message(message, own_receives=1))
    _make_visible(sqs, queue_url, handles)
    return decoded


def group_by_error(messages: list[DecodedMessage]) -> list[tuple[str, int | None, int]]:
    """(error, receive count, messages), the largest group first."""
    counts = Counter((m.cause, m.receive_count) for m in messages)
    return [(cause, receives, n) for (cause, receives), n in counts.most_common()]


def _make_visible(sqs: Any, queue_url: str, handles: list[str]) -> None:
    for start in range(0, len(handles), 10):
        batch = handles[start : start + 10]
        entries = [{"Id": str(n), "ReceiptHandle": h, "VisibilityTimeout": 0} for n, h in enumerate(batch)]
        failed = sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries).get("Failed", [])
        if failed:
            codes = sorted({f.get("Code", "?") for f in failed})
            raise RuntimeError(
                f"{len(failed)} message(s) of {queue_url} stay invisible for up to the hold time "
                f"after reading them: ChangeMessageVisibilityBatch failed with {codes}"
            )
