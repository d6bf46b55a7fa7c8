"""Faults the load test rehearses; one module each, listed in ``FAULTS`` in the order of the README's table."""

from loadtest.faults import (
    clock_skew,
    corrupt_lock,
    crash_after_write,
    crash_holding_lock,
    duplicate_delivery,
    lambda_throttle,
    lambda_timeout,
    pause_past_lease,
    poison,
    s3_conflict,
    s3_throttle,
    sns_partial_failure,
)
from loadtest.faults.catalog import Fault

FAULTS: dict[str, Fault] = {
    module.FAULT.name: module.FAULT
    for module in (
        crash_holding_lock,
        crash_after_write,
        pause_past_lease,
        duplicate_delivery,
        s3_conflict,
        s3_throttle,
        sns_partial_failure,
        lambda_timeout,
        lambda_throttle,
        clock_skew,
        corrupt_lock,
        poison,
    )
}
