"""The alarm notifier: a function on the alarm topic(s) that posts actionable messages to a chat webhook.

Slack, Teams and most chat webhooks cannot read an SNS envelope or confirm a subscription, so
``cidb:chatFormat`` adds this function (``pipeline.notifier``) instead of a raw subscription. The
webhook URL stays in Secrets Manager: the function gets only the secret's name. The routing table
(which dashboard and saved query belong to each alarm, ``monitoring.alarm_links``) is an SSM
parameter, too large for Lambda's 4 KB environment. A delivery that fails Lambda's two asynchronous
retries is parked in the notifier's own encrypted queue, which is alarmed.

Example (in ``__main__.py``)::

    alarm_notifier("cidb-notifier", pipeline, settings.chat, topic_arns={route: arn, ...}, actions_for=[...])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws

import iam_policies as iam
from monitoring.alarm_links import routing_table
from monitoring.model import AlarmDefinition, Route, Severity
from monitoring.notifier import notifier_dlq_alarm
from monitoring.plan import build_monitoring
from pipeline import env as env_names
from pipeline.alarm_message import DEFAULT_RUNBOOK_BASE, encode_routes
from pipeline.spec import DeploymentSpec, FunctionSpec
from stack.archive import lambda_artifact, source_code_hash, zip_archive
from stack.config import ChatNotifications
from stack.functions import LambdaFunction, function_role
from stack.pipeline import CidbPipeline

HANDLER = "pipeline.notifier.handler"
TIMEOUT_SECONDS = 30  # SSM and Secrets Manager (cached), a DLQ peek, one POST of at most 10 s
MEMORY_MB = 256
MAX_RETRY_ATTEMPTS = 2
MAX_EVENT_AGE_SECONDS = 3600  # an alarm older than an hour is history, not news
FAILURE_RETENTION_SECONDS = 14 * 24 * 3600
STANDARD_PARAMETER_BYTES = 4096
ADVANCED_PARAMETER_BYTES = 8192


def notifier_function(spec: DeploymentSpec) -> FunctionSpec:
    return FunctionSpec(
        name=f"{spec.base_name}-alarm-notifier",
        handler=HANDLER,
        timeout_seconds=TIMEOUT_SECONDS,
        memory_mb=MEMORY_MB,
    )


def failure_queue_name(spec: DeploymentSpec) -> str:
    return f"{spec.base_name}-alarm-notifier-dlq"


def routes_parameter_name(spec: DeploymentSpec) -> str:
    return f"/{spec.base_name}/alarm-notifier/routes"


def notifier_routes(spec: DeploymentSpec) -> str:
    """The routing table as stored: every alarm of the deployment plus the notifier's own."""
    alarm = notifier_dlq_alarm(spec, failure_queue_name(spec))
    table = routing_table(
        spec,
        build_monitoring(spec),
        extra_alarms=[alarm],
        log_groups={alarm.name: [notifier_function(spec).log_group]},
    )
    return encode_routes(table)


def parameter_tier(value: str) -> str:
    """Standard holds 4 KB; Advanced 8 KB (charged monthly), chosen only when the table needs it."""
    size = len(value.encode())
    if size > ADVANCED_PARAMETER_BYTES:
        raise ValueError(f"alarm routing table is {size} bytes, over SSM's {ADVANCED_PARAMETER_BYTES}; shorten it")
    return "Standard" if size <= STANDARD_PARAMETER_BYTES else "Advanced"


class AlarmNotifier(pulumi.ComponentResource):
    """The notifier function, subscribed to each of ``topic_arns``, with its routing table and failure queue.

    ``topic_arns`` maps each alarm route to its topic: the notifier hears every one, and its own
    failure alarm notifies the route of its severity (a warning: the ticket topic, never a page),
    with actions only when ``actions_for`` holds that severity, as for every other alarm.

    Outputs: ``function_name``, ``failure_queue_url``.
    """

    function: aws.lambda_.Function
    failure_queue: aws.sqs.Queue
    failure_alarm: aws.cloudwatch.MetricAlarm

    def __init__(
        self,
        name: str,
        spec: DeploymentSpec,
        *,
        topic_arns: Mapping[Route, pulumi.Input[str]],
        actions_for: Sequence[Severity] = tuple(Severity),
        chat_format: str,
        webhook_secret: str,
        pipeline_dlq: aws.sqs.Queue,
        layer_arn: pulumi.Input[str],
        runbook_base: str = DEFAULT_RUNBOOK_BASE,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("cidb:stack:AlarmNotifier", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOptions(parent=self)
        partition = aws.get_partition_output(opts=invoke).partition
        region = aws.get_region_output(opts=invoke).region
        account = aws.get_caller_identity_output(opts=invoke).account_id
        fn = notifier_function(spec)

        self.failure_queue = aws.sqs.Queue(
            f"{name}-dlq",
            name=failure_queue_name(spec),
            message_retention_seconds=FAILURE_RETENTION_SECONDS,
            sqs_managed_sse_enabled=True,
            opts=child,
        )
        routes = notifier_routes(spec)
        parameter = aws.ssm.Parameter(
            f"{name}-routes",
            name=routes_parameter_name(spec),
            type="String",
            tier=parameter_tier(routes),
            value=routes,
            description=f"Alarm -> runbook, dashboard and saved query for {fn.name} (monitoring.alarm_links)",
            opts=child,
        )
        secret_arn = _secret_arn(webhook_secret, partition, region, account)
        # A secret given by ARN may live in another account or region: its key is where the secret is.
        key_region, key_account = _secret_home(webhook_secret, region, account)
        dns_suffix = aws.get_partition_output(opts=invoke).dns_suffix
        statements = iam.notifier_statements(
            secret_arn=secret_arn,
            secrets_manager_endpoint=pulumi.Output.concat("secretsmanager.", key_region, ".", dns_suffix),
            key_arns=pulumi.Output.concat("arn:", partition, ":kms:", key_region, ":", key_account, ":key/*"),
            routes_parameter_arn=parameter.arn,
            dlq_arn=pipeline_dlq.arn,
            failure_queue_arn=self.failure_queue.arn,
        )
        environment = {
            "POWERTOOLS_SERVICE_NAME": fn.name,
            env_names.ENV_CHAT_FORMAT: chat_format,
            env_names.ENV_WEBHOOK_SECRET: webhook_secret,
            env_names.ENV_ALARM_ROUTES_PARAMETER: parameter.name,
            env_names.ENV_DLQ_URL: pipeline_dlq.url,
            env_names.ENV_RUNBOOK_BASE: runbook_base,
        }
        artifact = lambda_artifact()
        lambda_function = LambdaFunction(
            name,
            fn,
            role=function_role(f"{name}-role", opts=child),
            statements=statements,
            environment=environment,
            code=zip_archive(artifact.function_zip),
            code_sha256=source_code_hash(artifact.function_sha256),
            layers=[layer_arn],
            tracing=spec.tracing,
            log_retention_days=spec.log_retention_days,
            log_levels=(spec.log_level, spec.system_log_level),
            opts=child,
        )
        self.function = lambda_function.function
        aws.lambda_.FunctionEventInvokeConfig(
            f"{name}-async",
            function_name=self.function.name,
            maximum_retry_attempts=MAX_RETRY_ATTEMPTS,
            maximum_event_age_in_seconds=MAX_EVENT_AGE_SECONDS,
            destination_config={"on_failure": {"destination": self.failure_queue.arn}},
            opts=child,
        )
        for index, topic_arn in enumerate(topic_arns.values()):
            permission = aws.lambda_.Permission(
                f"{name}-invoke-{index}",
                action="lambda:InvokeFunction",
                function=self.function.name,
                principal="sns.amazonaws.com",
                source_arn=topic_arn,
                opts=child,
            )
            aws.sns.TopicSubscription(
                f"{name}-subscription-{index}",
                topic=topic_arn,
                protocol="lambda",
                endpoint=self.function.arn,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[permission]),
            )
        alarm = notifier_dlq_alarm(spec, self.failure_queue.name)
        self.failure_alarm = _alarm(
            alarm, [topic_arns[alarm.severity.route]], enabled=alarm.severity in actions_for, opts=child
        )
        self.register_outputs({"function_name": self.function.name, "failure_queue_url": self.failure_queue.url})


def _secret_home(
    secret: str, region: pulumi.Output[str], account: pulumi.Output[str]
) -> tuple[pulumi.Input[str], pulumi.Input[str]]:
    """(region, account) of the secret: from its ARN, or the stack's for a name."""
    if secret.startswith("arn:"):
        parts = secret.split(":")
        return parts[3], parts[4]
    return region, account


def _secret_arn(
    secret: str, partition: pulumi.Output[str], region: pulumi.Output[str], account: pulumi.Output[str]
) -> pulumi.Input[str]:
    """An ARN as given; for a name, the ARN pattern Secrets Manager gives it (a 6-character random suffix)."""
    if secret.startswith("arn:"):
        return secret
    return pulumi.Output.concat(
        "arn:", partition, ":secretsmanager:", region, ":", account, ":secret:", secret, "-??????"
    )


def _alarm(
    alarm: AlarmDefinition, actions: list[pulumi.Input[str]], *, enabled: bool, opts: pulumi.ResourceOptions
) -> aws.cloudwatch.MetricAlarm:
    metric = alarm.metric
    return aws.cloudwatch.MetricAlarm(
        alarm.name,
        name=alarm.name,
        alarm_description=alarm.description,
        namespace=metric.namespace,
        metric_name=metric.name,
        dimensions=metric.dimension_map,
        period=metric.period,
        statistic=metric.statistic,
        comparison_operator=str(alarm.comparison),
        threshold=alarm.threshold,
        evaluation_periods=alarm.evaluation_periods,
        datapoints_to_alarm=alarm.datapoints_to_alarm,
        treat_missing_data=str(alarm.treat_missing_data),
        alarm_actions=actions,
        ok_actions=actions,
        actions_enabled=enabled,
        opts=opts,
    )


def alarm_notifier(
    name: str,
    pipeline: CidbPipeline,
    chat: ChatNotifications | None,
    *,
    topic_arns: Mapping[Route, pulumi.Input[str]],
    actions_for: Sequence[Severity] = tuple(Severity),
    runbook_base: str = DEFAULT_RUNBOOK_BASE,
    opts: pulumi.ResourceOptions | None = None,
) -> AlarmNotifier | None:
    """The notifier when ``cidb:chatFormat`` names a format; None (nothing created) otherwise."""
    if chat is None:
        return None
    return AlarmNotifier(
        name,
        pipeline.spec,
        topic_arns=topic_arns,
        actions_for=actions_for,
        chat_format=chat.chat_format,
        webhook_secret=chat.webhook_secret,
        pipeline_dlq=pipeline.dlq,
        layer_arn=pipeline.layer.arn,
        runbook_base=runbook_base,
        opts=opts,
    )
