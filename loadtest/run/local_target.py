"""The local target: the whole pipeline on the embedded emulator.

Start moto, provision it from the spec, run the real collector and reporter as Lambda-like
processes behind the event source mapping, wait until every record is in the output or the
DLQ (or the queue is drained and idle, or the deadline passes), then reconcile from S3 and
the DLQ.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from artifact import DEFAULT_LOCK, Artifact, build_artifact
from loadtest.analysis.captured_logs import function_lines
from loadtest.emulator.aws_session import AwsSession
from loadtest.emulator.esm import EventSourceMapping, MappingSettings
from loadtest.emulator.lambda_runtime import (
    FunctionConfig,
    FunctionInstance,
    InvocationResult,
    lambda_python,
    lambda_python_version,
)
from loadtest.emulator.moto_server import ACCOUNT_ID, REGION, MotoServer
from loadtest.emulator.provision import provision
from loadtest.emulator.roles import FUNCTION_KEYS, FunctionRoles, admin_credentials, provision_roles
from loadtest.faults.catalog import FaultSetup
from loadtest.faults.injection import FaultRule
from loadtest.faults.lock_release import LOCK_RELEASE_FAILURES, plant_stale_lock
from loadtest.faults.rehearsal import ActiveFaults, fault_overrides
from loadtest.latency import PROFILES, Profile
from loadtest.run.floor import measure_floor
from loadtest.run.floor_cache import cached_floor
from loadtest.run.observation import Progress, RunObservation, reported_written, wait_until_drained
from loadtest.run.options import LoadTestOptions
from loadtest.run.sampler import QueueSampler
from loadtest.run.seeding import create_iam_policies, synthetic_records
from loadtest.run.tail import reconcile_run
from loadtest.run.tallies import api_calls, delayed_calls, denied_calls
from ops.outputs import StackOutputs
from pipeline.collection import build_records
from pipeline.record import PolicyRecord
from pipeline.spec import RUNTIME, DeploymentSpec, build_spec


def function_configs(
    spec: DeploymentSpec,
    outputs: StackOutputs,
    session: AwsSession,
    log_dir: Path,
    artifact: Artifact | None = None,
    roles: FunctionRoles | None = None,
) -> tuple[FunctionConfig, FunctionConfig, FunctionConfig]:
    """Collector, reporter and verifier as the stack configures them, running ``artifact``, reaching ``session``.

    With ``roles``, each instance signs with an assumed-role session of its function's role, as on
    Lambda; without, with ``session``'s credentials."""
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
            credentials=functools.partial(roles.credentials, key) if roles else None,
        )
        for key, fn, env in zip(FUNCTION_KEYS, spec.functions, environments, strict=True)
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
            server = stack.enter_context(MotoServer(log_path=report_dir / "emulator.log", iam=options.iam))
            endpoint, environment = server.endpoint_url, "loadtest"
        overrides = {**fault_overrides(options.faults), **options.overrides}
        spec = build_spec(options.profile, environment=environment, overrides=overrides)
        active = ActiveFaults.prepare(options.faults, spec, report_dir / "fault-tokens")
        iam = iam_mode(options)
        harness = AwsSession(endpoint, credentials=admin_credentials(endpoint, REGION) if iam == "enforced" else None)
        outputs = provision(harness, spec)
        roles = provision_roles(harness, spec, outputs, revoked=options.revoke) if iam == "enforced" else None
        # The event source mapping polls and deletes with the function's role, as Lambda's does.
        # Its pollers are AWS's: under a latency profile their calls wait too.
        latency = PROFILES[options.latency]
        esm_credentials = roles.credentials("reporter", "event-source-mapping") if roles else None
        esm_session = AwsSession(
            endpoint, credentials=esm_credentials, delays=latency.delays, seed=f"{run_id}:event-source-mapping"
        )
        mapping = MappingSettings.from_spec(spec, options.concurrency, latency.scaling)
        concurrency = mapping.max_concurrency
        expected_keys, floor = _expected_keys_and_floor(options, harness, run_id, concurrency, latency)
        if options.inject_stale_lock:
            plant_stale_lock(harness.client("s3"), outputs.bucket_name, ACCOUNT_ID, run_id)
        s3, sqs = harness.client("s3"), harness.client("sqs")
        active.plant(FaultSetup(s3, sqs, outputs.bucket_name, outputs.queue_url, ACCOUNT_ID, run_id, spec))
        release_rules = [LOCK_RELEASE_FAILURES[options.fail_lock_release]] if options.fail_lock_release else []
        collector, reporter, verifier = _with_latency(
            _with_faults(function_configs(spec, outputs, harness, log_dir, artifact, roles), release_rules, active),
            latency,
            run_id,
        )
        esm = EventSourceMapping(
            esm_session.client("sqs"),
            esm_session.counter,
            queue_url=outputs.queue_url,
            queue_arn=outputs.queue_arn,
            function=reporter,
            settings=mapping,
            retry_delay_seconds=options.retry_delay_seconds,
            faults=active.mapping(),
        )
        sampler = QueueSampler(
            sqs,
            outputs.queue_url,
            outputs.dlq_url,
            written=reported_written(harness, outputs, run_id),
            in_flight=lambda: esm.in_flight,
            oldest_age=esm.take_max_age,
        )
        event = {"source": options.source, "run_id": run_id}
        if options.source == "synthetic":
            event.update(count=options.policies, seed=options.seed)
        drive = _drive(esm, sampler, collector, verifier, event, len(expected_keys), options, progress)
        tail = reconcile_run(
            s3,
            sqs,
            outputs,
            account_id=ACCOUNT_ID,
            run_id=run_id,
            expected_keys=expected_keys,
            out_dir=report_dir / "output",
            consumers_stopped=True,
            timed_out=drive.timed_out,
            wait_visible_seconds=_settle_seconds(options, spec),
            unsettled_bodies={
                **esm.state.outstanding,
                **{mid: u["body"] for mid, u in esm.state.unsettled.items()},
            },
            logs=functools.partial(function_lines, log_dir, reporter.name),
        )
        results = drive.collected + [i.result for i in esm.state.invocations] + [drive.verified] + esm.state.refused
        ends = [i.result.ended for i in esm.state.invocations] + [r.ended for r in drive.collected]
        return RunObservation(
            spec=spec,
            outputs=outputs,
            run_id=run_id,
            account_id=ACCOUNT_ID,
            started=drive.started,
            ended=max([*ends, drive.started]),
            timed_out=drive.timed_out,
            expected_keys=expected_keys,
            reconciliation=tail.reconciliation,
            forensics=tail.forensics,
            samples=sampler.samples,
            invocations=list(esm.state.invocations),
            function_results=results,
            api_calls=api_calls(esm_session, results, spec),
            s3_bytes_written=sum(r.s3_bytes_written for r in results),
            floor=floor,
            published=(drive.collected[0].response or {}).get("published", 0) if drive.collected else 0,
            concurrency=concurrency,
            log_dir=log_dir,
            producer_error=_producer_error(drive.collected),
            artifact=describe_artifact(artifact),
            faults=[rule.to_dict() for rule in release_rules],
            rehearsed=active.describe(esm.state),
            mapping_batch_failures=list(esm.state.batch_failures),
            in_flight_at_end=tail.invisible,
            iam=iam,
            denied=denied_calls(esm_session, results, spec),
            latency=latency.name,
            delayed=delayed_calls(esm_session, results, spec),
            scaling=_scaling(esm, mapping),
        )


def _expected_keys_and_floor(
    options: LoadTestOptions, harness: AwsSession, run_id: str, concurrency: int, latency: Profile
) -> tuple[list[str], dict[str, Any]]:
    """The run's record keys, and the emulator floor for that many records (from this machine's cache)."""
    records = synthetic_records(options.policies, options.seed, run_id=run_id, account_id=ACCOUNT_ID)
    floor = cached_floor(
        options.policies,
        options.seed,
        concurrency,
        lambda: _measure_floor(harness, records, concurrency, latency, f"floor:{options.policies}:{options.seed}"),
        remeasure=options.measure_floor or bool(options.endpoint_url),
        latency=latency.name,
    )
    if options.source == "iam":
        policies = create_iam_policies(harness.client("iam"), options.policies, options.seed)
        records = build_records(policies, run_id=run_id, account_id=ACCOUNT_ID)
    return [r.key for r in records], floor


def _settle_seconds(options: LoadTestOptions, spec: DeploymentSpec) -> float:
    """How long a run cut off by its deadline waits for returned messages to become visible again."""
    return options.settle_seconds if options.settle_seconds is not None else min(spec.queue.retry_max_seconds, 60)


def _measure_floor(
    harness: AwsSession, records: list[PolicyRecord], consumers: int, latency: Profile, seed: str
) -> dict[str, Any]:
    """The floor under the run's latency profile: its calls wait as the pipeline's do, so e2e ÷ floor compares
    like with like. Under a profile it says how many of its calls were delayed (all of them)."""
    if latency.delays is None:
        return {**measure_floor(harness, records, consumers=consumers), "floor_latency": latency.name}
    session = AwsSession(harness.endpoint_url, credentials=harness.credentials, delays=latency.delays, seed=seed)
    return {
        **measure_floor(session, records, consumers=consumers),
        "floor_latency": latency.name,
        "floor_api_calls": sum(session.counter.calls.values()),
        "floor_delayed_calls": sum(session.latency.calls.values()),
    }


def _with_latency(functions: tuple[FunctionConfig, ...], latency: Profile, run_id: str) -> tuple[FunctionConfig, ...]:
    """Each function with the latency profile its instances install (none: nothing is installed)."""
    if latency.delays is None:
        return functions
    return tuple(dataclasses.replace(fn, latency=latency.delays.to_dict(), latency_seed=run_id) for fn in functions)


def _with_faults(
    functions: tuple[FunctionConfig, FunctionConfig, FunctionConfig],
    release_rules: list[FaultRule],
    active: ActiveFaults,
) -> tuple[FunctionConfig, ...]:
    """Each function with its fault rules. An API fault is the endpoint's: every function that makes the
    call meets it (the reporter's compactions and the verifier's flush both release the lock)."""
    shared = tuple(rule.to_dict() for rule in release_rules)
    return tuple(
        dataclasses.replace(fn, faults=rules + active.rules_for(role), fault_dir=active.token_dir)
        for fn, role, rules in zip(functions, ("collector", "reporter", "verifier"), ((), shared, shared), strict=True)
    )


@dataclass
class _Drive:
    started: float
    timed_out: bool
    collected: list[InvocationResult]
    verified: InvocationResult


def _drive(
    esm: EventSourceMapping,
    sampler: QueueSampler,
    collector: FunctionConfig,
    verifier: FunctionConfig,
    event: dict[str, Any],
    expected: int,
    options: LoadTestOptions,
    progress: Progress,
) -> _Drive:
    """Run the collector behind the mapping until the run settles or its deadline, then the verifier once."""
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
        expected,
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
    producer.join(timeout=collector.timeout_seconds)
    prewarm.join()
    verified = checker.invoke({"run_id": event["run_id"], "force": True})
    esm.stop()
    return _Drive(started, timed_out, collected, verified)


def iam_mode(options: LoadTestOptions) -> str:
    """Whether the emulator enforces the roles' policies, and if not, why."""
    if not options.iam:
        return "off (--no-iam)"
    if options.endpoint_url:
        return "off (--endpoint-url: an emulator this run did not start)"
    return "enforced"


def _scaling(esm: EventSourceMapping, mapping: MappingSettings) -> dict[str, Any]:
    """How the mapping's pollers scaled, and what capped them."""
    rule = mapping.scaling
    return {
        "rule": f"{rule.initial} at first, +{rule.per_minute}/min" if rule else "every slot at once",
        "max_pollers": mapping.max_concurrency,
        "capped_by": mapping.capped_by,
        "pollers_used": len(esm.state.polled_slots),
        "all_allowed_after_seconds": esm.state.full_after_seconds if rule else 0.0,
    }


def _producer_error(collected: list[InvocationResult]) -> str | None:
    if not collected:
        return "the collector was still running at the deadline"
    if collected[0].outcome != "ok":
        return f"collector {collected[0].outcome}: {collected[0].error}"
    return None


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
