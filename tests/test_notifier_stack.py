"""The AlarmNotifier under Pulumi's mocks, wired as ``__main__.py`` wires it, and its configuration keys."""

from __future__ import annotations

import base64
from typing import Any

import pulumi
import pulumi_aws
import pulumi_mocks
import pytest
from pulumi_mocks import ACCOUNT, MONITOR, PROJECT, REGION, Deployment, Resource

from monitoring.model import Route, Severity
from pipeline import env as env_names
from pipeline.alarm_message import decode_routes
from pipeline.spec import build_spec
from stack.config import NAMESPACE, StackConfigError, read_settings
from stack.notifier import (
    STANDARD_PARAMETER_BYTES,
    notifier_routes,
    parameter_tier,
)

SECRET = "cidb/chat-webhook"
CHAT = {"chatFormat": "slack", "chatWebhookSecret": SECRET}
PAGE_TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:cidb-dev-alarms-page"
LAMBDA_ENV_LIMIT = 4096


def deploy_with_notifier(
    config: dict[str, str], topics: int = 1, actions_for: tuple[Severity, ...] = tuple(Severity)
) -> Deployment:
    """The pipeline, an alarm topic (plus more ARNs when ``topics`` > 1) and ``alarm_notifier`` as in __main__."""
    from stack import CidbPipeline
    from stack.notifier import alarm_notifier

    pulumi_mocks.install()
    pulumi.runtime.set_all_config({f"{PROJECT}:{key}": value for key, value in config.items()})
    MONITOR.resources.clear()
    built: dict[str, Any] = {}

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        settings = read_settings()
        pipeline = CidbPipeline("cidb", settings.spec)
        topic = pulumi_aws.sns.Topic("alarm-topic", name="cidb-dev-alarms")
        arns = {Route.TICKET: topic.arn, **({Route.PAGE: PAGE_TOPIC} if topics > 1 else {})}
        built["notifier"] = alarm_notifier(
            "cidb-notifier", pipeline, settings.chat, topic_arns=arns, actions_for=actions_for
        )
        return pulumi.Output.all(**pipeline.outputs).apply(lambda values: built.update(outputs=values))

    program()
    resources = [Resource(r.urn, r.id, dict(r.state)) for r in MONITOR.resources.values()]
    return Deployment(None, built["notifier"], built["outputs"], resources)


@pytest.fixture(scope="module")
def with_chat() -> Deployment:
    return deploy_with_notifier(CHAT)


def notifier_function(deployment: Deployment) -> Resource:
    return deployment.one("aws:lambda/function:Function", "cidb-notifier")


def test_no_chat_format_creates_no_notifier():
    deployment = deploy_with_notifier({})
    names = [r.urn for r in deployment.resources if "notifier" in r.urn]
    assert names == [], f"no notifier without cidb:chatFormat, found {names}"


def test_notifier_runs_the_notifier_handler_from_the_shared_artifact(with_chat):
    fn = notifier_function(with_chat)
    reporter = with_chat.one("aws:lambda/function:Function", "cidb-reporter")
    assert fn.state["handler"] == "pipeline.notifier.handler", fn.urn
    assert fn.state["layers"] == reporter.state["layers"], f"{fn.urn} must use the pipeline's layer"
    assert fn.state["sourceCodeHash"] == reporter.state["sourceCodeHash"], f"{fn.urn} must run the same archive"


def test_subscribed_to_every_topic_with_sns_allowed_to_invoke():
    deployment = deploy_with_notifier(CHAT, topics=2)
    fn = notifier_function(deployment)
    subscriptions = [
        s for s in deployment.of_type("aws:sns/topicSubscription:TopicSubscription") if s.state["protocol"] == "lambda"
    ]
    assert len(subscriptions) == 2 and all(s.state["endpoint"] == fn.state["arn"] for s in subscriptions)
    topics = {s.state["topic"] for s in subscriptions}
    assert PAGE_TOPIC in topics and f"arn:aws:sns:{REGION}:{ACCOUNT}:cidb-dev-alarms" in topics
    permissions = [p for p in deployment.of_type("aws:lambda/permission:Permission") if "cidb-notifier" in p.urn]
    assert {(p.state["principal"], p.state["sourceArn"]) for p in permissions} == {
        ("sns.amazonaws.com", topic) for topic in topics
    }, "each topic needs its own lambda:InvokeFunction permission"


def test_environment_names_the_secret_but_holds_no_url_and_fits_lambdas_limit(with_chat):
    variables = notifier_function(with_chat).state["environment"]["variables"]
    assert variables[env_names.ENV_WEBHOOK_SECRET] == SECRET
    assert variables[env_names.ENV_CHAT_FORMAT] == "slack"
    assert not any("://" in str(v) and "sqs." not in str(v) for v in variables.values()), variables
    size = sum(len(k) + len(str(v)) for k, v in variables.items())
    assert size < LAMBDA_ENV_LIMIT / 4, f"notifier environment is {size} bytes; Lambda allows {LAMBDA_ENV_LIMIT}"


def test_routing_table_is_an_ssm_parameter_the_function_reads(with_chat):
    parameter = with_chat.one("aws:ssm/parameter:Parameter", "cidb-notifier-routes")
    variables = notifier_function(with_chat).state["environment"]["variables"]
    assert variables[env_names.ENV_ALARM_ROUTES_PARAMETER] == parameter.state["name"]
    value = parameter.state["value"]
    value = value["value"] if isinstance(value, dict) else value  # pulumi_aws marks Parameter.value secret
    table = decode_routes(base64.b64decode(value))
    assert table["alarms"]["dlq-depth-critical"] == ["dlq-depth", "reporter-errors"]
    assert table["alarms"]["notifier-dlq-depth-warning"] == [
        "notifier-dlq",
        "reporter-errors",
        [notifier_function(with_chat).state["loggingConfig"]["logGroup"]],
    ], "the notifier's own alarm queries the notifier's log group"
    assert parameter.state["tier"] == parameter_tier(value) == "Standard", f"{len(value)} bytes"


@pytest.mark.parametrize("profile", ["tuned", "seed"])
def test_routing_table_fits_its_parameter_with_room_to_grow(profile):
    size = len(notifier_routes(build_spec(profile)).encode())
    assert size < STANDARD_PARAMETER_BYTES * 0.6, f"{profile}: routing table is {size} bytes"


def test_policy_reads_only_the_named_secret(with_chat):
    policy = with_chat.one("aws:iam/rolePolicy:RolePolicy", "cidb-notifier-policy")
    statements = {s["Sid"]: s for s in with_chat.document(policy)["Statement"]}
    secret_arn = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{SECRET}-??????"
    reads = [s for s in statements.values() if any(a.startswith("secretsmanager:") for a in s["Action"])]
    assert reads == [statements["ReadWebhookSecret"]], f"{policy.urn}: one secret statement"
    assert statements["ReadWebhookSecret"]["Action"] == ["secretsmanager:GetSecretValue"]
    assert statements["ReadWebhookSecret"]["Resource"] == [secret_arn], policy.urn
    decrypt = statements["DecryptWebhookSecretOnly"]
    assert decrypt["Condition"] == {
        "StringEquals": {"kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com"},
        "StringLike": {"kms:EncryptionContext:SecretARN": secret_arn},
    }, f"{policy.urn}: kms:Decrypt only through Secrets Manager, only for this secret"
    actions = sorted(a for s in statements.values() for a in s["Action"])
    assert actions == sorted(
        [
            "secretsmanager:GetSecretValue",
            "kms:Decrypt",
            "ssm:GetParameter",
            "sqs:ReceiveMessage",
            "sqs:ChangeMessageVisibility",
            "sqs:SendMessage",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "xray:PutTraceSegments",
            "xray:PutTelemetryRecords",
        ]
    ), f"{policy.urn}: exactly the notifier's calls"
    assert statements["PeekPipelineDlq"]["Resource"] == [with_chat.outputs["dlq_arn"]]


def test_secret_given_as_arn_is_used_as_is():
    arn = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:cidb/chat-webhook-AbCdEf"
    deployment = deploy_with_notifier({"chatFormat": "teams", "chatWebhookSecret": arn})
    policy = deployment.one("aws:iam/rolePolicy:RolePolicy", "cidb-notifier-policy")
    statements = {s["Sid"]: s for s in deployment.document(policy)["Statement"]}
    assert statements["ReadWebhookSecret"]["Resource"] == [arn], policy.urn


def test_failed_deliveries_end_in_an_encrypted_alarmed_queue(with_chat):
    fn = notifier_function(with_chat)
    [config] = with_chat.of_type("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig")
    assert config.state["functionName"] == fn.state["name"]
    assert config.state["maximumRetryAttempts"] == 2, config.urn
    queue = with_chat.one("aws:sqs/queue:Queue", "cidb-notifier-dlq")
    assert config.state["destinationConfig"]["onFailure"]["destination"] == queue.state["arn"], config.urn
    assert queue.state["sqsManagedSseEnabled"] is True, f"{queue.urn} must be encrypted"
    alarm = with_chat.one("aws:cloudwatch/metricAlarm:MetricAlarm", "notifier-dlq-depth")
    assert alarm.state["dimensions"] == {"QueueName": queue.state["name"]}, alarm.urn
    assert alarm.state["metricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm.state["comparisonOperator"] == "GreaterThanOrEqualToThreshold" and alarm.state["threshold"] == 1
    assert alarm.state["alarmActions"] == [f"arn:aws:sns:{REGION}:{ACCOUNT}:cidb-dev-alarms"], alarm.urn
    assert "docs/runbook.md#notifier-dlq" in alarm.state["alarmDescription"]


def test_the_notifiers_own_alarm_tickets_and_never_pages():
    deployment = deploy_with_notifier(CHAT, topics=2, actions_for=(Severity.PAGE, Severity.CRITICAL))
    alarm = deployment.one("aws:cloudwatch/metricAlarm:MetricAlarm", "notifier-dlq-depth")
    assert PAGE_TOPIC not in alarm.state["alarmActions"] + alarm.state["okActions"], alarm.urn
    assert alarm.state["actionsEnabled"] is False, f"{alarm.urn}: this stack switched warning actions off"


def test_a_secret_in_another_account_is_decrypted_with_that_accounts_keys():
    other = "arn:aws:secretsmanager:eu-west-1:210987654321:secret:shared/chat-webhook-AbCdEf"
    deployment = deploy_with_notifier({"chatFormat": "slack", "chatWebhookSecret": other})
    policy = deployment.one("aws:iam/rolePolicy:RolePolicy", "cidb-notifier-policy")
    decrypt = {s["Sid"]: s for s in deployment.document(policy)["Statement"]}["DecryptWebhookSecretOnly"]
    assert decrypt["Resource"] == ["arn:aws:kms:eu-west-1:210987654321:key/*"], policy.urn
    assert decrypt["Condition"]["StringEquals"] == {"kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com"}


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"chatFormat": "discord", "chatWebhookSecret": SECRET}, "chatFormat"),
        ({"chatFormat": "slack"}, "chatWebhookSecret"),
        ({"chatWebhookSecret": SECRET}, "chatWebhookSecret"),
        ({"chatFormat": "teams", "chatWebhookSecret": "https://example.webhook.office.com/x"}, "chatWebhookSecret"),
        ({"chatFormat": "json", "chatWebhookSecret": "has spaces"}, "chatWebhookSecret"),
    ],
)
def test_bad_chat_config_is_one_line_naming_the_key(config, key):
    pulumi.runtime.set_all_config({f"{NAMESPACE}:{k}": v for k, v in config.items()})
    with pytest.raises(StackConfigError) as error:
        read_settings()
    message = str(error.value)
    assert f"{NAMESPACE}:{key}" in message and "\n" not in message, message
    assert "https://example.webhook.office.com/x" not in message, "the URL is a secret: never echo it"
