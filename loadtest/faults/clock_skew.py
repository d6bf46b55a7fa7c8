"""One reporter's wall clock runs minutes ahead; the lock must judge leases by S3's clock, not its own."""

from loadtest.faults.catalog import Fault, FaultPlan
from loadtest.faults.injection import FaultRule

NAME = "clock-skew"
SKEW_SECONDS = 7 * 60
FAULT = Fault(
    name=NAME,
    does=f"one reporter instance's time.time and datetime.now run {SKEW_SECONDS // 60} minutes ahead",
    alarms=(),
    why_no_alarm="nothing may go wrong: lock ages come from S3's Date header, not the writer's clock",
    overrides={"output.rows_per_file": 100},
    plan=lambda spec: FaultPlan(
        rules={"reporter": (FaultRule(action="skew-clock", seconds=SKEW_SECONDS, limit=1, fault=NAME),)}
    ),
)
