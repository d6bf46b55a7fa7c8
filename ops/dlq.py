"""``cidb dlq show`` and ``cidb dlq redrive``: what the DLQ holds and why, and moving it back safely.

Redrive never loses a message: on the manual path a message is deleted from the DLQ only after
``SendMessageBatch`` confirmed it (its entry is not in ``Failed``). Messages that are no record
(poison) stay in the DLQ unless asked: sent back, they would only fail again. SQS's own
``StartMessageMoveTask`` is used where the endpoint has it and nothing needs filtering.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from ops.alarms import AlarmState, alarms_not_ok, firing
from ops.errors import OpsError, aws_errors
from ops.target import Target
from pipeline.dlq_messages import DecodedMessage, decode_message, group_by_error, peek_messages

# Alarms that only say the DLQ holds something, or that a run is short: they fire *because* of the
# DLQ, so they never block a redrive. Any other alarm in ALARM may be the cause still at work.
_CONSEQUENCES = ("-dlq-depth-", "-data-loss-", "-pipeline-unhealthy-")
NOT_IMPLEMENTED = {"UnsupportedOperation", "NotImplemented", "InvalidAction", "501", "InvalidParameterValue"}
HOLD_SECONDS = 60


@dataclass(frozen=True)
class DlqReport:
    messages: list[DecodedMessage]

    @property
    def groups(self) -> list[tuple[str, int | None, int]]:
        return group_by_error(self.messages)

    def runs(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for message in self.messages:
            run = message.record.run_id if message.record else "(no record)"
            counts[run] = counts.get(run, 0) + 1
        return counts


@dataclass
class RedriveResult:
    method: str
    planned: int
    moved: int = 0
    left_poison: int = 0
    failed_sends: list[str] = field(default_factory=list)  # message ids that stay in the DLQ
    dry_run: bool = False
    task_handle: str | None = None


def show(target: Target, limit: int | None = None) -> DlqReport:
    with aws_errors(f"DLQ {target.outputs.dlq_name} at {target.where}"):
        return DlqReport(peek_messages(target.client("sqs"), target.outputs.dlq_url, limit=limit))


def blocking_alarms(target: Target) -> list[AlarmState]:
    """Alarms still firing that may be the DLQ's cause: redriving now would only fill it again."""
    return [a for a in firing(alarms_not_ok(target)) if not any(part in a.name for part in _CONSEQUENCES)]


def redrive(
    target: Target,
    *,
    dry_run: bool = False,
    rate: int = 10,
    force: bool = False,
    include_poison: bool = False,
    progress: Callable[[int], None] = lambda moved: None,
) -> RedriveResult:
    """Move the DLQ back to the queue at ``rate`` messages per second."""
    if rate < 1:
        raise OpsError(f"--rate {rate}: give at least 1 message per second")
    if not force and (blocking := blocking_alarms(target)):
        names = ", ".join(a.name for a in blocking)
        raise OpsError(f"not redriving while {names} is firing: the cause may still be there. Fix it, or --force")
    report = show(target)
    poison = [m for m in report.messages if m.record is None]
    movable = report.messages if include_poison else [m for m in report.messages if m.record is not None]
    method = "StartMessageMoveTask" if include_poison or not poison else "receive-send-delete"
    result = RedriveResult(method, planned=len(movable), left_poison=0 if include_poison else len(poison))
    if dry_run or not movable:
        result.dry_run = dry_run
        return result
    if method == "StartMessageMoveTask":
        handle = _start_move_task(target, rate)
        if handle is not None:
            result.task_handle = handle
            return result
        result.method = "receive-send-delete"  # the endpoint has no move tasks
    _move_by_hand(target, result, rate=rate, include_poison=include_poison, progress=progress)
    return result


def _start_move_task(target: Target, rate: int) -> str | None:
    sqs = target.client("sqs")
    with aws_errors(f"SQS at {target.where}"):
        try:
            response = sqs.start_message_move_task(
                SourceArn=target.outputs.dlq_arn,
                DestinationArn=target.outputs.queue_arn,
                MaxNumberOfMessagesPerSecond=rate,
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in NOT_IMPLEMENTED:
                return None
            raise
    return str(response["TaskHandle"])


def _move_by_hand(
    target: Target, result: RedriveResult, *, rate: int, include_poison: bool, progress: Callable[[int], None]
) -> None:
    sqs, outputs = target.client("sqs"), target.outputs
    held: list[dict[str, Any]] = []  # poison kept invisible until the end, so that each receive brings new ones
    with aws_errors(f"SQS at {target.where}"):
        try:
            while True:
                started = time.monotonic()
                got = sqs.receive_message(
                    QueueUrl=outputs.dlq_url,
                    MaxNumberOfMessages=min(10, rate),
                    VisibilityTimeout=HOLD_SECONDS,
                    AttributeNames=["ApproximateReceiveCount"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
                if not got:
                    return
                chosen = [m for m in got if include_poison or decode_message(m).record is not None]
                held += [m for m in got if m not in chosen]
                held += _send_then_delete(sqs, outputs.queue_url, outputs.dlq_url, chosen, result)
                progress(result.moved)
                time.sleep(max(0.0, len(chosen) / rate - (time.monotonic() - started)))  # the rate limit
        finally:
            _release(sqs, outputs.dlq_url, held)


def _send_then_delete(
    sqs: Any, queue_url: str, dlq_url: str, messages: list[dict[str, Any]], result: RedriveResult
) -> list[dict[str, Any]]:
    """Send, then delete what SQS confirmed; returns the messages that stay in the DLQ (held until the end)."""
    if not messages:
        return []
    by_id = {str(n): m for n, m in enumerate(messages)}
    sent = sqs.send_message_batch(
        QueueUrl=queue_url,
        Entries=[
            {
                "Id": n,
                "MessageBody": m["Body"],
                **({"MessageAttributes": m["MessageAttributes"]} if m.get("MessageAttributes") else {}),
            }
            for n, m in by_id.items()
        ],
    )
    failed = {f["Id"] for f in sent.get("Failed", [])}
    result.failed_sends += [by_id[n]["MessageId"] for n in sorted(failed)]
    confirmed = [s["Id"] for s in sent.get("Successful", [])]
    if not confirmed:
        return [by_id[n] for n in sorted(failed)]
    deleted = sqs.delete_message_batch(
        QueueUrl=dlq_url, Entries=[{"Id": n, "ReceiptHandle": by_id[n]["ReceiptHandle"]} for n in confirmed]
    )
    result.moved += len(deleted.get("Successful", []))
    # A delete that failed leaves a copy in the DLQ too: a duplicate, never a loss; the reporter drops it.
    result.failed_sends += [f"{by_id[f['Id']]['MessageId']} (sent, not deleted)" for f in deleted.get("Failed", [])]
    return [by_id[n] for n in sorted(failed)]


def _release(sqs: Any, queue_url: str, messages: list[dict[str, Any]]) -> None:
    for start in range(0, len(messages), 10):
        batch = messages[start : start + 10]
        sqs.change_message_visibility_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0} for n, m in enumerate(batch)
            ],
        )
