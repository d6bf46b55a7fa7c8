"""Stack configuration -> a validated DeploymentSpec plus notification settings.

Every ``cidb:*`` key is declared in Pulumi.yaml with a description and a default. Keys that
tune the spec default to ``profile``, meaning "the profile's own value", so choosing
``cidb:profile seed`` is never undone by a default written for ``tuned``.

Example::

    $ pulumi config set cidb:batchSize 10
    $ pulumi config set cidb:schedule off
    $ pulumi config set --path 'cidb:loadTestPrincipalArns[0]' arn:aws:iam::123456789012:role/cidb-operator
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pulumi

from pipeline.alarm_message import CHAT_FORMATS
from pipeline.spec import DEFAULT_PROFILE, OFF, PROFILES, DeploymentSpec, SpecError, build_spec, parse_override
from stack.storage import BUCKET_PREFIX_MAX, bucket_prefix

NAMESPACE = "cidb"
FROM_PROFILE = "profile"

# Config key -> pipeline.spec.OVERRIDES key; the value's type comes from OVERRIDES.
OVERRIDE_KEYS: dict[str, str] = {
    "batchSize": "queue.batch_size",
    "batchingWindowSeconds": "queue.batching_window_seconds",
    "maxConcurrency": "queue.max_concurrency",
    "visibilityTimeoutSeconds": "queue.visibility_timeout_seconds",
    "maxReceiveCount": "queue.max_receive_count",
    "collectorTimeoutSeconds": "collector.timeout_seconds",
    "collectorMemoryMb": "collector.memory_mb",
    "reporterTimeoutSeconds": "reporter.timeout_seconds",
    "reporterMemoryMb": "reporter.memory_mb",
    "lockTimeoutSeconds": "lock.timeout_seconds",
    "lockMaxAttempts": "lock.max_attempts",
    "lockBaseBackoffSeconds": "lock.base_backoff_seconds",
    "lockJitterFactor": "lock.jitter_factor",
    "lockMaxBackoffSeconds": "lock.max_backoff_seconds",
    "rowsPerFile": "output.rows_per_file",
    "heartbeatHours": "alarms.heartbeat_hours",
    "runbookUrl": "alarms.runbook_url",
}
OTHER_KEYS = (
    "profile",
    "environment",
    "prefix",
    "schedule",
    "tracing",
    "alarmEmails",
    "pageEmails",
    "alarmWebhookUrl",
    "alarmActions",
    "loadTestPrincipalArns",
    "chatFormat",
    "chatWebhookSecret",
)
# Alarm severities, as monitoring.Severity values: "page" (the composite, data loss) pages, the others ticket.
SEVERITIES = ("page", "critical", "warning")
CONFIG_KEYS = (*OTHER_KEYS, *OVERRIDE_KEYS)

_NAME = re.compile(r"^[a-z](?:[a-z0-9-]*[a-z0-9])?$")
_SCHEDULE = re.compile(r"^(rate|cron)\(.+\)$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# An IAM role or user ARN in any partition, with an optional path (SSO roles live under one).
_PRINCIPAL_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/[A-Za-z0-9+=,.@_/-]+$")
# A Secrets Manager secret's name, or its full ARN (which ends in a 6-character random suffix).
_SECRET_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
_SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$")
NO_CHAT = "none"


class StackConfigError(pulumi.RunError):
    """Stack configuration that cannot describe a deployment; the message names the key."""


@dataclass(frozen=True)
class Notifications:
    """Where alarms go; read here, used by the monitoring component.

    ``emails`` get tickets, ``page_emails`` and ``webhook_url`` (PagerDuty, Opsgenie) get pages;
    ``severities`` are the alarm severities whose actions are enabled.
    """

    emails: tuple[str, ...] = ()
    webhook_url: str | None = None
    page_emails: tuple[str, ...] = ()
    severities: tuple[str, ...] = SEVERITIES


@dataclass(frozen=True)
class StackSettings:
    spec: DeploymentSpec
    notifications: Notifications
    # IAM roles/users (e.g. the operator running `cidb loadtest --target stack`) that may use
    # the topic's KMS key to publish; empty means only the collector publishes.
    load_test_principal_arns: tuple[str, ...] = ()
    # Alarm messages to a chat webhook through stack.notifier.AlarmNotifier; None: no notifier.
    chat: ChatNotifications | None = None


@dataclass(frozen=True)
class ChatNotifications:
    """``cidb:chatFormat`` and ``cidb:chatWebhookSecret``: the secret's name or ARN, never the URL."""

    chat_format: str  # one of pipeline.alarm_message.CHAT_FORMATS
    webhook_secret: str  # Secrets Manager secret name or ARN


def read_settings(config: pulumi.Config | None = None, *, stack: str | None = None) -> StackSettings:
    """Read every ``cidb:*`` key, validate it, and build the spec; bad values name their key."""
    config = config or pulumi.Config(NAMESPACE)
    values = {key: config.get(key) for key in CONFIG_KEYS}
    profile = values["profile"] or DEFAULT_PROFILE
    if profile not in PROFILES:
        raise StackConfigError(f"{_full('profile')}={profile!r} must be one of {PROFILES}")
    prefix = _name("prefix", values["prefix"] or NAMESPACE)
    environment = _name("environment", values["environment"] or stack or pulumi.get_stack())
    overrides = {
        OVERRIDE_KEYS[key]: _override(key, raw) for key, raw in values.items() if key in OVERRIDE_KEYS and _set(raw)
    }
    top_level: dict[str, Any] = {}
    if _set(values["schedule"]):
        top_level["schedule_expression"] = _schedule(values["schedule"])
    if _set(values["tracing"]):
        top_level["tracing"] = _bool("tracing", values["tracing"])
    try:
        spec = build_spec(profile, prefix=prefix, environment=environment, overrides=overrides, **top_level)
    except SpecError as err:
        in_effect = ", ".join(_describe(key, raw) for key, raw in values.items() if _set(raw)) or "none set"
        raise StackConfigError(f"{err}\nstack configuration in effect: {in_effect}") from None
    if len(bucket_prefix(spec)) > BUCKET_PREFIX_MAX:
        raise StackConfigError(
            f"{_full('prefix')}={prefix!r} with {_full('environment')}={environment!r} makes the bucket prefix "
            f"{bucket_prefix(spec)!r} longer than S3's {BUCKET_PREFIX_MAX} characters; shorten one of them"
        )
    return StackSettings(
        spec=spec,
        notifications=_notifications(
            values["alarmEmails"], values["pageEmails"], values["alarmWebhookUrl"], values["alarmActions"]
        ),
        load_test_principal_arns=_principal_arns(values["loadTestPrincipalArns"]),
        chat=_chat(values["chatFormat"] or NO_CHAT, values["chatWebhookSecret"] or None),
    )


def _full(key: str) -> str:
    return f"{NAMESPACE}:{key}"


def _describe(key: str, raw: str) -> str:
    return f"{_full(key)}={raw!r}" + (f" ({OVERRIDE_KEYS[key]})" if key in OVERRIDE_KEYS else "")


def _set(raw: str | None) -> bool:
    return raw not in (None, "", FROM_PROFILE)


def _override(key: str, raw: str) -> Any:
    try:
        return parse_override(OVERRIDE_KEYS[key], raw)
    except SpecError as err:
        raise StackConfigError(
            f"{_full(key)}={err}; fix it with `pulumi config set {_full(key)} <value>` "
            f"or use the profile's value with `pulumi config rm {_full(key)}`"
        ) from None


def _name(key: str, raw: str) -> str:
    if not _NAME.match(raw):
        raise StackConfigError(
            f"{_full(key)}={raw!r} must be lower-case letters, digits and hyphens, starting with a letter "
            "(it becomes part of every resource name)"
        )
    return raw


def _schedule(raw: str) -> str | None:
    if raw == OFF:
        return None
    if not _SCHEDULE.match(raw):
        raise StackConfigError(
            f"{_full('schedule')}={raw!r} must be an EventBridge expression such as 'rate(1 day)' or "
            f"'cron(0 6 * * ? *)', or {OFF!r} to disable the schedule"
        )
    return raw


def _bool(key: str, raw: str) -> bool:
    lowered = raw.lower()
    if lowered not in ("true", "false"):
        raise StackConfigError(f"{_full(key)}={raw!r} must be true, false or {FROM_PROFILE!r}")
    return lowered == "true"


def _notifications(
    emails_raw: str | None, page_emails_raw: str | None, webhook_raw: str | None, actions_raw: str | None
) -> Notifications:
    if webhook_raw and not webhook_raw.startswith("https://"):
        raise StackConfigError(f"{_full('alarmWebhookUrl')}={webhook_raw!r} must be an https:// URL or empty")
    return Notifications(
        emails=_emails("alarmEmails", emails_raw),
        webhook_url=webhook_raw or None,
        page_emails=_emails("pageEmails", page_emails_raw),
        severities=_severities(actions_raw),
    )


def _emails(key: str, raw: str | None) -> tuple[str, ...]:
    try:
        emails = json.loads(raw) if raw else []
    except json.JSONDecodeError:
        emails = None
    if not isinstance(emails, list) or not all(isinstance(e, str) and _EMAIL.match(e) for e in emails):
        raise StackConfigError(
            f"{_full(key)}={raw!r} must be a list of e-mail addresses; set one with "
            f"`pulumi config set --path '{_full(key)}[0]' oncall@example.com`"
        )
    return tuple(emails)


def _severities(raw: str | None) -> tuple[str, ...]:
    """Unset means every severity notifies; an empty list silences them all (the alarms still change state)."""
    key = _full("alarmActions")
    try:
        severities = json.loads(raw) if raw else list(SEVERITIES)
    except json.JSONDecodeError:
        severities = None
    if not isinstance(severities, list) or not set(severities) <= set(SEVERITIES):
        raise StackConfigError(
            f"{key}={raw!r} must be a list of alarm severities from {list(SEVERITIES)} whose alarms notify; "
            f"e.g. a dev stack that does not page: `pulumi config set --path '{key}[0]' critical` and "
            f"`pulumi config set --path '{key}[1]' warning`"
        )
    return tuple(s for s in SEVERITIES if s in severities)


def _principal_arns(raw: str | None) -> tuple[str, ...]:
    key = _full("loadTestPrincipalArns")
    try:
        arns = json.loads(raw) if raw else []
    except json.JSONDecodeError:
        arns = None
    if not isinstance(arns, list) or not all(isinstance(a, str) for a in arns):
        raise StackConfigError(
            f"{key}={raw!r} must be a list of IAM role or user ARNs; set one with "
            f"`pulumi config set --path '{key}[0]' arn:aws:iam::123456789012:role/cidb-operator`"
        )
    bad = [a for a in arns if not _PRINCIPAL_ARN.match(a)]
    if bad:
        what = "is not an IAM role or user ARN" if len(bad) == 1 else "are not IAM role or user ARNs"
        raise StackConfigError(
            f"{key}: {', '.join(map(repr, bad))} {what}; use arn:<partition>:iam::<account>:role/<name> or "
            "arn:<partition>:iam::<account>:user/<name> (for an assumed-role session, "
            "arn:<partition>:sts::<account>:assumed-role/<role>/<session>, give the role's ARN)"
        )
    return tuple(dict.fromkeys(arns))


def _chat(chat_format: str, secret: str | None) -> ChatNotifications | None:
    """A chat format needs the name of the secret that holds its webhook URL, and never the URL itself."""
    fmt, key = _full("chatFormat"), _full("chatWebhookSecret")
    if chat_format not in (NO_CHAT, *CHAT_FORMATS):
        raise StackConfigError(
            f"{fmt}={chat_format!r} must be one of {(NO_CHAT, *CHAT_FORMATS)}; e.g. `pulumi config set {fmt} slack`"
        )
    if secret and "://" in secret:
        raise StackConfigError(
            f"{key} must name a Secrets Manager secret, not hold the URL; store the URL with "
            "`aws secretsmanager create-secret --name cidb/chat-webhook --secret-string <url>` and set the name"
        )
    if secret and not (_SECRET_ARN.match(secret) or _SECRET_NAME.match(secret)):
        raise StackConfigError(f"{key}={secret!r} must be a Secrets Manager secret name or its full ARN")
    if chat_format == NO_CHAT:
        if secret:
            raise StackConfigError(
                f"{key} is set but {fmt} is {NO_CHAT!r}; `pulumi config set {fmt} slack` (or another format) "
                f"or `pulumi config rm {key}`"
            )
        return None
    if not secret:
        raise StackConfigError(
            f"{fmt}={chat_format!r} needs {key}: the Secrets Manager secret holding the webhook URL; "
            f"`pulumi config set {key} cidb/chat-webhook` (see docs/deploy.md)"
        )
    return ChatNotifications(chat_format, secret)
