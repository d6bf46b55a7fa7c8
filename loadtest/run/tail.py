"""The end of a run on either target: read back the output and the queues, and reconcile them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ops.outputs import StackOutputs
from ops.reconcile import (
    Reconciliation,
    download_output,
    keys_of_bodies,
    read_queue,
    reconcile,
    wait_until_visible,
)


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
) -> tuple[Reconciliation, int]:
    """The run's reconciliation, and how many messages stayed invisible with keys unknown.

    With the consumers stopped (the local target), whatever is still in the main queue was
    queued, not lost, and messages of a run cut off by its deadline get a short while to come
    back from their retry visibility. A deployed queue is never read: that would take messages
    from the deployed reporter. ``unsettled_bodies`` are the messages whose delete or release
    SQS refused: in flight, not lost.
    """
    files = download_output(s3, outputs.bucket_name, account_id, run_id, out_dir)
    dlq = read_queue(sqs, outputs.dlq_url)
    queued_keys: list[str] = []
    invisible = 0
    if consumers_stopped:
        invisible = wait_until_visible(sqs, outputs.queue_url, wait_visible_seconds) if timed_out else 0
        queued_keys = read_queue(sqs, outputs.queue_url).keys
    in_flight = keys_of_bodies(unsettled_bodies or {})
    return reconcile(expected_keys, files, dlq, queued_keys, in_flight.keys), invisible
