"""S3 answers 503 SlowDown and 500 InternalError; the SDK's retry mode must absorb them."""

from loadtest.faults.catalog import Fault, FaultPlan
from loadtest.faults.injection import FaultRule

NAME = "s3-throttle"


def _rules(operation: str) -> tuple[FaultRule, ...]:
    """The first try of each call is throttled; the retry of every 5th fails again with a 500."""
    return (
        FaultRule(operation, "SlowDown", 503, action="http", attempt=1, fault=NAME),
        FaultRule(operation, "InternalError", 500, action="http", attempt=2, every=5, fault=NAME),
    )


FAULT = Fault(
    name=NAME,
    does="503 SlowDown on the first try of every S3 GET, PUT and LIST, and 500 InternalError on the retry of "
    "every 5th, at the HTTP layer (botocore's retry mode retries both)",
    alarms=("reporter-sdk-retries",),
    plan=lambda spec: FaultPlan(
        rules={
            "reporter": _rules("s3.PutObject") + _rules("s3.GetObject") + _rules("s3.ListObjectsV2"),
            "verifier": _rules("s3.PutObject") + _rules("s3.GetObject") + _rules("s3.ListObjectsV2"),
        }
    ),
)
