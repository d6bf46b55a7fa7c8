"""One frame of metric datapoints for a run, shaped like CloudWatch's.

The CIDB metrics are the handlers' own EMF output. The AWS/* metrics are what the
services would publish, reconstructed from what the emulator observed: queue samples,
invocations of the event source mapping, and the collector's publishing.
"""

from __future__ import annotations

import json

import pandas as pd

from loadtest.emulator.esm import Invocation
from loadtest.emulator.lambda_runtime import InvocationResult
from loadtest.run.sampler import Sample
from ops.outputs import StackOutputs

COLUMNS = ["time", "namespace", "metric_name", "dimensions", "value"]


def _rows(namespace: str, dims: dict[str, str], points: list[tuple[float, str, float]]) -> list[dict]:
    dimensions = json.dumps(dims, sort_keys=True)
    return [
        {
            "time": pd.Timestamp(t, unit="s", tz="UTC"),
            "namespace": namespace,
            "metric_name": m,
            "dimensions": dimensions,
            "value": float(v),
        }
        for t, m, v in points
    ]


def sqs_rows(outputs: StackOutputs, samples: list[Sample], invocations: list[Invocation], sent: int, sent_at: float):
    queue, dlq = {"QueueName": outputs.queue_name}, {"QueueName": outputs.dlq_name}
    points_q, points_d = [], []
    for s in samples:
        points_q += [
            (s.time, "ApproximateNumberOfMessagesVisible", s.visible),
            (s.time, "ApproximateNumberOfMessagesNotVisible", s.not_visible),
            (s.time, "ApproximateAgeOfOldestMessage", s.oldest_age_s),
        ]
        points_d += [(s.time, "ApproximateNumberOfMessagesVisible", s.dlq)]
    points_q.append((sent_at, "NumberOfMessagesSent", sent))
    for inv in invocations:
        points_q.append((inv.result.ended, "NumberOfMessagesDeleted", inv.batch_size - inv.failed))
    return _rows("AWS/SQS", queue, points_q) + _rows("AWS/SQS", dlq, points_d)


def lambda_rows(results: list[InvocationResult], samples: list[Sample], reporter: str):
    rows = []
    for r in results:
        if r.outcome == "throttled":  # refused before it ran: a throttle, not an invocation
            rows += _rows("AWS/Lambda", {"FunctionName": r.function}, [(r.ended, "Throttles", 1)])
            continue
        failed = r.outcome != "ok"
        rows += _rows(
            "AWS/Lambda",
            {"FunctionName": r.function},
            [
                (r.started, "Invocations", 1),
                (r.ended, "Errors", 1 if failed else 0),
                (r.ended, "Duration", r.duration_ms),
                (r.ended, "Throttles", 0),
            ],
        )
    rows += _rows(
        "AWS/Lambda",
        {"FunctionName": reporter},
        [(s.time, "ConcurrentExecutions", s.instances_in_flight) for s in samples],
    )
    return rows


def sns_rows(outputs: StackOutputs, published: int, failed: int, at: float):
    topic = outputs.topic_arn.rsplit(":", 1)[1]
    return _rows(
        "AWS/SNS",
        {"TopicName": topic},
        [
            (at, "NumberOfMessagesPublished", published),
            (at, "NumberOfNotificationsFailed", failed),
            # The emulator's subscription never fails a delivery to the DLQ: SNS's redrive is AWS-only.
            (at, "NumberOfNotificationsFailedToRedriveToDlq", 0),
        ],
    )


def build_frame(emf: pd.DataFrame, *row_groups: list[dict]) -> pd.DataFrame:
    aws = pd.DataFrame([row for group in row_groups for row in group], columns=COLUMNS)
    frame = pd.concat([emf[COLUMNS], aws], ignore_index=True) if not emf.empty else aws
    return frame.sort_values("time", kind="stable").reset_index(drop=True)
