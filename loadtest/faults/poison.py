"""Malformed messages: each must end in the DLQ, named, and fail nothing else.

Five bodies that are no record at all go straight to the queue. Two real records of the run
are damaged on their way (a wrongly typed field in the collector's PublishBatch entry): they
too end in the DLQ, and forensics must name them ``dlq`` with the reporter's validation error.
"""

import json

from loadtest.faults.catalog import Fault, FaultPlan, FaultSetup
from loadtest.faults.injection import FaultRule

NAME = "poison"
CORRUPTED_RECORDS = 2


def poison_bodies(setup: FaultSetup) -> list[str]:
    """One of each kind of bad body: not JSON, oversized, wrongly typed, not encodable as UTF-8, not an object."""
    typed = {"v": 1, "run_id": setup.run_id, "seq": "first", "total": "many", "trace_id": 7}
    typed |= {"account_id": setup.account_id, "policy": {"name": "p", "arn": "a", "id": "i", "version_id": "v1"}}
    typed["policy"]["document"] = {"Version": "2012-10-17", "Statement": []}
    surrogate = dict(typed, seq=1, total=1, trace_id="t")
    surrogate["policy"] = dict(typed["policy"], name="\ud800")
    return [
        '{"v": 1, "run_id": ',
        json.dumps({"v": 1, "padding": "x" * 200_000}),
        json.dumps(typed),
        json.dumps(surrogate),  # ASCII on the wire; a lone surrogate once parsed
        json.dumps(["not", "an", "object"]),
    ]


def send_poison(setup: FaultSetup) -> int:
    bodies = poison_bodies(setup)
    for body in bodies:
        setup.sqs.send_message(QueueUrl=setup.queue_url, MessageBody=body)
    return len(bodies)


FAULT = Fault(
    name=NAME,
    does=(
        "5 malformed bodies sent to the queue (not JSON, 200 KB, wrongly typed, a lone surrogate, a JSON array) "
        f"and {CORRUPTED_RECORDS} of the run's records damaged in transit"
    ),
    alarms=("dlq-depth",),
    plan=lambda spec: FaultPlan(
        rules={
            "collector": (
                FaultRule("sns.PublishBatch", action="corrupt-entries", every=17, limit=CORRUPTED_RECORDS, fault=NAME),
            )
        },
        before_run=send_poison,
        poison=5,
        dlq_records=CORRUPTED_RECORDS,
    ),
)
