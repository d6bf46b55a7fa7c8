"""The queue, the DLQ and the event source mapping, as ``cidb status`` shows them."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ops.errors import aws_errors
from ops.target import Target


@dataclass(frozen=True)
class QueueState:
    visible: int
    in_flight: int
    oldest_age_seconds: float | None  # from CloudWatch; None where it has no datapoint (an emulator)
    dlq_depth: int
    dlq_in_flight: int
    mapping_state: str | None  # None: no event source mapping (the emulator runs its own poller)
    mapping_max_concurrency: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def queue_counts(target: Target, queue_url: str) -> tuple[int, int]:
    """(visible, in flight)."""
    with aws_errors(f"SQS at {target.where}"):
        attributes = target.client("sqs").get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def queue_state(target: Target) -> QueueState:
    outputs = target.outputs
    visible, in_flight = queue_counts(target, outputs.queue_url)
    dlq_depth, dlq_in_flight = queue_counts(target, outputs.dlq_url)
    with aws_errors(f"Lambda at {target.where}"):
        mappings = target.client("lambda").list_event_source_mappings(EventSourceArn=outputs.queue_arn)
    mapping = next(iter(mappings.get("EventSourceMappings", [])), None)
    return QueueState(
        visible=visible,
        in_flight=in_flight,
        oldest_age_seconds=_oldest_age(target),
        dlq_depth=dlq_depth,
        dlq_in_flight=dlq_in_flight,
        mapping_state=mapping["State"] if mapping else None,
        mapping_max_concurrency=(mapping or {}).get("ScalingConfig", {}).get("MaximumConcurrency"),
    )


def _oldest_age(target: Target) -> float | None:
    """SQS keeps no such attribute: the last minute's ApproximateAgeOfOldestMessage from CloudWatch."""
    now = datetime.now(UTC)
    with aws_errors(f"CloudWatch at {target.where}"):
        response = target.client("cloudwatch").get_metric_data(
            MetricDataQueries=[
                {
                    "Id": "age",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "AWS/SQS",
                            "MetricName": "ApproximateAgeOfOldestMessage",
                            "Dimensions": [{"Name": "QueueName", "Value": target.outputs.queue_name}],
                        },
                        "Period": 60,
                        "Stat": "Maximum",
                    },
                }
            ],
            StartTime=now - timedelta(minutes=15),
            EndTime=now,
            ScanBy="TimestampDescending",
        )
    values = next(iter(response.get("MetricDataResults", [])), {}).get("Values", [])
    return float(values[0]) if values else None
