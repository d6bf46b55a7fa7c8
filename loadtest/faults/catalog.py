"""What a rehearsed fault is: what it does to a run, and the alarms that on-call must get for it.

Each fault lives in its own module in this package and declares one :class:`Fault`. A fault
touches a run only through the parts that are not shipped: botocore hooks in the function
instances (:mod:`loadtest.faults.injection`), the event source mapping's own faults
(:class:`loadtest.emulator.esm.MappingFaults`), spec overrides, and objects or messages put in
place before the run starts. ``pipeline/`` has no fault branches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from loadtest.emulator.esm import MappingFaults
from loadtest.faults.injection import FaultRule
from pipeline.spec import DeploymentSpec


@dataclass(frozen=True)
class FaultSetup:
    """What a fault may touch before the run starts, with the harness's own (admin) clients."""

    s3: Any
    sqs: Any
    bucket: str
    queue_url: str
    account_id: str
    run_id: str
    spec: DeploymentSpec


@dataclass(frozen=True)
class FaultPlan:
    """A fault's part in one run."""

    rules: dict[str, tuple[FaultRule, ...]] = field(default_factory=dict)  # by function role
    mapping: MappingFaults | None = None
    before_run: Callable[[FaultSetup], int] | None = None  # plants something; returns how many
    poison: int = 0  # messages the fault puts in the queue that must end in the DLQ
    dlq_records: int = 0  # records of the run the fault damages, which must end in the DLQ, not in the output


@dataclass(frozen=True)
class Fault:
    name: str
    does: str
    alarms: tuple[str, ...]  # alarm names without the stack prefix and severity, e.g. "reporter-errors"
    plan: Callable[[DeploymentSpec], FaultPlan]
    overrides: dict[str, Any] = field(default_factory=dict)  # spec overrides the fault needs (shown in reports)
    why_no_alarm: str = ""  # for a fault that trips no alarm: where on-call sees it instead

    def row(self) -> dict[str, str]:
        return {
            "fault": self.name,
            "what it does": self.does,
            "alarms it must trip": ", ".join(self.alarms) or f"none: {self.why_no_alarm}",
        }


def alarm_matches(expected: str, alarm_name: str) -> bool:
    """``reporter-errors`` matches ``cidb-loadtest-reporter-errors-critical``, whatever the prefix."""
    stem = alarm_name.rsplit("-", 1)[0]
    return stem.endswith(f"-{expected}")
