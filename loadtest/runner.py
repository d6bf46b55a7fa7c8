"""Run one load test end to end and write its report directory.

Local target (default): start moto, provision it from the spec, run the real collector
and reporter as Lambda-like processes behind the event source mapping, wait until every
record is in the output or the DLQ (or the queue is drained and idle, or the deadline
passes), then reconcile from S3 and the DLQ.

Stack target: publish to a deployed stack with the collector's own publishing code, watch
its queues and bucket until drained, and reconcile the same way.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadtest.aws_session import AwsSession
from loadtest.emulator import ACCOUNT_ID, MotoServer
from loadtest.esm import EventSourceMapping
from loadtest.faults import plant_stale_lock
from loadtest.floor import measure_floor
from loadtest.lambda_runtime import FunctionConfig, FunctionInstance, InvocationResult
from loadtest.outputs import StackOutputs, load_outputs
from loadtest.provision import provision
from loadtest.reconcile import Reconciliation, download_output, drain_dlq_keys, reconcile
from loadtest.sampler import QueueSampler, Sample
from loadtest.seeding import create_iam_policies, synthetic_records
from pipeline import run_store
from pipeline.collector import build_records
from pipeline.publisher import BatchPublisher
from pipeline.spec import DeploymentSpec, FunctionSpec, build_spec

TARGETS = ("local", "stack")
SOURCES = ("synthetic", "iam")


class LoadTestError(RuntimeError):
    """The load test could not run; the message says what to change."""


@dataclass
class LoadTestOptions:
    policies: int = 1500
    profile: str = "tuned"
    concurrency: int | None = None
    source: str = "synthetic"
    out: Path | None = None
    endpoint_url: str | None = None
    target: str = "local"
    stack: str | None = None
    outputs_file: Path | None = None
    seed: int = 7
    deadline_seconds: float = 900.0
    idle_seconds: float = 3.0
    retry_delay_seconds: int = 1
    inject_stale_lock: bool = False
    overrides: dict[str, Any] = field(default_factory=dict)

    def problems(self) -> list[str]:
        out = []
        if self.policies < 1:
            out.append(f"--policies={self.policies} must be at least 1")
        if self.target not in TARGETS:
            out.append(f"--target={self.target!r} must be one of {TARGETS}")
        if self.source not in SOURCES:
            out.append(f"--source={self.source!r} must be one of {SOURCES}")
        if self.concurrency is not None and self.concurrency < 1:
            out.append(f"--concurrency={self.concurrency} must be at least 1")
        if self.target == "stack" and self.inject_stale_lock:
            out.append("--inject-stale-lock needs the local target")
        if self.target == "stack" and self.source != "synthetic":
            out.append("--target stack publishes synthetic policies; --source iam needs the local target")
        return out


@dataclass
class RunObservation:
    """Everything measured during a run, before analysis."""

    spec: DeploymentSpec
    outputs: StackOutputs
    run_id: str
    account_id: str
    started: float
    ended: float
    timed_out: bool
    expected_keys: list[str]
    reconciliation: Reconciliation
    samples: list[Sample]
    invocations: list[Any] = field(default_factory=list)
    function_results: list[InvocationResult] = field(default_factory=list)
    api_calls: dict[str, dict[str, int]] = field(default_factory=dict)
    s3_bytes_written: int = 0
    floor: dict[str, float] = field(default_factory=dict)
    published: int = 0
    concurrency: int = 0
    log_dir: Path | None = None
    producer_error: str | None = None


Progress = Callable[[Sample | None, int], None]


def default_report_dir() -> Path:
    return Path("loadtest-results") / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def function_config(fn: FunctionSpec, env: dict[str, str], log_dir: Path, region: str) -> FunctionConfig:
    return FunctionConfig(fn.name, fn.handler, fn.timeout_seconds, fn.memory_mb, env, log_dir, ACCOUNT_ID, region)


def _written(session: AwsSession, outputs: StackOutputs, run_id: str) -> Callable[[], int]:
    def read() -> int:
        item = (
            session.client("dynamodb")
            .get_item(TableName=outputs.run_table_name, Key={"run_id": {"S": run_id}})
            .get("Item", {})
        )
        return int(item.get("reported_written", {}).get("N", 0))

    return read


def _wait_until_drained(
    sampler: QueueSampler,
    expected: int,
    *,
    producer_done: Callable[[], bool],
    idle_seconds: Callable[[], float],
    idle_needed: float,
    deadline: float,
    progress: Progress,
) -> bool:
    """Poll until drained and idle; returns True if the deadline ended the wait."""
    while True:
        sample = sampler.latest
        progress(sample, expected)
        if producer_done() and sample is not None:
            settled = sample.written + sample.dlq >= expected and sample.visible + sample.not_visible == 0
            drained = sample.visible + sample.not_visible == 0 and idle_seconds() >= idle_needed
            if settled or drained:
                return False
        if time.time() > deadline:
            return True
        time.sleep(0.5)


def run_local(options: LoadTestOptions, report_dir: Path, progress: Progress) -> RunObservation:
    log_dir = report_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    run_id = f"lt-{options.profile}-{uuid.uuid4().hex[:8]}"
    with contextlib.ExitStack() as stack:
        if options.endpoint_url:
            endpoint, environment = options.endpoint_url, f"lt{uuid.uuid4().hex[:6]}"
        else:
            server = stack.enter_context(MotoServer(log_path=report_dir / "emulator.log"))
            endpoint, environment = server.endpoint_url, "loadtest"
        spec = build_spec(options.profile, environment=environment, overrides=options.overrides)
        harness, esm_session = AwsSession(endpoint), AwsSession(endpoint)
        outputs = provision(harness, spec)
        records = synthetic_records(options.policies, options.seed, run_id=run_id, account_id=ACCOUNT_ID)
        floor = measure_floor(harness, records)
        if options.source == "iam":
            policies = create_iam_policies(harness.client("iam"), options.policies, options.seed)
            records = build_records(policies, run_id=run_id, account_id=ACCOUNT_ID)
        expected_keys = [r.key for r in records]
        if options.inject_stale_lock:
            plant_stale_lock(harness.client("s3"), outputs.bucket_name, ACCOUNT_ID, run_id)

        base_env = harness.function_environment()
        bucket, table = outputs.bucket_name, outputs.run_table_name
        collector = function_config(
            spec.collector,
            {**base_env, **spec.collector_environment(topic_arn=outputs.topic_arn, run_table=table, bucket=bucket)},
            log_dir,
            harness.region,
        )
        reporter = function_config(
            spec.reporter,
            {**base_env, **spec.reporter_environment(run_table=table, bucket=bucket)},
            log_dir,
            harness.region,
        )
        verifier = function_config(
            spec.verifier,
            {**base_env, **spec.verifier_environment(run_table=table, bucket=bucket)},
            log_dir,
            harness.region,
        )
        concurrency = options.concurrency or spec.queue.max_concurrency or 5
        esm = EventSourceMapping(
            esm_session.client("sqs"),
            esm_session.counter,
            queue_url=outputs.queue_url,
            queue_arn=outputs.queue_arn,
            function=reporter,
            batch_size=spec.queue.batch_size,
            window_seconds=spec.queue.batching_window_seconds,
            max_concurrency=concurrency,
            retry_delay_seconds=options.retry_delay_seconds,
        )
        sampler = QueueSampler(
            harness.client("sqs"),
            outputs.queue_url,
            outputs.dlq_url,
            written=_written(harness, outputs, run_id),
            in_flight=lambda: esm.in_flight,
            oldest_age=esm.take_max_age,
        )
        event = {"source": options.source, "run_id": run_id}
        if options.source == "synthetic":
            event.update(count=options.policies, seed=options.seed)
        collected: list[InvocationResult] = []
        producer = threading.Thread(target=lambda: collected.append(FunctionInstance(collector).invoke(event)))

        started = time.time()
        esm.start()
        sampler.start()
        producer.start()
        timed_out = _wait_until_drained(
            sampler,
            len(expected_keys),
            producer_done=lambda: not producer.is_alive(),
            idle_seconds=esm.idle_seconds,
            idle_needed=options.idle_seconds,
            deadline=started + options.deadline_seconds,
            progress=progress,
        )
        esm.stop()
        sampler.stop()
        producer.join(timeout=spec.collector.timeout_seconds)
        last_end = max([i.result.ended for i in esm.state.invocations] + [r.ended for r in collected] + [started])
        verified = FunctionInstance(verifier).invoke({"run_id": run_id, "force": True})

        s3, sqs = harness.client("s3"), harness.client("sqs")
        files = download_output(s3, bucket, ACCOUNT_ID, run_id, report_dir / "output")
        dlq_keys, unparseable = drain_dlq_keys(sqs, outputs.dlq_url)
        results = collected + [i.result for i in esm.state.invocations] + [verified]
        api_calls: dict[str, dict[str, int]] = {"event_source_mapping": dict(esm_session.counter.calls)}
        for result in results:
            component = api_calls.setdefault(_component(result.function, spec), {})
            for op, n in result.api_calls.items():
                component[op] = component.get(op, 0) + n
        published = (collected[0].response or {}).get("published", 0) if collected else 0
        if not collected:
            producer_error = "the collector was still running at the deadline"
        elif collected[0].outcome != "ok":
            producer_error = f"collector {collected[0].outcome}: {collected[0].error}"
        else:
            producer_error = None
        return RunObservation(
            spec=spec,
            outputs=outputs,
            run_id=run_id,
            account_id=ACCOUNT_ID,
            started=started,
            ended=last_end,
            timed_out=timed_out,
            expected_keys=expected_keys,
            reconciliation=reconcile(expected_keys, files, dlq_keys, unparseable),
            samples=sampler.samples,
            invocations=list(esm.state.invocations),
            function_results=results,
            api_calls=api_calls,
            s3_bytes_written=sum(r.s3_bytes_written for r in results),
            floor=floor,
            published=published,
            concurrency=concurrency,
            log_dir=log_dir,
            producer_error=producer_error,
        )


def _component(function_name: str, spec: DeploymentSpec) -> str:
    return {spec.collector.name: "collector", spec.reporter.name: "reporter", spec.verifier.name: "verifier"}.get(
        function_name, function_name
    )


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
        session.client("sqs"), outputs.queue_url, outputs.dlq_url, written=_written(session, outputs, run_id)
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
    idle = _QueueIdle(sampler)
    timed_out = _wait_until_drained(
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
    files = download_output(session.client("s3"), outputs.bucket_name, account_id, run_id, report_dir / "output")
    dlq_keys, unparseable = drain_dlq_keys(session.client("sqs"), outputs.dlq_url)
    calls, written = producer.counter.take()
    return RunObservation(
        spec=spec,
        outputs=outputs,
        run_id=run_id,
        account_id=account_id,
        started=started,
        ended=ended,
        timed_out=timed_out,
        expected_keys=expected_keys,
        reconciliation=reconcile(expected_keys, files, dlq_keys, unparseable),
        samples=sampler.samples,
        api_calls={"collector": calls},
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
