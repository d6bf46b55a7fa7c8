"""Every Nth message is delivered twice more: at once, and after a delay (SQS is at-least-once)."""

from loadtest.emulator.esm import MappingFaults
from loadtest.faults.catalog import Fault, FaultPlan

NAME = "duplicate-delivery"
FAULT = Fault(
    name=NAME,
    does="the event source mapping delivers every 7th message twice more, at once and 5 s later",
    alarms=(),
    why_no_alarm="duplicates are dropped by design; the DuplicatesDropped metric counts them",
    plan=lambda spec: FaultPlan(mapping=MappingFaults(duplicate_every=7, duplicate_delay_seconds=5.0)),
)
