"""The whole CIDB pipeline as one component, built from a DeploymentSpec.

Example (in ``__main__.py``)::

    pipeline = CidbPipeline("cidb", build_spec("tuned", environment="dev"))
    for name, value in pipeline.outputs.items():
        pulumi.export(name, value)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

import iam_policies as iam
from pipeline.spec import DeploymentSpec
from stack.archive import lambda_artifact, source_code_hash, zip_archive
from stack.functions import LambdaFunction, function_role
from stack.layers import dependency_layer
from stack.messaging import Messaging
from stack.storage import Storage
from stack.triggers import Triggers

FUNCTION_KEYS = ("collector", "reporter", "verifier")


class CidbPipeline(pulumi.ComponentResource):
    """Storage, messaging, the three functions and their triggers, wired together.

    Monitoring hand-off: a monitoring component reads ``topic``, ``queue``, ``dlq``,
    ``bucket``, ``run_table``, ``functions`` and ``log_groups`` (the last two keyed by
    "collector", "reporter", "verifier") together with ``spec``; it creates nothing here.
    """

    def __init__(
        self,
        name: str,
        spec: DeploymentSpec,
        *,
        load_test_principal_arns: Sequence[str] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("cidb:stack:Pipeline", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.spec = spec
        self.storage = Storage(f"{name}-storage", spec, opts=child)
        roles = {key: function_role(f"{name}-{key}-role", opts=child) for key in FUNCTION_KEYS}
        self.messaging = Messaging(
            f"{name}-messaging",
            spec,
            publisher_role_arn=roles["collector"].arn,
            load_test_principal_arns=load_test_principal_arns,
            opts=child,
        )

        bucket, table, topic = self.storage.bucket, self.storage.run_table, self.messaging.topic
        environments = {
            "collector": spec.collector_environment(topic_arn=topic.arn, run_table=table.name, bucket=bucket.bucket),
            "reporter": spec.reporter_environment(run_table=table.name, bucket=bucket.bucket),
            "verifier": spec.verifier_environment(run_table=table.name, bucket=bucket.bucket),
        }
        statements = iam.function_statements(
            topic_arn=topic.arn,
            key_arn=self.messaging.key.arn,
            queue_arn=self.messaging.queue.arn,
            table_arn=table.arn,
            bucket_arn=bucket.arn,
        )
        region = aws.get_region_output(opts=pulumi.InvokeOptions(parent=self)).region
        artifact = lambda_artifact()
        self.layer = dependency_layer(f"{name}-deps", spec, artifact, opts=child)
        lambdas = {
            key: LambdaFunction(
                f"{name}-{key}",
                getattr(spec, key),
                role=roles[key],
                statements=statements[key],
                environment=environments[key],
                code=zip_archive(artifact.function_zip),
                code_sha256=source_code_hash(artifact.function_sha256),
                layers=[self.layer.arn],
                tracing=spec.tracing,
                log_retention_days=spec.log_retention_days,
                log_levels=(spec.log_level, spec.system_log_level),
                opts=child,
            )
            for key in FUNCTION_KEYS
        }

        # --- Monitoring hand-off (see class docstring) ---
        self.topic = topic
        self.queue = self.messaging.queue
        self.dlq = self.messaging.dlq
        self.bucket = bucket
        self.run_table = table
        self.functions = {key: fn.function for key, fn in lambdas.items()}
        self.log_groups = {key: fn.log_group for key, fn in lambdas.items()}

        self.triggers = Triggers(
            f"{name}-triggers", spec, queue_arn=self.queue.arn, functions=self.functions, opts=child
        )
        self.outputs = self._outputs(region)
        self.register_outputs(self.outputs)

    def _outputs(self, region: pulumi.Output[str]) -> dict[str, Any]:
        """Stack outputs, snake_case; every `cidb` verb reads them from `pulumi stack output --json`."""
        outputs: dict[str, Any] = {
            "profile": self.spec.profile,
            "base_name": self.spec.base_name,
            "region": region,
            "topic_arn": self.topic.arn,
            "queue_url": self.queue.url,
            "queue_arn": self.queue.arn,
            "queue_name": self.queue.name,
            "dlq_url": self.dlq.url,
            "dlq_arn": self.dlq.arn,
            "dlq_name": self.dlq.name,
            "bucket_name": self.bucket.bucket,
            "run_table_name": self.run_table.name,
        }
        for key in FUNCTION_KEYS:
            outputs[f"{key}_function_name"] = self.functions[key].name
            outputs[f"{key}_log_group_name"] = self.log_groups[key].name
        return outputs
