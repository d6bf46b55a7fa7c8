"""What a run measured, and the wait that ends a run; shared by the local and stack targets."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtest.emulator.aws_session import AwsSession
from loadtest.emulator.lambda_runtime import InvocationResult
from loadtest.run.sampler import QueueSampler, Sample
from ops.forensics import Forensics
from ops.outputs import StackOutputs
from ops.reconcile import Reconciliation
from pipeline.spec import DeploymentSpec

Progress = Callable[[Sample | None, int], None]


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
    forensics: Forensics = field(default_factory=Forensics)
    invocations: list[Any] = field(default_factory=list)
    function_results: list[InvocationResult] = field(default_factory=list)
    api_calls: dict[str, dict[str, int]] = field(default_factory=dict)
    s3_bytes_written: int = 0
    floor: dict[str, Any] = field(default_factory=dict)
    published: int = 0
    concurrency: int = 0
    log_dir: Path | None = None
    producer_error: str | None = None
    artifact: dict[str, Any] | None = None
    faults: list[dict[str, Any]] = field(default_factory=list)  # API fault rules injected into the reporter
    in_flight_at_end: int = 0  # messages still invisible when the run was reconciled (keys unknown)
    rehearsed: list[dict[str, Any]] = field(default_factory=list)  # faults.rehearsal.ActiveFaults.describe()
    mapping_batch_failures: list[dict[str, Any]] = field(default_factory=list)  # Failed entries SQS returned
    iam: str = "off"  # enforced, or off and why (summary "iam.mode")
    denied: dict[str, dict[str, int]] = field(default_factory=dict)  # component -> service.Operation -> AccessDenied
    latency: str = "none"  # the latency profile that ran (loadtest.latency.PROFILES)
    delayed: dict[str, dict[str, Any]] = field(default_factory=dict)  # component -> what its latency hook delayed
    scaling: dict[str, Any] = field(default_factory=dict)  # how the event source mapping's pollers scaled


def reported_written(session: AwsSession, outputs: StackOutputs, run_id: str) -> Callable[[], int]:
    def read() -> int:
        item = (
            session.client("dynamodb")
            .get_item(TableName=outputs.run_table_name, Key={"run_id": {"S": run_id}})
            .get("Item", {})
        )
        return int(item.get("reported_written", {}).get("N", 0))

    return read


def wait_until_drained(
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
