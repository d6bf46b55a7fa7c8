"""The run's lock object holds garbage before the run starts; writers must treat it as a stale lock."""

from loadtest.faults.catalog import Fault, FaultPlan, FaultSetup
from pipeline.layout import index_key, lock_key

NAME = "corrupt-lock"
GARBAGE = b"\x00\xffnot a lock {"


def plant_corrupt_lock(setup: FaultSetup) -> int:
    """A lock body that is not JSON (an empty body behaves the same; see tests/test_lock.py)."""
    key = lock_key(index_key(setup.account_id, setup.run_id))
    setup.s3.put_object(Bucket=setup.bucket, Key=key, Body=GARBAGE, IfNoneMatch="*")
    return 1


FAULT = Fault(
    name=NAME,
    does="the run's lock object holds bytes that are not a lock when the run starts",
    alarms=("reporter-lock-stale-broken",),
    overrides={"lock.timeout_seconds": 10},
    plan=lambda spec: FaultPlan(before_run=plant_corrupt_lock),
)
