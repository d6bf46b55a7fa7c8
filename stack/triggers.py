"""What starts each function: the SQS event source mapping and the EventBridge schedules."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws

from pipeline.spec import DeploymentSpec

COLLECTOR_SCHEDULE_INPUT: dict[str, Any] = {"source": "iam"}
VERIFIER_SCHEDULE_INPUT: dict[str, Any] = {}  # every unverified run past its grace period


class Triggers(pulumi.ComponentResource):
    """Queue -> reporter with partial batch failures; schedules for collector and verifier."""

    event_source_mapping: aws.lambda_.EventSourceMapping
    schedules: dict[str, aws.cloudwatch.EventRule]

    def __init__(
        self,
        name: str,
        spec: DeploymentSpec,
        *,
        queue_arn: pulumi.Input[str],
        functions: dict[str, aws.lambda_.Function],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("cidb:stack:Triggers", name, None, opts)
        q = spec.queue
        self.event_source_mapping = aws.lambda_.EventSourceMapping(
            f"{name}-reporter-queue",
            event_source_arn=queue_arn,
            function_name=functions["reporter"].arn,
            batch_size=q.batch_size,
            maximum_batching_window_in_seconds=q.batching_window_seconds,
            function_response_types=list(q.function_response_types),
            scaling_config={"maximum_concurrency": q.max_concurrency} if q.max_concurrency is not None else None,
            opts=pulumi.ResourceOptions(parent=self),
        )
        wanted = {
            "collector": (spec.schedule_expression, COLLECTOR_SCHEDULE_INPUT),
            "verifier": (spec.verify_schedule_expression, VERIFIER_SCHEDULE_INPUT),
        }
        self.schedules = {
            key: self._schedule(f"{name}-{key}", expression, payload, functions[key])
            for key, (expression, payload) in wanted.items()
            if expression is not None
        }
        self.register_outputs({"schedules": {key: rule.name for key, rule in self.schedules.items()}})

    def _schedule(
        self, name: str, expression: str, payload: dict[str, Any], function: aws.lambda_.Function
    ) -> aws.cloudwatch.EventRule:
        child = pulumi.ResourceOptions(parent=self)
        rule = aws.cloudwatch.EventRule(f"{name}-schedule", schedule_expression=expression, opts=child)
        aws.cloudwatch.EventTarget(
            f"{name}-target", rule=rule.name, arn=function.arn, input=json.dumps(payload), opts=child
        )
        aws.lambda_.Permission(
            f"{name}-invoke",
            action="lambda:InvokeFunction",
            function=function.name,
            principal="events.amazonaws.com",
            source_arn=rule.arn,
            opts=child,
        )
        return rule
