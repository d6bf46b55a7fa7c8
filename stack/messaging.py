"""The message path: KMS-encrypted SNS topic -> SQS queue (SSE-SQS) -> DLQ.

The queue uses SSE-SQS rather than the ``aws/sqs`` managed key, because SNS cannot use
that key to deliver to a subscribed queue.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

import iam_policies as iam
from pipeline.spec import DeploymentSpec


class Messaging(pulumi.ComponentResource):
    """Topic key, topic, queue, DLQ, the subscription (redriving to the DLQ) and the policies that join them.

    ``publisher_role_arn`` (the collector) and ``load_test_principal_arns`` (operators running
    ``cidb loadtest --target stack``; may be empty) are the only principals the key policy lets
    encrypt for the topic. The topic keeps its default access policy, so a principal of this
    account publishes when its own IAM policy allows ``sns:Publish`` on the topic.
    """

    key: aws.kms.Key
    topic: aws.sns.Topic
    queue: aws.sqs.Queue
    dlq: aws.sqs.Queue

    def __init__(
        self,
        name: str,
        spec: DeploymentSpec,
        *,
        publisher_role_arn: pulumi.Input[str],
        load_test_principal_arns: Sequence[str] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("cidb:stack:Messaging", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        q = spec.queue
        invoke = pulumi.InvokeOptions(parent=self)
        partition = aws.get_partition_output(opts=invoke).partition
        region = aws.get_region_output(opts=invoke).region
        account = aws.get_caller_identity_output(opts=invoke).account_id
        # The key policy must name the topic, and the topic needs the key first: build its ARN from its name.
        topic_arn = pulumi.Output.concat("arn:", partition, ":sns:", region, ":", account, ":", spec.topic_name)

        self.key = aws.kms.Key(
            f"{name}-topic-key",
            description=f"Encrypts SNS topic {spec.topic_name}",
            enable_key_rotation=True,
            policy=pulumi.Output.json_dumps(
                iam.topic_key_policy(
                    account_root_arn=pulumi.Output.concat("arn:", partition, ":iam::", account, ":root"),
                    collector_role_arn=publisher_role_arn,
                    topic_arn=topic_arn,
                    load_test_principal_arns=load_test_principal_arns,
                )
            ),
            opts=child,
        )
        self.topic = aws.sns.Topic(f"{name}-topic", name=spec.topic_name, kms_master_key_id=self.key.arn, opts=child)
        self.dlq = aws.sqs.Queue(
            f"{name}-dlq",
            name=spec.dlq_name,
            message_retention_seconds=q.dlq_retention_seconds,
            sqs_managed_sse_enabled=True,
            opts=child,
        )
        self.queue = aws.sqs.Queue(
            f"{name}-queue",
            name=spec.queue_name,
            visibility_timeout_seconds=q.visibility_timeout_seconds,
            message_retention_seconds=q.retention_seconds,
            sqs_managed_sse_enabled=True,
            redrive_policy=pulumi.Output.json_dumps(
                {"deadLetterTargetArn": self.dlq.arn, "maxReceiveCount": q.max_receive_count}
            ),
            opts=child,
        )
        aws.sqs.RedriveAllowPolicy(
            f"{name}-dlq-redrive-allow",
            queue_url=self.dlq.url,
            redrive_allow_policy=pulumi.Output.json_dumps(
                {"redrivePermission": "byQueue", "sourceQueueArns": [self.queue.arn]}
            ),
            opts=child,
        )
        queue_policy = aws.sqs.QueuePolicy(
            f"{name}-queue-policy",
            queue_url=self.queue.url,
            policy=pulumi.Output.json_dumps(iam.queue_policy(queue_arn=self.queue.arn, topic_arn=self.topic.arn)),
            opts=child,
        )
        dlq_policy = aws.sqs.QueuePolicy(
            f"{name}-dlq-policy",
            queue_url=self.dlq.url,
            policy=pulumi.Output.json_dumps(iam.dlq_policy(dlq_arn=self.dlq.arn, topic_arn=self.topic.arn)),
            opts=child,
        )
        # Subscribe only once both queues accept the topic's messages, so no early message is refused. A message
        # SNS cannot deliver to the queue after its retries goes to the DLQ (counted and alarmed), not nowhere.
        aws.sns.TopicSubscription(
            f"{name}-subscription",
            topic=self.topic.arn,
            protocol="sqs",
            endpoint=self.queue.arn,
            raw_message_delivery=True,
            redrive_policy=pulumi.Output.json_dumps({"deadLetterTargetArn": self.dlq.arn}),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[queue_policy, dlq_policy]),
        )
        self.register_outputs(
            {"topic_arn": self.topic.arn, "queue_url": self.queue.url, "dlq_url": self.dlq.url, "key_arn": self.key.arn}
        )
