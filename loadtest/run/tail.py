"""The end of a run on either target: read back the output and the queues, reconcile them, explain the gaps."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ops.forensics import Forensics, RunEvidence, explain
from ops.outputs import StackOutputs
from ops.reconcile import (
    Reconciliation,
    download_output,
    keys_of_bodies,
    read_queue,
    reconcile,
    wait_until_visible,
)


@dataclass
class RunTail:
    reconciliation: Reconciliation
    invisible: int  # messages that stayed invisible, keys unknown
    forensics: Forensics


def reconcile_run(
    s3: Any,
    sqs: Any,
    outputs: StackOutputs,
    *,
    account_id: str,
    run_id: str,
    expected_keys: list[str],
    out_dir: Path,
    consumers_stopped: bool,
    timed_out: bool,
    wait_visible_seconds: float = 60,
    unsettled_bodies: dict[str, str] | None = None,
    logs: Callable[[], list[dict[str, Any]]] | None = None,
) -> RunTail:
    """The run's reconciliation, how many messages stayed invisible, and why each record is missing.

    With the consumers stopped (the local target), whatever is still in the main queue was
    queued, not lost, and messages of a run cut off by its deadline get a short while to come
    back from their retry visibility. A deployed queue is never read: that would take messages
    from the deployed reporter. ``unsettled_bodies`` are the messages whose delete or release
    SQS refused: in flight, not lost. ``logs`` reads the reporter's log lines, if forensics needs them.
    """
    files = download_output(s3, outputs.bucket_name, account_id, run_id, out_dir)
    dlq = read_queue(sqs, outputs.dlq_url)
    queued_keys: list[str] = []
    invisible, unread = 0, 0
    if not consumers_stopped:
        unread = _queue_depth(sqs, outputs.queue_url)
    else:
        invisible = wait_until_visible(sqs, outputs.queue_url, wait_visible_seconds) if timed_out else 0
        queued_keys = read_queue(sqs, outputs.queue_url).keys
    in_flight = keys_of_bodies(unsettled_bodies or {})
    result = reconcile(expected_keys, files, dlq, queued_keys, in_flight.keys)
    not_in_output = {*result.missing_keys, *result.dlq_keys, *result.queued_keys, *result.in_flight_keys}
    evidence = RunEvidence(
        run_id=run_id,
        account_id=account_id,
        expected=expected_keys,
        s3=s3,
        bucket=outputs.bucket_name,
        dlq=dlq.messages,
        queued=result.queued_keys,
        in_flight=result.in_flight_keys,
        unread_queue_depth=unread,
        logs=logs,
    )
    return RunTail(result, invisible, explain([k for k in expected_keys if k in not_in_output], evidence))


def _queue_depth(sqs: Any, queue_url: str) -> int:
    """Messages a deployed queue still holds, visible or not: read by its counts, never by receiving."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
    return sum(int(attributes.get(name, 0)) for name in names)
