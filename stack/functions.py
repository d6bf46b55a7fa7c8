"""Lambda functions: one role, one inline policy and one log group each.

Roles are made first and on their own, because the topic key's policy must name the
collector role before the topic, and therefore the collector, can exist.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

import iam_policies as iam
from pipeline.spec import ARCHITECTURE, RUNTIME, FunctionSpec


def function_role(name: str, opts: pulumi.ResourceOptions | None = None) -> aws.iam.Role:
    """An execution role that only Lambda can assume; its permissions come with the function."""
    return aws.iam.Role(name, assume_role_policy=pulumi.Output.json_dumps(iam.lambda_trust_policy()), opts=opts)


class LambdaFunction(pulumi.ComponentResource):
    """A function with its log group (created first) and the inline policy of its role."""

    function: aws.lambda_.Function
    log_group: aws.cloudwatch.LogGroup

    def __init__(
        self,
        name: str,
        fn: FunctionSpec,
        *,
        role: aws.iam.Role,
        statements: list[iam.Statement],
        environment: Mapping[str, Any],
        code: pulumi.Archive,
        code_sha256: str,
        layers: Sequence[pulumi.Input[str]],
        tracing: bool,
        log_retention_days: int,
        log_levels: tuple[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("cidb:stack:LambdaFunction", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs", name=fn.log_group, retention_in_days=log_retention_days, opts=child
        )
        policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=pulumi.Output.json_dumps(
                iam.function_policy(
                    statements, log_stream_arn=self.log_group.arn.apply(lambda arn: f"{arn}:*"), tracing=tracing
                )
            ),
            opts=child,
        )
        self.function = aws.lambda_.Function(
            name,
            name=fn.name,
            role=role.arn,
            handler=fn.handler,
            runtime=RUNTIME,
            architectures=[ARCHITECTURE],
            timeout=fn.timeout_seconds,
            memory_size=fn.memory_mb,
            code=code,
            source_code_hash=code_sha256,
            # Lambda reports the uploaded zip's sha256 as CodeSha256; comparing it shows code changed outside Pulumi.
            code_sha256=code_sha256,
            layers=list(layers),
            environment={"variables": dict(environment)},
            tracing_config={"mode": "Active"} if tracing else None,
            logging_config={
                "log_format": "JSON",
                "log_group": self.log_group.name,
                "application_log_level": log_levels[0],
                "system_log_level": log_levels[1],
            },
            # The log group must exist before Lambda's first write would create an unmanaged one,
            # and the policy before anything (an event source mapping) checks the role.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.log_group, policy]),
        )
        self.register_outputs({"function_name": self.function.name, "log_group_name": self.log_group.name})
