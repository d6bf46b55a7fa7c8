"""A reporter is killed (SIGKILL) right after it creates the run's lock, so the lock outlives it."""

from loadtest.faults.catalog import Fault, FaultPlan
from loadtest.faults.injection import FaultRule
from pipeline.layout import LOCK_SUFFIX

NAME = "crash-holding-lock"
FAULT = Fault(
    name=NAME,
    does="SIGKILL a reporter just after it creates the run's lock; the next writer waits out the lease",
    alarms=("reporter-errors", "reporter-lock-stale-broken"),
    overrides={"lock.timeout_seconds": 10, "output.rows_per_file": 100},
    plan=lambda spec: FaultPlan(
        rules={
            "reporter": (
                FaultRule(
                    "s3.PutObject", key_suffix=LOCK_SUFFIX, when_param="IfNoneMatch", action="kill", limit=1, fault=NAME
                ),
            )
        }
    ),
)
