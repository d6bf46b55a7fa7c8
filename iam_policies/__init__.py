"""IAM policy documents as plain data, shared by the Pulumi program and the embedded emulator.

Every document the stack attaches is built here from ordinary dicts, so tests can walk
each statement. Values may be Pulumi Outputs (the stack serialises with
``pulumi.Output.json_dumps``) or plain ARNs (the emulator provisions its roles with them), so
this module imports no Pulumi: the load test must run without the Pulumi SDK. Each function
role gets exactly the calls its handler makes.

Example::

    >>> doc = document(allow("Read", ["s3:GetObject"], ["arn:aws:s3:::b/reports/*"]))
    >>> doc["Statement"][0]["Action"]
    ['s3:GetObject']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipeline import layout

Statement = dict[str, Any]
Document = dict[str, Any]

VERSION = "2012-10-17"

# "*" in a key policy means "this key"; these are the calls needed to manage it.
KEY_ADMIN_ACTIONS = (
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListKeyRotations",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
)
# What SNS server-side encryption needs from a publisher and from SNS itself.
TOPIC_KEY_USE_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")


def document(*statements: Statement) -> Document:
    return {"Version": VERSION, "Statement": list(statements)}


def allow(sid: str, actions: list[str], resources: list[Any], condition: dict[str, Any] | None = None) -> Statement:
    statement: Statement = {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return statement


def objects(bucket_arn: Any, prefix: str) -> Any:
    """ARN pattern of every object under ``prefix``; works for str and Output ARNs."""
    if isinstance(bucket_arn, str):
        return f"{bucket_arn}/{prefix}*"
    return bucket_arn.apply(lambda arn: f"{arn}/{prefix}*")


def lambda_trust_policy() -> Document:
    return {
        "Version": VERSION,
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }


def collector_statements(*, topic_arn: Any, key_arn: Any, table_arn: Any, bucket_arn: Any) -> list[Statement]:
    return [
        # GetAccountAuthorizationDetails has no resource-level permissions.
        allow("ReadAccountPolicies", ["iam:GetAccountAuthorizationDetails"], ["*"]),
        # PublishBatch is authorised by sns:Publish.
        allow("Publish", ["sns:Publish"], [topic_arn]),
        allow("EncryptForTopic", list(TOPIC_KEY_USE_ACTIONS), [key_arn]),
        allow("RecordRun", ["dynamodb:PutItem"], [table_arn]),
        allow(
            "WriteOversizeAndRuns",
            ["s3:PutObject"],
            [objects(bucket_arn, layout.OVERSIZE_PREFIX), objects(bucket_arn, layout.RUNS_PREFIX)],
        ),
    ]


def reporter_statements(*, queue_arn: Any, table_arn: Any, bucket_arn: Any) -> list[Statement]:
    return [
        allow(
            "ConsumeQueue",
            # GetQueueUrl and ChangeMessageVisibility: a failed message gets a short visibility (pipeline.reporter).
            [
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "sqs:ChangeMessageVisibility",
                "sqs:GetQueueUrl",
            ],
            [queue_arn],
        ),
        *compaction_statements(bucket_arn),
        allow("ReadOversize", ["s3:GetObject"], [objects(bucket_arn, layout.OVERSIZE_PREFIX)]),
        # Without ListBucket a missing object reads as 403 instead of 404.
        allow("ListBucket", ["s3:ListBucket"], [bucket_arn]),
        allow("CountWritten", ["dynamodb:UpdateItem"], [table_arn]),
    ]


def compaction_statements(bucket_arn: Any) -> list[Statement]:
    """Segments in, parts and locks out (pipeline.compaction); the reporter and the verifier's flush both compact."""
    return [
        allow(
            "WriteReportsAndLocks",
            # PutObjectTagging: lock objects are written with a tag (see stack/storage.py).
            ["s3:GetObject", "s3:PutObject", "s3:PutObjectTagging", "s3:DeleteObject"],
            [objects(bucket_arn, layout.REPORTS_PREFIX)],
        ),
        allow(
            "WriteAndFoldSegments",
            ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            [objects(bucket_arn, layout.SEGMENTS_PREFIX)],
        ),
    ]


def verifier_statements(*, table_arn: Any, bucket_arn: Any) -> list[Statement]:
    return [
        allow("ReconcileRuns", ["dynamodb:Scan", "dynamodb:GetItem", "dynamodb:UpdateItem"], [table_arn]),
        *compaction_statements(bucket_arn),
        allow("ReadRuns", ["s3:GetObject"], [objects(bucket_arn, layout.RUNS_PREFIX)]),
        allow("ListBucket", ["s3:ListBucket"], [bucket_arn]),
    ]


def function_statements(
    *, topic_arn: Any, key_arn: Any, queue_arn: Any, table_arn: Any, bucket_arn: Any
) -> dict[str, list[Statement]]:
    """Each function's own calls, keyed like ``stack.pipeline.FUNCTION_KEYS``; one place for stack and emulator."""
    return {
        "collector": collector_statements(
            topic_arn=topic_arn, key_arn=key_arn, table_arn=table_arn, bucket_arn=bucket_arn
        ),
        "reporter": reporter_statements(queue_arn=queue_arn, table_arn=table_arn, bucket_arn=bucket_arn),
        "verifier": verifier_statements(table_arn=table_arn, bucket_arn=bucket_arn),
    }


def function_policy(statements: list[Statement], *, log_stream_arn: Any, tracing: bool) -> Document:
    """A function's whole inline policy: its own calls, its log group, and X-Ray when traced."""
    extra = [allow("WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], [log_stream_arn])]
    if tracing:
        # X-Ray has no resource-level permissions.
        extra.append(allow("Trace", ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], ["*"]))
    return document(*statements, *extra)


def queue_policy(*, queue_arn: Any, topic_arn: Any) -> Document:
    """Only this topic may deliver to the queue."""
    return document(
        {
            "Sid": "TopicDelivers",
            "Effect": "Allow",
            "Principal": {"Service": "sns.amazonaws.com"},
            "Action": ["sqs:SendMessage"],
            "Resource": [queue_arn],
            "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
        }
    )


def dlq_policy(*, dlq_arn: Any, topic_arn: Any) -> Document:
    """Only this topic may send to the DLQ: the subscription's redrive policy parks undeliverable messages there."""
    return document(
        {
            "Sid": "TopicRedrivesUndeliverable",
            "Effect": "Allow",
            "Principal": {"Service": "sns.amazonaws.com"},
            "Action": ["sqs:SendMessage"],
            "Resource": [dlq_arn],
            "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
        }
    )


def tls_only_bucket_policy(bucket_arn: Any) -> Document:
    """Deny every request that does not use TLS; a Deny on s3:* is the strict direction."""
    return document(
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": ["s3:*"],
            "Resource": [bucket_arn, objects(bucket_arn, "")],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    )


def key_admin_statement(account_root_arn: Any) -> Statement:
    """The account administers a key through IAM, but cannot use it: users of a key are named in its policy."""
    return {
        "Sid": "AccountAdministersKey",
        "Effect": "Allow",
        "Principal": {"AWS": account_root_arn},
        "Action": list(KEY_ADMIN_ACTIONS),
        "Resource": "*",
    }


def topic_key_policy(
    *,
    account_root_arn: Any,
    collector_role_arn: Any,
    topic_arn: Any,
    load_test_principal_arns: Sequence[Any] = (),
) -> Document:
    """The account administers the key; SNS, the collector and load-test principals use it for this topic only.

    The encryption-context condition holds for every KMS call SNS makes for the topic, so
    the key cannot be borrowed to encrypt anything else. The account root gets admin actions
    only, so no IAM policy can grant use of the key: a principal that publishes must be named
    here (``cidb:loadTestPrincipalArns`` for the operator running ``cidb loadtest --target stack``).
    """
    for_topic = {"StringEquals": {"kms:EncryptionContext:aws:sns:topicArn": topic_arn}}
    statements = [
        key_admin_statement(account_root_arn),
        {
            "Sid": "SnsUsesKeyForTopic",
            "Effect": "Allow",
            "Principal": {"Service": "sns.amazonaws.com"},
            "Action": list(TOPIC_KEY_USE_ACTIONS),
            "Resource": "*",
            "Condition": for_topic,
        },
        {
            "Sid": "CollectorPublishesToTopic",
            "Effect": "Allow",
            "Principal": {"AWS": collector_role_arn},
            "Action": list(TOPIC_KEY_USE_ACTIONS),
            "Resource": "*",
            "Condition": for_topic,
        },
    ]
    if load_test_principal_arns:
        statements.append(
            {
                "Sid": "LoadTestPublishesToTopic",
                "Effect": "Allow",
                "Principal": {"AWS": list(load_test_principal_arns)},
                "Action": list(TOPIC_KEY_USE_ACTIONS),
                "Resource": "*",
                "Condition": for_topic,
            }
        )
    return document(*statements)


def alarm_topic_key_policy(*, account_root_arn: Any) -> Document:
    """The alarm topic's key: administered like the pipeline's topic key; CloudWatch alarms encrypt with it.

    CloudWatch cannot use the AWS managed ``alias/aws/sns`` key, so the alarm topic needs a
    customer managed one that names the service.
    """
    return document(
        key_admin_statement(account_root_arn),
        {
            "Sid": "CloudWatchAlarmsPublishToEncryptedTopic",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": "*",
        },
    )


def alarm_topic_policy(*, topic_arn: Any, account: Any, region: Any, partition: Any) -> Document:
    """Only this account's CloudWatch alarms may publish, and only over TLS; the account manages the topic.

    The account itself is not given ``SNS:Publish``: its key (:func:`alarm_topic_key_policy`)
    lets no IAM principal encrypt, so such a publish would fail at KMS anyway. To test the
    notifications, set an alarm's state (``aws cloudwatch set-alarm-state``).
    """
    return document(
        {
            "Sid": "AccountManagesTopic",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
            "Action": [
                "SNS:GetTopicAttributes",
                "SNS:SetTopicAttributes",
                "SNS:Subscribe",
                "SNS:ListSubscriptionsByTopic",
            ],
            "Resource": topic_arn,
        },
        {
            "Sid": "CloudWatchAlarmsPublish",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": "SNS:Publish",
            "Resource": topic_arn,
            "Condition": {
                "ArnLike": {"aws:SourceArn": f"arn:{partition}:cloudwatch:{region}:{account}:alarm:*"},
                "StringEquals": {"aws:SourceAccount": account},
            },
        },
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "SNS:Publish",
            "Resource": topic_arn,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    )


def notifier_statements(
    *,
    secret_arn: Any,
    secrets_manager_endpoint: Any,
    key_arns: Any,
    routes_parameter_arn: Any,
    dlq_arn: Any,
    failure_queue_arn: Any,
) -> list[Statement]:
    """The alarm notifier: its secret and routing table, a peek at the pipeline's DLQ, its own failure queue.

    ``kms:Decrypt`` is for a secret encrypted with a customer managed key (the AWS managed
    ``aws/secretsmanager`` key needs none); the conditions let it decrypt only through Secrets
    Manager (``secrets_manager_endpoint``: ``secretsmanager.<region>.amazonaws.com``) and only this
    secret, whatever the key (``key_arns``: every key of the account and region).
    """
    return [
        allow("ReadWebhookSecret", ["secretsmanager:GetSecretValue"], [secret_arn]),
        allow(
            "DecryptWebhookSecretOnly",
            ["kms:Decrypt"],
            [key_arns],
            condition={
                "StringEquals": {"kms:ViaService": secrets_manager_endpoint},
                "StringLike": {"kms:EncryptionContext:SecretARN": secret_arn},
            },
        ),
        allow("ReadAlarmRoutes", ["ssm:GetParameter"], [routes_parameter_arn]),
        # pipeline.dlq_messages.peek_messages: receive, then make visible again (ChangeMessageVisibilityBatch).
        allow("PeekPipelineDlq", ["sqs:ReceiveMessage", "sqs:ChangeMessageVisibility"], [dlq_arn]),
        # Lambda sends an event that failed every retry to the on-failure destination as the function's role.
        allow("ParkFailedAlarms", ["sqs:SendMessage"], [failure_queue_arn]),
    ]
