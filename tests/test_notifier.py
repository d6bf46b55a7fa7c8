"""The alarm notifier end to end: moto's Secrets Manager, SSM and SQS over HTTP, a real local webhook."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from emulated import lambda_context

from artifact import build_artifact
from loadtest.emulator.aws_session import AwsSession
from monitoring import build_monitoring
from monitoring.alarm_links import routing_table
from pipeline import env as env_names
from pipeline.alarm_message import encode_routes
from pipeline.notifier import DeliveryError, NotifierSettings, handler
from pipeline.settings import ConfigError
from pipeline.spec import build_spec
from queries import load_query

FIXTURES = Path(__file__).parent / "fixtures"
POISON = ["not json", "not json either", "[1, 2]"]


@dataclass
class Webhook:
    """A chat webhook on 127.0.0.1 that keeps every POST and answers ``status``."""

    url: str
    status: int = 200
    bodies: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            hook.bodies.append(json.loads(self.rfile.read(length)))
            self.send_response(hook.status)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            """Quiet: pytest shows the asserts."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/T000/B000"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield hook
    server.shutdown()
    server.server_close()


@dataclass
class Notifier:
    aws: AwsSession
    dlq_url: str


@pytest.fixture
def notifier(aws: AwsSession, webhook: Webhook, monkeypatch: pytest.MonkeyPatch) -> Notifier:
    """What the stack deploys: the secret, the routing parameter, the pipeline's DLQ and the environment."""
    spec = build_spec("tuned")
    # Unique names per test: Powertools caches values by name for five minutes, as it does on Lambda.
    secret = f"cidb-dev/chat-webhook-{uuid.uuid4().hex[:8]}"
    parameter = f"/cidb-dev/alarm-routes-{uuid.uuid4().hex[:8]}"
    aws.client("secretsmanager").create_secret(Name=secret, SecretString=webhook.url)
    aws.client("ssm").put_parameter(
        Name=parameter,
        Type="String",
        Value=encode_routes(routing_table(spec, build_monitoring(spec))),
    )
    dlq_url = aws.client("sqs").create_queue(QueueName=spec.dlq_name)["QueueUrl"]
    environment = {
        **aws.function_environment(),
        "POWERTOOLS_SERVICE_NAME": "cidb-tests",
        env_names.ENV_CHAT_FORMAT: "slack",
        env_names.ENV_WEBHOOK_SECRET: secret,
        env_names.ENV_ALARM_ROUTES_PARAMETER: parameter,
        env_names.ENV_DLQ_URL: dlq_url,
        env_names.ENV_RUNBOOK_BASE: "https://wiki.example.com/cidb/runbook",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return Notifier(aws, dlq_url)


def sns_event(fixture: str) -> dict[str, Any]:
    return json.loads((FIXTURES / fixture).read_text())


def test_dlq_alarm_reaches_the_webhook_with_links_and_top_dlq_errors(notifier: Notifier, webhook: Webhook):
    # GIVEN poison messages parked in the pipeline's DLQ
    sqs = notifier.aws.client("sqs")
    for body in POISON:
        sqs.send_message(QueueUrl=notifier.dlq_url, MessageBody=body)
    # WHEN the DLQ-depth alarm's SNS event invokes the notifier
    result = handler(sns_event("sns-alarm-dlq-depth.json"), lambda_context("cidb-dev-alarm-notifier"))
    # THEN one Slack message arrived with the alarm, its links and the DLQ's errors grouped
    assert result == {"posted": 1, "skipped": 0}
    [body] = webhook.bodies
    assert body["text"] == "ALARM: cidb-dev-dlq-depth-critical (critical)"
    text = json.dumps(body)
    assert "<https://wiki.example.com/cidb/runbook#dlq-depth|Runbook>" in text
    assert "#dashboards/dashboard/cidb-dev-queue|Dashboard cidb-dev-queue>" in text
    assert "#logsV2:logs-insights$3FqueryDetail$3D" in text
    assert body["blocks"][-1]["text"]["text"].splitlines() == [
        "*DLQ*",
        "• 2 messages: message body is not JSON: Expecting value at position 0 (received 0 times)",
        "• 1 messages: message body must be a JSON object (received 0 times)",
    ]
    # AND peeking left every poison message in the DLQ, visible
    attributes = sqs.get_queue_attributes(QueueUrl=notifier.dlq_url, AttributeNames=["All"])["Attributes"]
    assert (attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesNotVisible"]) == (
        "3",
        "0",
    )


def test_an_unreadable_dlq_is_said_and_the_message_still_goes_out(
    notifier: Notifier, webhook: Webhook, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv(env_names.ENV_DLQ_URL, notifier.dlq_url.replace("policies-dlq", "no-such-queue"))
    handler(sns_event("sns-alarm-dlq-depth.json"), lambda_context())
    [body] = webhook.bodies
    assert "Top DLQ errors unavailable: could not read the DLQ (" in body["blocks"][-1]["text"]["text"]


@pytest.mark.parametrize("chat_format", ["teams", "json"])
def test_composite_alarm_in_each_format(
    notifier: Notifier, webhook: Webhook, monkeypatch: pytest.MonkeyPatch, chat_format: str
):
    monkeypatch.setenv(env_names.ENV_CHAT_FORMAT, chat_format)
    handler(sns_event("sns-alarm-composite.json"), lambda_context())
    [body] = webhook.bodies
    text = json.dumps(body)
    assert "ALARM: cidb-dev-pipeline-unhealthy-page (page)" in text
    assert "https://wiki.example.com/cidb/runbook#pipeline-unhealthy" in text
    assert "Triggered by: cidb-dev-dlq-depth-critical." in text
    assert load_query("trace-run").name in text
    if chat_format == "teams":
        assert body["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    else:
        assert set(body["links"]) >= {"Runbook", "Dashboard cidb-dev-summary", "Alarm"}


def test_a_failing_webhook_makes_the_handler_raise(notifier: Notifier, webhook: Webhook):
    webhook.status = 500
    with pytest.raises(DeliveryError, match="HTTP 500"):
        handler(sns_event("sns-alarm-dlq-depth.json"), lambda_context())
    assert len(webhook.bodies) == 1, "the webhook was called once; Lambda's async retries do the rest"


def test_insufficient_data_is_not_posted(notifier: Notifier, webhook: Webhook):
    event = sns_event("sns-alarm-dlq-depth.json")
    sns = event["Records"][0]["Sns"]
    sns["Message"] = sns["Message"].replace('"NewStateValue": "ALARM"', '"NewStateValue": "INSUFFICIENT_DATA"')
    assert handler(event, lambda_context()) == {"posted": 0, "skipped": 1}
    assert webhook.bodies == []


def test_the_handler_imports_from_the_lambda_artifact_alone():
    """The locked Powertools (3.37.0) has every API the notifier uses: checked on the artifact, not the venv."""
    task, opt = build_artifact().unpacked()
    code = f"import sys; sys.path[:0] = [{str(task)!r}, {str(opt / 'python')!r}]\nimport pipeline.notifier"
    done = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-1500:]


def test_missing_or_bad_environment_names_the_variable():
    with pytest.raises(ConfigError, match=env_names.ENV_WEBHOOK_SECRET):
        NotifierSettings.from_env({env_names.ENV_CHAT_FORMAT: "slack", env_names.ENV_ALARM_ROUTES_PARAMETER: "/p"})
    with pytest.raises(ConfigError, match=f"{env_names.ENV_CHAT_FORMAT}='discord'"):
        NotifierSettings.from_env(
            {
                env_names.ENV_CHAT_FORMAT: "discord",
                env_names.ENV_WEBHOOK_SECRET: "s",
                env_names.ENV_ALARM_ROUTES_PARAMETER: "/p",
            }
        )
