"""A reporter is frozen (SIGSTOP) past its lock lease while it holds the lock, then thawed (SIGCONT)."""

from loadtest.faults.catalog import Fault, FaultPlan
from loadtest.faults.injection import FaultRule
from pipeline.layout import LOCK_SUFFIX

NAME = "pause-past-lease"
LEASE_SECONDS = 10
FAULT = Fault(
    name=NAME,
    does="SIGSTOP a reporter holding the lock for lease + 5 s, then SIGCONT; fencing must reject its stale writes",
    alarms=("reporter-lock-stale-broken", "reporter-lock-release-failed"),
    overrides={"lock.timeout_seconds": LEASE_SECONDS, "output.rows_per_file": 100},
    plan=lambda spec: FaultPlan(
        rules={
            "reporter": (
                FaultRule(
                    "s3.PutObject",
                    key_suffix=LOCK_SUFFIX,
                    when_param="IfNoneMatch",
                    action="pause",
                    seconds=spec.lock.timeout_seconds + 5,
                    limit=1,
                    fault=NAME,
                ),
            )
        }
    ),
)
