"""The alarm notifier's own alarm: alarm events it could not deliver to chat, parked in its DLQ.

Kept apart from :func:`monitoring.plan.build_monitoring` because the notifier exists only when a
chat format is configured; the stack's ``AlarmNotifier`` creates this alarm with the function.

Example::

    >>> from pipeline.spec import build_spec
    >>> notifier_dlq_alarm(build_spec("tuned"), "cidb-dev-alarm-notifier-dlq").name
    'cidb-dev-notifier-dlq-depth-warning'
"""

from __future__ import annotations

from monitoring.alarm_factory import IMMEDIATE, AlarmFactory
from monitoring.alarm_links import NOTIFIER_DLQ_ANCHOR
from monitoring.model import AlarmDefinition, Comparison, Severity
from monitoring.resources import NameLike
from monitoring.sqs import SqsMetricFactory
from monitoring.thresholds import DLQ_PERIOD_SECONDS
from pipeline.spec import DeploymentSpec


def notifier_dlq_alarm(spec: DeploymentSpec, dlq_name: NameLike) -> AlarmDefinition:
    """Warning, not critical: e-mail still carries every alarm; only the chat copy is missing."""
    metric = SqsMetricFactory(dlq_name, "notifier DLQ").metric_visible_messages_count(DLQ_PERIOD_SECONDS)
    return AlarmFactory(spec.base_name).alarm(
        IMMEDIATE,
        component="notifier",
        suffix="dlq-depth",
        severity=Severity.WARNING,
        metric=metric,
        threshold=1,
        comparison=Comparison.GREATER_OR_EQUAL,
        summary="An alarm notification could not be delivered to the chat webhook after Lambda's retries.",
        runbook_anchor=NOTIFIER_DLQ_ANCHOR,
    )
