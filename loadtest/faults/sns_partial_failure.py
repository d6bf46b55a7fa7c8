"""SNS PublishBatch returns some entries in ``Failed``; the collector must re-send exactly those."""

from loadtest.faults.catalog import Fault, FaultPlan
from loadtest.faults.injection import FaultRule

NAME = "sns-partial-failure"
FAULT = Fault(
    name=NAME,
    does="PublishBatch fails every 6th entry (InternalError in Failed), up to 60 entries",
    alarms=("collector-publish-retries",),
    plan=lambda spec: FaultPlan(
        rules={
            "collector": (
                FaultRule("sns.PublishBatch", "InternalError", action="fail-entries", every=6, limit=60, fault=NAME),
            )
        }
    ),
)
