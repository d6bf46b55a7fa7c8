"""A reporter is killed after its segment write and before its batch response: SQS redelivers."""

from loadtest.faults.catalog import Fault, FaultPlan
from loadtest.faults.injection import FaultRule
from pipeline.layout import SEGMENTS_PREFIX

NAME = "crash-after-write"
FAULT = Fault(
    name=NAME,
    does="SIGKILL a reporter after its rows are committed and before it answers; the batch is redelivered",
    alarms=("reporter-errors",),
    plan=lambda spec: FaultPlan(
        rules={
            "reporter": (FaultRule("s3.PutObject", key_contains=SEGMENTS_PREFIX, action="kill", limit=2, fault=NAME),)
        }
    ),
)
