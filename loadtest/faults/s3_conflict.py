"""Conditional S3 writes meet 412 and 409, including enough 409s in a row to exhaust the retry."""

from loadtest.faults.catalog import Fault, FaultPlan
from loadtest.faults.injection import FaultRule
from pipeline.layout import SEGMENTS_PREFIX

NAME = "s3-conflict"
FAULT = Fault(
    name=NAME,
    does="412 on every 2nd IfMatch write, 409 on every 2nd segment write (up to 20), and 409 twice in a row on one "
    "segment (its retry exhausted, the records go back to the queue)",
    alarms=(),
    why_no_alarm="conflicts are retried by design; WriteConflicts and RecordsFailed count them",
    overrides={"output.rows_per_file": 100},
    plan=lambda spec: FaultPlan(
        rules={
            "reporter": (
                FaultRule("s3.PutObject", "PreconditionFailed", 412, when_param="IfMatch", every=2, fault=NAME),
                FaultRule(
                    "s3.PutObject",
                    "ConditionalRequestConflict",
                    409,
                    key_contains=SEGMENTS_PREFIX,
                    every=2,
                    limit=20,
                    fault=NAME,
                ),
                FaultRule(
                    "s3.PutObject", "ConditionalRequestConflict", 409, key_contains=SEGMENTS_PREFIX, limit=2, fault=NAME
                ),
            )
        }
    ),
)
