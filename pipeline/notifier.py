"""Alarm notifier Lambda: CloudWatch alarm state changes on SNS -> one chat message each.

Chat webhooks (Slack, Teams, Google Chat, a generic JSON endpoint) cannot read an SNS envelope or confirm a
subscription, so this function, subscribed to the alarm topic(s), posts what on-call can act on
(see :mod:`pipeline.alarm_message`). A DLQ alarm also shows the DLQ's top errors, read without
consuming the messages (:func:`pipeline.dlq_messages.peek_messages`); failing to read them is said
in the message and does not stop it. A failed delivery raises, so Lambda's asynchronous retries
and then the notifier's own DLQ take over.

Environment variables
---------------------
CIDB_CHAT_FORMAT             ``slack``, ``teams``, ``googlechat`` or ``json``
CIDB_WEBHOOK_SECRET          name or ARN of the Secrets Manager secret holding the webhook URL (read, cached)
CIDB_ALARM_ROUTES_PARAMETER  SSM parameter holding the routing table (``monitoring.alarm_links.routing_table``)
CIDB_DLQ_URL                 the pipeline's DLQ, peeked for DLQ alarms (optional)
CIDB_RUNBOOK_BASE            runbook URL without the anchor (default ``docs/runbook.md``)
"""

from __future__ import annotations

import functools
import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider, SSMProvider
from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline import aws
from pipeline.alarm_message import (
    CHAT_FORMATS,
    DEFAULT_RUNBOOK_BASE,
    NOTIFIED_STATES,
    DlqSummary,
    Routing,
    build_message,
    decode_routes,
    parse_alarm,
    render,
)
from pipeline.dlq_messages import group_by_error, peek_messages
from pipeline.env import (
    ENV_ALARM_ROUTES_PARAMETER,
    ENV_CHAT_FORMAT,
    ENV_DLQ_URL,
    ENV_RUNBOOK_BASE,
    ENV_WEBHOOK_SECRET,
)
from pipeline.settings import ConfigError
from pipeline.telemetry import make_logger

logger = make_logger()

# A rotated webhook URL or a new routing table is picked up within five minutes.
CACHE_SECONDS = 300
POST_TIMEOUT_SECONDS = 10
DLQ_PEEK_LIMIT = 50
DLQ_HOLD_SECONDS = 30


class DeliveryError(RuntimeError):
    """The webhook refused or did not answer; raised so Lambda retries the event."""


@dataclass(frozen=True)
class NotifierSettings:
    chat_format: str
    webhook_secret: str
    routes_parameter: str
    dlq_url: str | None
    runbook_base: str

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> NotifierSettings:
        env = dict(os.environ if env is None else env)
        missing = [k for k in (ENV_CHAT_FORMAT, ENV_WEBHOOK_SECRET, ENV_ALARM_ROUTES_PARAMETER) if not env.get(k)]
        if missing:
            raise ConfigError(f"the notifier needs {missing} in its environment (the stack's AlarmNotifier sets them)")
        if env[ENV_CHAT_FORMAT] not in CHAT_FORMATS:
            raise ConfigError(f"{ENV_CHAT_FORMAT}={env[ENV_CHAT_FORMAT]!r} must be one of {CHAT_FORMATS}")
        return cls(
            chat_format=env[ENV_CHAT_FORMAT],
            webhook_secret=env[ENV_WEBHOOK_SECRET],
            routes_parameter=env[ENV_ALARM_ROUTES_PARAMETER],
            dlq_url=env.get(ENV_DLQ_URL) or None,
            runbook_base=env.get(ENV_RUNBOOK_BASE) or DEFAULT_RUNBOOK_BASE,
        )


@functools.cache
def _secrets() -> SecretsProvider:
    return SecretsProvider(boto_config=aws.RETRY_CONFIG)


@functools.cache
def _ssm() -> SSMProvider:
    return SSMProvider(boto_config=aws.RETRY_CONFIG)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    settings = NotifierSettings.from_env()
    routing = Routing(decode_routes(_ssm().get(settings.routes_parameter, transform="binary", max_age=CACHE_SECONDS)))
    posted = skipped = 0
    for record in event.get("Records", []):
        alarm = parse_alarm(record["Sns"]["Message"])
        logger.append_keys(alarm=alarm.name, state=alarm.new_state)
        if alarm.new_state not in NOTIFIED_STATES:
            logger.info("state not notified", extra={"notified_states": NOTIFIED_STATES})
            skipped += 1
            continue
        route = routing.route(alarm.name)
        if route is None:
            logger.warning("alarm not in the routing table; message sent without runbook, dashboard or query links")
        dlq = _dlq_summary(settings.dlq_url) if route and route.dlq and alarm.new_state == "ALARM" else None
        message = build_message(alarm, route, runbook_base=settings.runbook_base, dlq=dlq)
        _post(_webhook_url(settings.webhook_secret), render(settings.chat_format, message))
        logger.info("alarm notification delivered", extra={"chat_format": settings.chat_format})
        posted += 1
    return {"posted": posted, "skipped": skipped}


def _webhook_url(secret: str) -> str:
    url = _secrets().get(secret, max_age=CACHE_SECONDS).strip()
    if not url.startswith(("https://", "http://")):
        # Never log the value: it is the secret.
        raise ConfigError(f"secret {secret!r} must hold the webhook URL (https://...) as plain text")
    return url


def _dlq_summary(dlq_url: str | None) -> DlqSummary:
    """Best effort: the message goes out whatever happens here, saying why the errors are missing."""
    if not dlq_url:
        return DlqSummary(error=f"{ENV_DLQ_URL} is not set")
    try:
        messages = peek_messages(aws.client("sqs"), dlq_url, limit=DLQ_PEEK_LIMIT, hold_seconds=DLQ_HOLD_SECONDS)
    except Exception as exc:  # any failure to read the DLQ must not stop the alarm message
        logger.warning("could not peek the DLQ", extra={"error": f"{type(exc).__name__}: {exc}"})
        return DlqSummary(error=f"could not read the DLQ ({aws.error_code(exc)})")
    return DlqSummary(groups=tuple(group_by_error(messages)))


def _post(url: str, payload: dict[str, Any]) -> None:
    """POST JSON; anything but a 2xx answer raises :class:`DeliveryError` (the URL is never in the message)."""
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=POST_TIMEOUT_SECONDS) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"webhook answered HTTP {exc.code}; Lambda retries the event") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"webhook not reached ({type(reason).__name__}); Lambda retries the event") from None
    if not 200 <= status < 300:
        raise DeliveryError(f"webhook answered HTTP {status}; Lambda retries the event")
