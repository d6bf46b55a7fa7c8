"""CloudWatch alarm state changes -> short chat messages with the links on-call needs. Pure: no I/O.

A chat webhook (Slack, Microsoft Teams, Google Chat, a generic JSON endpoint) cannot read an SNS envelope, so the
notifier (:mod:`pipeline.notifier`) parses the alarm JSON here and renders one message: the alarm,
its severity (the last part of its name, see ``monitoring.naming.alarm_name``), the new state and
the reason, with links to the runbook entry, the alarm's dashboard and the saved Logs Insights query
over the alarm's time window. Which dashboard and query belong to which alarm comes from the routing
table that the stack builds from ``monitoring.alarm_links``.

Example::

    >>> event = parse_alarm('{"AlarmName": "cidb-dev-dlq-depth-critical", "NewStateValue": "OK",'
    ...     ' "NewStateReason": "fine", "StateChangeTime": "2026-12-02T02:10:00.000+0000",'
    ...     ' "AlarmArn": "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:cidb-dev-dlq-depth-critical"}')
    >>> (event.severity, event.region)
    ('critical', 'eu-west-1')
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

__all__ = [
    "CHAT_FORMATS",
    "AlarmEvent",
    "AlarmMessage",
    "AlarmMessageError",
    "DlqSummary",
    "Route",
    "Routing",
    "build_message",
    "dashboard_url",
    "logs_insights_url",
    "parse_alarm",
    "render",
]

NOTIFIED_STATES = ("ALARM", "OK")
SEVERITIES = ("critical", "warning", "page")
DEFAULT_RUNBOOK_BASE = "docs/runbook.md"
# After the state change, so the log lines written while the alarm fired are in the window too.
WINDOW_AFTER = timedelta(minutes=5)
# A composite alarm has no period of its own (nor does a metric-math alarm at the top of its Trigger); the
# children alarm on periods of at most 5 minutes (except the daily heartbeat), so half an hour covers them.
DEFAULT_LOOKBACK = timedelta(minutes=30)
TOP_DLQ_ERRORS = 3


class AlarmMessageError(ValueError):
    """An SNS message that is not a CloudWatch alarm state change; the message says what is missing."""


@dataclass(frozen=True)
class AlarmEvent:
    """One alarm state change, metric or composite alike."""

    name: str
    new_state: str
    old_state: str
    reason: str
    changed_at: datetime
    region: str
    description: str = ""
    period_seconds: int | None = None  # metric alarms only
    evaluation_periods: int | None = None  # metric alarms only
    rule: str = ""  # composite alarms only
    triggering_children: tuple[str, ...] = ()  # composite alarms only

    @property
    def composite(self) -> bool:
        return bool(self.rule)

    @property
    def severity(self) -> str:
        last = self.name.rsplit("-", 1)[-1]
        return last if last in SEVERITIES else "unknown"

    def window(self) -> tuple[datetime, datetime]:
        """The time the alarm looked at, plus a few minutes after it changed state."""
        if self.period_seconds is None:
            lookback = DEFAULT_LOOKBACK
        else:
            lookback = timedelta(seconds=self.period_seconds * (self.evaluation_periods or 1))
        return self.changed_at - lookback, self.changed_at + WINDOW_AFTER


def parse_alarm(message: str) -> AlarmEvent:
    """The ``Sns.Message`` of an alarm notification; metric alarms carry ``Trigger``, composites ``AlarmRule``."""
    try:
        body = json.loads(message)
    except json.JSONDecodeError as exc:
        raise AlarmMessageError(f"SNS message is not JSON ({exc.msg}); expected an alarm state change") from None
    if not isinstance(body, dict):
        raise AlarmMessageError("SNS message is JSON but not an object; expected a CloudWatch alarm state change")
    missing = [k for k in ("AlarmName", "NewStateValue", "StateChangeTime", "AlarmArn") if k not in body]
    if missing:
        raise AlarmMessageError(f"SNS message lacks {missing}; expected a CloudWatch alarm state change")
    trigger = body.get("Trigger") or {}
    children = tuple(child["Arn"].rsplit(":alarm:", 1)[-1] for child in body.get("TriggeringChildren") or [])
    return AlarmEvent(
        name=body["AlarmName"],
        new_state=body["NewStateValue"],
        old_state=body.get("OldStateValue", ""),
        reason=body.get("NewStateReason", ""),
        changed_at=_timestamp(body["StateChangeTime"]),
        region=body["AlarmArn"].split(":")[3],
        description=body.get("AlarmDescription") or "",
        period_seconds=int(trigger["Period"]) if "Period" in trigger else None,
        evaluation_periods=int(trigger["EvaluationPeriods"]) if "EvaluationPeriods" in trigger else None,
        rule=body.get("AlarmRule") or "",
        triggering_children=children,
    )


def _timestamp(raw: str) -> datetime:
    """CloudWatch writes ``2026-12-02T02:10:00.000+0000``; fromisoformat reads it from Python 3.11 on."""
    try:
        return datetime.fromisoformat(raw).astimezone(UTC)
    except ValueError:
        raise AlarmMessageError(f"StateChangeTime={raw!r} is not an ISO 8601 time") from None


@dataclass(frozen=True)
class Route:
    """Where one alarm's links point."""

    anchor: str
    dashboard: str
    query_name: str  # the saved query's name in Logs Insights
    query_text: str
    log_groups: tuple[str, ...]
    dlq: bool = False


@dataclass(frozen=True)
class Routing:
    """The routing table built by ``monitoring.alarm_links.routing_table``, read back."""

    table: Mapping[str, Any]

    def route(self, alarm_name: str) -> Route | None:
        """None for an alarm the table does not know (e.g. added by hand): its message has no links."""
        alarms = self.table.get("alarms", {})
        entry = alarms.get(alarm_name.removeprefix(self.table.get("prefix", ""))) or alarms.get(alarm_name)
        if entry is None:
            return None
        anchor, query_key, *log_groups = entry
        query = self.table["queries"][query_key]
        meta = self.table["anchors"][anchor]
        return Route(
            anchor=anchor,
            dashboard=meta["dashboard"],
            query_name=query["name"],
            query_text=query["text"],
            log_groups=tuple(log_groups[0] if log_groups else query["log_groups"]),
            dlq=bool(meta.get("dlq")),
        )


def encode_routes(table: Mapping[str, Any]) -> str:
    """The routing table as stored in SSM: compressed JSON in base64, so that it fits the free 4 KB tier.

    The query texts make up most of it and compress well; stored plain it was close to the 8 KB of
    the paid tier and grew with every alarm.
    """
    raw = json.dumps(table, separators=(",", ":"), sort_keys=True).encode()
    return base64.b64encode(zlib.compress(raw, 9)).decode()


def decode_routes(stored: bytes) -> dict[str, Any]:
    """The inverse of :func:`encode_routes`, after Powertools' ``binary`` transform undid the base64."""
    return json.loads(zlib.decompress(stored))


@dataclass(frozen=True)
class DlqSummary:
    """The DLQ's largest error groups, or why they could not be read."""

    groups: tuple[tuple[str, int | None, int], ...] = ()  # (error, receive count, messages)
    error: str | None = None

    def lines(self) -> list[str]:
        if self.error:
            return [f"Top DLQ errors unavailable: {self.error}"]
        if not self.groups:
            return ["DLQ: no messages visible when checked"]
        return [
            f"{count} messages: {error}" + (f" (received {receives} times)" if receives is not None else "")
            for error, receives, count in self.groups[:TOP_DLQ_ERRORS]
        ]


@dataclass(frozen=True)
class AlarmMessage:
    """What every format shows; renderers only lay it out."""

    alarm: str
    severity: str
    state: str
    previous_state: str
    reason: str
    changed_at: str
    links: tuple[tuple[str, str], ...] = ()  # (label, url)
    dlq: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        return f"{self.state}: {self.alarm} ({self.severity})"


def console_base(region: str) -> str:
    return f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"


def dashboard_url(region: str, dashboard: str) -> str:
    return f"{console_base(region)}#dashboards/dashboard/{quote(dashboard, safe='')}"


def alarm_url(region: str, alarm: str) -> str:
    return f"{console_base(region)}#alarmsV2:alarm/{quote(alarm, safe='')}"


def logs_insights_url(region: str, query: str, log_groups: Sequence[str], start: datetime, end: datetime) -> str:
    """The Logs Insights console with the query, its log groups and an absolute UTC window filled in.

    The console keeps its state in a ``queryDetail`` object written in its own notation: ``~(k~v~...)``
    for objects, ``'`` before strings, ``~(~'a~'b)`` for lists, each string percent-encoded with
    ``*`` for ``%``; the whole is then percent-encoded once more with ``$`` for ``%``.
    """
    detail = (
        "~("
        + "~".join(
            [
                f"end~{_string(_iso(end))}",
                f"start~{_string(_iso(start))}",
                "timeType~'ABSOLUTE",
                "tz~'UTC",
                f"editorString~{_string(query)}",
                "source~(" + "".join(f"~{_string(group)}" for group in log_groups) + ")",
            ]
        )
        + ")"
    )
    escaped = _percent(detail, safe="*@_+-./")  # JavaScript's escape()
    fragment = _percent(f"?queryDetail={escaped}", safe="*-_.").replace("%", "$")  # encodeURIComponent
    return f"{console_base(region)}#logsV2:logs-insights{fragment}"


def _string(value: str) -> str:
    """Every character but letters, digits and ``-._`` encoded, so ``~()'`` inside never read as structure."""
    return "'" + _percent(value, safe="-._").replace("%", "*")


def _percent(text: str, *, safe: str) -> str:
    """Percent-encode each UTF-8 byte except ASCII letters, digits and ``safe``."""
    keep = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789" + safe.encode())
    return "".join(chr(b) if b in keep else f"%{b:02X}" for b in text.encode())


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def build_message(
    event: AlarmEvent,
    route: Route | None,
    *,
    runbook_base: str = DEFAULT_RUNBOOK_BASE,
    dlq: DlqSummary | None = None,
) -> AlarmMessage:
    """The message for one state change; an alarm the routing table lacks still gets its console link."""
    links: list[tuple[str, str]] = []
    if route:
        start, end = event.window()
        links += [
            ("Runbook", f"{runbook_base.rstrip('#')}#{route.anchor}"),
            (f"Dashboard {route.dashboard}", dashboard_url(event.region, route.dashboard)),
            (
                f"Logs Insights: {route.query_name}",
                logs_insights_url(event.region, route.query_text, route.log_groups, start, end),
            ),
        ]
    links.append(("Alarm", alarm_url(event.region, event.name)))
    reason = event.reason
    if event.triggering_children:
        reason = f"{reason} Triggered by: {', '.join(event.triggering_children)}."
    return AlarmMessage(
        alarm=event.name,
        severity=event.severity,
        state=event.new_state,
        previous_state=event.old_state,
        reason=reason,
        changed_at=_iso(event.changed_at),
        links=tuple(links),
        dlq=tuple(dlq.lines()) if dlq else (),
    )


def to_slack(message: AlarmMessage) -> dict[str, Any]:
    """Slack incoming webhook: ``text`` is the notification fallback, ``blocks`` the message."""
    icon = ":red_circle:" if message.state == "ALARM" else ":large_green_circle:"
    links = " · ".join(f"<{url}|{_slack_escape(label)}>" for label, url in message.links)
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{icon} *{_slack_escape(message.title)}*"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(message.reason) or "(no reason given)"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": links}]},
    ]
    if message.dlq:
        dlq = "\n".join(f"• {_slack_escape(line)}" for line in message.dlq)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*DLQ*\n{dlq}"}})
    return {"text": _slack_escape(message.title), "blocks": blocks}


def _slack_escape(text: str) -> str:
    """Slack reads ``&``, ``<`` and ``>`` as markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_teams(message: AlarmMessage) -> dict[str, Any]:
    """An Adaptive Card in a ``message`` envelope: accepted by Teams Workflows and by incoming webhooks."""
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": message.title,
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
            "color": "Attention" if message.state == "ALARM" else "Good",
        },
        {"type": "TextBlock", "text": message.reason or "(no reason given)", "wrap": True},
        {
            "type": "FactSet",
            "facts": [
                {"title": "State", "value": f"{message.previous_state} → {message.state}"},
                {"title": "Severity", "value": message.severity},
                {"title": "Changed", "value": message.changed_at},
            ],
        },
    ]
    if message.dlq:
        body.append({"type": "TextBlock", "text": "DLQ", "weight": "Bolder"})
        body += [{"type": "TextBlock", "text": line, "wrap": True} for line in message.dlq]
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "actions": [{"type": "Action.OpenUrl", "title": label, "url": url} for label, url in message.links],
    }
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


def to_google_chat(message: AlarmMessage) -> dict[str, Any]:
    """Google Chat incoming webhook: one text message; ``*bold*`` and ``<url|label>`` links are its markup."""
    links = " · ".join(f"<{url}|{label}>" for label, url in message.links)
    lines = [f"*{message.title}*", message.reason or "(no reason given)", links]
    if message.dlq:
        lines += ["*DLQ*", *(f"• {line}" for line in message.dlq)]
    return {"text": "\n".join(lines)}


def to_json(message: AlarmMessage) -> dict[str, Any]:
    """A generic webhook: every field by name, links as a label -> URL object."""
    return {
        "title": message.title,
        "alarm": message.alarm,
        "severity": message.severity,
        "state": message.state,
        "previous_state": message.previous_state,
        "reason": message.reason,
        "changed_at": message.changed_at,
        "links": dict(message.links),
        "dlq": list(message.dlq),
    }


RENDERERS: dict[str, Callable[[AlarmMessage], dict[str, Any]]] = {
    "slack": to_slack,
    "teams": to_teams,
    "googlechat": to_google_chat,
    "json": to_json,
}
CHAT_FORMATS = tuple(RENDERERS)


def render(chat_format: str, message: AlarmMessage) -> dict[str, Any]:
    try:
        return RENDERERS[chat_format](message)
    except KeyError:
        raise AlarmMessageError(f"chat format {chat_format!r} is not one of {CHAT_FORMATS}") from None
