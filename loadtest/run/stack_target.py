"""The stack target: load-test a deployed stack.

Publish synthetic policies to the deployed topic with the collector's own publishing code,
watch the deployed queues and bucket until the run has drained, and reconcile the same way
as the local target. The deployed reporter does the work.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from loadtest.emulator.aws_session import AwsSession
from loadtest.run.observation import Progress, RunObservation, reported_written, wait_until_drained
from loadtest.run.options import LoadTestOptions
from loadtest.run.sampler import QueueSampler
from loadtest.run.seeding import synthetic_records
from loadtest.run.tail import reconcile_run
from ops.log_lines import filter_lines
from ops.outputs import load_outputs
from ops.verify import MAX_LOG_EVENTS
from pipeline import run_store
from pipeline.publish_results import write_publish_results
from pipeline.publisher import BatchPublisher
from pipeline.spec import build_spec


def run_stack(options: LoadTestOptions, report_dir: Path, progress: Progress) -> RunObservation:
    """Publish to a deployed stack and watch it; the deployed reporter does the work."""
    outputs = load_outputs(outputs_file=options.outputs_file, stack=options.stack)
    spec = build_spec(outputs.profile, overrides=options.overrides)
    session = AwsSession(options.endpoint_url, region=outputs.region)
    producer = AwsSession(options.endpoint_url, region=outputs.region)  # counted as the collector's calls
    account_id = session.client("sts").get_caller_identity()["Account"]
    run_id = f"lt-stack-{uuid.uuid4().hex[:8]}"
    records = synthetic_records(options.policies, options.seed, run_id=run_id, account_id=account_id)
    expected_keys = [r.key for r in records]
    sampler = QueueSampler(
        session.client("sqs"), outputs.queue_url, outputs.dlq_url, written=reported_written(session, outputs, run_id)
    )
    started = time.time()
    sampler.start()
    run_store.start_run(
        producer.client("dynamodb"),
        producer.client("s3"),
        table=outputs.run_table_name,
        bucket=outputs.bucket_name,
        run_id=run_id,
        account_id=account_id,
        source="synthetic",
        keys=expected_keys,
    )
    publisher = BatchPublisher(
        producer.client("sns"), outputs.topic_arn, s3=producer.client("s3"), bucket=outputs.bucket_name
    )
    published = publisher.publish(records)
    write_publish_results(producer.client("s3"), outputs.bucket_name, run_id, len(records), published)
    idle = _QueueIdle(sampler)
    timed_out = wait_until_drained(
        sampler,
        len(expected_keys),
        producer_done=lambda: True,
        idle_seconds=idle,
        idle_needed=max(options.idle_seconds, spec.queue.batching_window_seconds + 5),
        deadline=started + options.deadline_seconds,
        progress=progress,
    )
    sampler.stop()
    ended = time.time()
    tail = reconcile_run(
        session.client("s3"),
        session.client("sqs"),
        outputs,
        account_id=account_id,
        run_id=run_id,
        expected_keys=expected_keys,
        out_dir=report_dir / "output",
        consumers_stopped=False,
        timed_out=timed_out,
        logs=lambda: filter_lines(
            session.client("logs"),
            outputs.reporter_log_group_name,
            f'"{run_id}"',
            int(started * 1000) - 60_000,
            max_events=MAX_LOG_EVENTS,
        ),
    )
    calls, written, denied = producer.counter.take()
    return RunObservation(
        spec=spec,
        outputs=outputs,
        run_id=run_id,
        account_id=account_id,
        started=started,
        ended=ended,
        timed_out=timed_out,
        expected_keys=expected_keys,
        reconciliation=tail.reconciliation,
        forensics=tail.forensics,
        samples=sampler.samples,
        api_calls={"collector": calls},
        iam="enforced by AWS",
        denied={"collector": denied} if denied else {},
        s3_bytes_written=written,
        published=published.published,
        concurrency=spec.queue.max_concurrency or 0,
    )


class _QueueIdle:
    """Seconds since the deployed queue last held a message, judged from the samples."""

    def __init__(self, sampler: QueueSampler) -> None:
        self.sampler = sampler

    def __call__(self) -> float:
        busy = [s.time for s in self.sampler.samples if s.visible + s.not_visible > 0]
        since = busy[-1] if busy else (self.sampler.samples[0].time if self.sampler.samples else time.time())
        return time.time() - since
