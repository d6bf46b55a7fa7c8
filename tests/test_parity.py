"""What the load test runs is what `pulumi up` deploys: every setting the two paths share, compared.

The Pulumi program runs under Pulumi's mocks; the emulator is provisioned by the load test's own
code into a real moto server and read back through the AWS APIs, with the functions configured and
the event source mapping set up as a load test does. A setting that differs fails and is named.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi_mocks
import pytest

from loadtest.emulator.aws_session import AwsSession
from loadtest.emulator.esm import UNCAPPED_EMULATOR_CONCURRENCY, MappingSettings
from loadtest.emulator.moto_server import CREDENTIALS
from loadtest.emulator.provision import provision
from loadtest.run.local_target import function_configs
from pipeline.spec import DeploymentSpec

ROLES = ("collector", "reporter", "verifier")
# Deployed, and not compared: moto keeps no RedriveAllowPolicy (the DLQ accepts redrives from the queue alone),
# and the KMS, queue and bucket policies are resource policies it does not evaluate (tests/test_stack_iam.py).
# Only how a function reaches the emulator; on Lambda the runtime sets these itself.
EMULATOR_ONLY_ENVIRONMENT = {*CREDENTIALS, "AWS_ENDPOINT_URL"}
COMPARED = (
    "queue.visibility_timeout_seconds",
    "queue.retention_seconds",
    "queue.redrive.max_receive_count",
    "queue.redrive.dead_letter_target",
    "queue.sse",
    "dlq.retention_seconds",
    "dlq.sse",
    "subscription.raw_delivery",
    "subscription.redrive.dead_letter_target",
    "mapping.batch_size",
    "mapping.window_seconds",
    "mapping.max_concurrency",
    "mapping.report_batch_item_failures",
    *(f"{role}.{what}" for role in ROLES for what in ("handler", "timeout_seconds", "memory_mb", "log_group")),
    *(f"{role}.log_retention_days" for role in ROLES),
)


def _name(value: Any) -> str:
    """An ARN by the name at its end: the two paths differ only in region (and account ARNs are mocked)."""
    text = str(value)
    return text.rsplit(":", 1)[-1] if text.startswith("arn:") else text


def _bucket(value: str, spec: DeploymentSpec) -> str:
    """S3 names are global: the stack's bucket is ``<bucket_name>-<26 random characters>`` (bucket_prefix)."""
    prefix = f"{spec.bucket_name}-"
    return spec.bucket_name if value.startswith(prefix) and len(value) == len(prefix) + 26 else value


def _bool(value: Any) -> bool:
    return str(value).lower() == "true"


def deployed_settings(deployment: pulumi_mocks.Deployment) -> dict[str, Any]:
    queue, dlq = deployment.one("aws:sqs/queue:Queue", "-queue"), deployment.one("aws:sqs/queue:Queue", "-dlq")
    redrive = json.loads(queue.state["redrivePolicy"])
    [subscription] = [
        s for s in deployment.of_type("aws:sns/topicSubscription:TopicSubscription") if s.state["protocol"] == "sqs"
    ]
    mapping = deployment.one("aws:lambda/eventSourceMapping:EventSourceMapping").state
    settings: dict[str, Any] = {
        "queue.visibility_timeout_seconds": queue.state["visibilityTimeoutSeconds"],
        "queue.retention_seconds": queue.state["messageRetentionSeconds"],
        "queue.redrive.max_receive_count": redrive["maxReceiveCount"],
        "queue.redrive.dead_letter_target": _name(redrive["deadLetterTargetArn"]),
        "queue.sse": queue.state["sqsManagedSseEnabled"],
        "dlq.retention_seconds": dlq.state["messageRetentionSeconds"],
        "dlq.sse": dlq.state["sqsManagedSseEnabled"],
        "subscription.raw_delivery": _bool(subscription.state["rawMessageDelivery"]),
        "subscription.redrive.dead_letter_target": _name(
            json.loads(subscription.state["redrivePolicy"])["deadLetterTargetArn"]
        ),
        "mapping.batch_size": mapping["batchSize"],
        "mapping.window_seconds": mapping["maximumBatchingWindowInSeconds"],
        "mapping.max_concurrency": (mapping.get("scalingConfig") or {}).get("maximumConcurrency"),
        "mapping.report_batch_item_failures": "ReportBatchItemFailures" in mapping.get("functionResponseTypes", []),
    }
    groups = {g.state["name"]: g.state for g in deployment.of_type("aws:cloudwatch/logGroup:LogGroup")}
    for role in ROLES:
        fn = deployment.one("aws:lambda/function:Function", f"cidb-{role}").state
        group = fn["loggingConfig"]["logGroup"]
        settings |= {
            f"{role}.handler": fn["handler"],
            f"{role}.timeout_seconds": fn["timeout"],
            f"{role}.memory_mb": fn["memorySize"],
            f"{role}.log_group": group,
            f"{role}.log_retention_days": groups[group]["retentionInDays"],
        }
        settings |= {f"{role}.env.{k}": _name(v) for k, v in fn["environment"]["variables"].items()}
    spec = deployment.settings.spec
    return {k: _bucket(v, spec) if k.endswith(".env.CIDB_BUCKET") else v for k, v in settings.items()}


def emulated_settings(aws: AwsSession, spec: DeploymentSpec, log_dir: Path) -> dict[str, Any]:
    outputs = provision(aws, spec)
    sqs, sns, logs = aws.client("sqs"), aws.client("sns"), aws.client("logs")
    queue = sqs.get_queue_attributes(QueueUrl=outputs.queue_url, AttributeNames=["All"])["Attributes"]
    dlq = sqs.get_queue_attributes(QueueUrl=outputs.dlq_url, AttributeNames=["All"])["Attributes"]
    redrive = json.loads(queue["RedrivePolicy"])
    [subscription] = sns.list_subscriptions_by_topic(TopicArn=outputs.topic_arn)["Subscriptions"]
    attributes = sns.get_subscription_attributes(SubscriptionArn=subscription["SubscriptionArn"])["Attributes"]
    mapping = MappingSettings.from_spec(spec)
    settings: dict[str, Any] = {
        "queue.visibility_timeout_seconds": int(queue["VisibilityTimeout"]),
        "queue.retention_seconds": int(queue["MessageRetentionPeriod"]),
        "queue.redrive.max_receive_count": int(redrive["maxReceiveCount"]),
        "queue.redrive.dead_letter_target": _name(redrive["deadLetterTargetArn"]),
        "queue.sse": _bool(queue.get("SqsManagedSseEnabled")),
        "dlq.retention_seconds": int(dlq["MessageRetentionPeriod"]),
        "dlq.sse": _bool(dlq.get("SqsManagedSseEnabled")),
        "subscription.raw_delivery": _bool(attributes["RawMessageDelivery"]),
        "subscription.redrive.dead_letter_target": _name(
            json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"]
        ),
        "mapping.batch_size": mapping.batch_size,
        "mapping.window_seconds": mapping.window_seconds,
        # An uncapped mapping (no ScalingConfig) runs a fixed number of instances on the emulator.
        "mapping.max_concurrency": None
        if spec.queue.max_concurrency is None and mapping.max_concurrency == UNCAPPED_EMULATOR_CONCURRENCY
        else mapping.max_concurrency,
        "mapping.report_batch_item_failures": mapping.report_batch_item_failures,
    }
    groups = {g["logGroupName"]: g for g in logs.describe_log_groups()["logGroups"]}
    for role, fn in zip(ROLES, function_configs(spec, outputs, aws, log_dir), strict=True):
        group = getattr(spec, role).log_group
        settings |= {
            f"{role}.handler": fn.handler,
            f"{role}.timeout_seconds": fn.timeout_seconds,
            f"{role}.memory_mb": fn.memory_mb,
            f"{role}.log_group": group if group in groups else None,
            f"{role}.log_retention_days": groups.get(group, {}).get("retentionInDays"),
        }
        settings |= {
            f"{role}.env.{k}": _name(v) for k, v in fn.environment.items() if k not in EMULATOR_ONLY_ENVIRONMENT
        }
    return settings


@pytest.mark.parametrize("profile", ["tuned", "seed"])
def test_the_emulator_is_provisioned_as_the_stack_deploys(profile: str, aws: AwsSession, tmp_path: Path) -> None:
    deployment = pulumi_mocks.deploy({"profile": profile})
    deployed = deployed_settings(deployment)
    emulated = emulated_settings(aws, deployment.settings.spec, tmp_path)
    missing = sorted(set(COMPARED) - set(deployed))
    assert not missing, f"the parity test reads no deployed value for {missing}"
    keys = sorted(set(deployed) | set(emulated))
    differences = [f"{key}: stack {deployed.get(key)!r}, emulator {emulated.get(key)!r}" for key in keys]
    differences = [d for d, key in zip(differences, keys, strict=True) if deployed.get(key) != emulated.get(key)]
    assert not differences, "the emulator differs from the stack:\n" + "\n".join(differences)
