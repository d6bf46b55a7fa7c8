"""The local target: the whole pipeline on the embedded emulator.

Start moto, provision it from the spec, run the real collector and reporter as Lambda-like
processes behind the event source mapping, wait until every record is in the output or the
DLQ (or the queue is drained and idle, or the deadline passes), then reconcile from S3 and
the DLQ.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
import uuid
from pathlib import Path

from artifact import DEFAULT_LOCK, Artifact, build_artifact
from loadtest.aws_session import AwsSession
from loadtest.emulator import ACCOUNT_ID, MotoServer
from loadtest.esm import EventSourceMapping
from loadtest.faults import LOCK_RELEASE_FAILURES, plant_stale_lock
from loadtest.floor import measure_floor
from loadtest.floor_cache import cached_floor
from loadtest.lambda_runtime import (
    FunctionConfig,
    FunctionInstance,
    InvocationResult,
    lambda_python,
    lambda_python_version,
)
from loadtest.observation import Progress, RunObservation, reported_written, wait_until_drained
from loadtest.options import LoadTestOptions
from loadtest.outputs import StackOutputs
from loadtest.provision import provision
from loadtest.reconcile import download_output, drain_dlq_keys, reconcile, wait_until_visible
from loadtest.sampler import QueueSampler
from loadtest.seeding import create_iam_policies, synthetic_records
from pipeline.collection import build_records
from pipeline.spec import RUNTIME, DeploymentSpec, build_spec


def function_configs(
    spec: DeploymentSpec, outputs: StackOutputs, session: AwsSession, log_dir: Path, artifact: Artifact | None = None
) -> tuple[FunctionConfig, FunctionConfig, FunctionConfig]:
    """Collector, reporter and verifier as the stack configures them, running ``artifact``, reaching ``session``."""
    code = (artifact or build_artifact()).unpacked()
    base = session.function_environment()
    bucket, table = outputs.bucket_name, outputs.run_table_name
    environments = (
        spec.collector_environment(topic_arn=outputs.topic_arn, run_table=table, bucket=bucket),
        spec.reporter_environment(run_table=table, bucket=bucket),
        spec.verifier_environment(run_table=table, bucket=bucket),
    )
    collector, reporter, verifier = (
        FunctionConfig(
            fn.name,
            fn.handler,
            fn.timeout_seconds,
            fn.memory_mb,
            {**base, **env},
            log_dir,
            ACCOUNT_ID,
            session.region,
            code,
        )
        for fn, env in zip(spec.functions, environments, strict=True)
    )
    return collector, reporter, verifier


def run_local(options: LoadTestOptions, report_dir: Path, progress: Progress) -> RunObservation:
    log_dir = report_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    run_id = f"lt-{options.profile}-{uuid.uuid4().hex[:8]}"
    artifact = build_artifact(options.lambda_lock or DEFAULT_LOCK)
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
        concurrency = options.concurrency or spec.queue.max_concurrency or 5
        floor = cached_floor(
            options.policies,
            options.seed,
            concurrency,
            lambda: measure_floor(harness, records, consumers=concurrency),
            remeasure=options.measure_floor or bool(options.endpoint_url),
        )
        if options.source == "iam":
            policies = create_iam_policies(harness.client("iam"), options.policies, options.seed)
            records = build_records(policies, run_id=run_id, account_id=ACCOUNT_ID)
        expected_keys = [r.key for r in records]
        if options.inject_stale_lock:
            plant_stale_lock(harness.client("s3"), outputs.bucket_name, ACCOUNT_ID, run_id)

        collector, reporter, verifier = function_configs(spec, outputs, harness, log_dir, artifact)
        faults = [LOCK_RELEASE_FAILURES[options.fail_lock_release]] if options.fail_lock_release else []
        # An API fault is the endpoint's: every function that makes the call meets it (the reporter's
        # compactions and the verifier's flush both release the lock).
        rules = tuple(rule.to_dict() for rule in faults)
        reporter, verifier = (dataclasses.replace(fn, faults=rules) for fn in (reporter, verifier))
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
            written=reported_written(harness, outputs, run_id),
            in_flight=lambda: esm.in_flight,
            oldest_age=esm.take_max_age,
        )
        event = {"source": options.source, "run_id": run_id}
        if options.source == "synthetic":
            event.update(count=options.policies, seed=options.seed)
        collected: list[InvocationResult] = []
        producer = threading.Thread(target=lambda: collected.append(FunctionInstance(collector).invoke(event)))
        # The verifier runs once, after the run; its init overlaps the run's tail instead of adding to the job.
        checker = FunctionInstance(verifier)
        prewarm = threading.Thread(target=lambda: (producer.join(), checker.prewarm()))

        started = time.time()
        esm.start()
        sampler.start()
        producer.start()
        prewarm.start()
        timed_out = wait_until_drained(
            sampler,
            len(expected_keys),
            producer_done=lambda: not producer.is_alive(),
            idle_seconds=esm.idle_seconds,
            idle_needed=options.idle_seconds,
            deadline=started + options.deadline_seconds,
            progress=progress,
        )
        # A run that settled has no invocation in flight, so the verifier need not wait for the
        # pollers to leave their long polls; one cut off by its deadline waits for its invocations.
        esm.stop(wait=timed_out)
        sampler.stop()
        producer.join(timeout=spec.collector.timeout_seconds)
        prewarm.join()
        verified = checker.invoke({"run_id": run_id, "force": True})
        esm.stop()
        last_end = max([i.result.ended for i in esm.state.invocations] + [r.ended for r in collected] + [started])

        s3, sqs = harness.client("s3"), harness.client("sqs")
        files = download_output(s3, outputs.bucket_name, ACCOUNT_ID, run_id, report_dir / "output")
        dlq_keys, unparseable = drain_dlq_keys(sqs, outputs.dlq_url)
        # The event source mapping has stopped: whatever is still in the queue was queued, not lost.
        # Only a run cut off by its deadline can have messages in flight, waiting out a short visibility.
        in_flight = (
            wait_until_visible(sqs, outputs.queue_url, min(spec.queue.retry_max_seconds, 60)) if timed_out else 0
        )
        queued_keys, _ = drain_dlq_keys(sqs, outputs.queue_url)
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
            reconciliation=reconcile(expected_keys, files, dlq_keys, unparseable, queued_keys),
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
            artifact=describe_artifact(artifact),
            faults=[rule.to_dict() for rule in faults],
            in_flight_at_end=in_flight,
        )


def describe_artifact(artifact: Artifact) -> dict[str, object]:
    """The code that ran, for the summary: the artifact's hash, its key versions, and the interpreter."""
    python = lambda_python_version()
    return {
        **artifact.describe(),
        "python": python,
        "python_executable": lambda_python(),
        "lambda_runtime": RUNTIME,
        "python_matches_runtime": "python" + ".".join(python.split(".")[:2]) == RUNTIME,
    }


def _component(function_name: str, spec: DeploymentSpec) -> str:
    return {spec.collector.name: "collector", spec.reporter.name: "reporter", spec.verifier.name: "verifier"}.get(
        function_name, function_name
    )
