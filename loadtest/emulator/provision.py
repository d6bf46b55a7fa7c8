"""Provision the emulator from the deployment spec, as the Pulumi program does on AWS."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from ops.outputs import StackOutputs
from ops.target import spec_outputs
from pipeline.spec import DeploymentSpec


def provision(session: Any, spec: DeploymentSpec) -> StackOutputs:
    sns, sqs, s3 = session.client("sns"), session.client("sqs"), session.client("s3")
    dynamodb, logs = session.client("dynamodb"), session.client("logs")
    q = spec.queue

    dlq_url = sqs.create_queue(
        QueueName=spec.dlq_name,
        Attributes={"MessageRetentionPeriod": str(q.dlq_retention_seconds), "SqsManagedSseEnabled": "true"},
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=spec.queue_name,
        Attributes={
            "VisibilityTimeout": str(q.visibility_timeout_seconds),
            "MessageRetentionPeriod": str(q.retention_seconds),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": q.max_receive_count}),
            "SqsManagedSseEnabled": "true",
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    topic_arn = sns.create_topic(Name=spec.topic_name)["TopicArn"]
    sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"RawMessageDelivery": "true", "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn})},
    )

    s3.create_bucket(Bucket=spec.bucket_name)
    s3.put_bucket_versioning(Bucket=spec.bucket_name, VersioningConfiguration={"Status": "Enabled"})

    dynamodb.create_table(
        TableName=spec.run_table_name,
        KeySchema=[{"AttributeName": "run_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "run_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for fn in spec.functions:
        logs.create_log_group(logGroupName=fn.log_group)
        logs.put_retention_policy(logGroupName=fn.log_group, retentionInDays=spec.log_retention_days)

    return replace(
        spec_outputs(spec, session.region),
        topic_arn=topic_arn,
        queue_url=queue_url,
        queue_arn=queue_arn,
        dlq_url=dlq_url,
        dlq_arn=dlq_arn,
    )
