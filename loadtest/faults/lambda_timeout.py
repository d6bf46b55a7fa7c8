"""A reporter overruns its timeout mid-batch, after its rows are committed, and is killed."""

from loadtest.faults.catalog import Fault, FaultPlan
from loadtest.faults.injection import FaultRule
from pipeline.layout import SEGMENTS_PREFIX

NAME = "lambda-timeout"
TIMEOUT_SECONDS = 15
FAULT = Fault(
    name=NAME,
    does=f"a reporter hangs after its segment write until its timeout ({TIMEOUT_SECONDS} s) kills it",
    # Lambda counts a timeout as an error. reporter-duration-p99 also fires once more than 1 % of the
    # invocations in its period time out: at 200 policies one timeout of 9 invocations does, at 1500 (65) not.
    alarms=("reporter-errors",),
    overrides={"reporter.timeout_seconds": TIMEOUT_SECONDS},
    plan=lambda spec: FaultPlan(
        rules={
            "reporter": (
                FaultRule(
                    "s3.PutObject",
                    key_contains=SEGMENTS_PREFIX,
                    action="hang",
                    seconds=spec.reporter.timeout_seconds + 5,
                    limit=1,
                    fault=NAME,
                ),
            )
        }
    ),
)
