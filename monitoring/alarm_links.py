"""Where on-call goes from each alarm: its dashboard and the saved query that isolates the cause.

The one table that says so, keyed by the alarm's runbook anchor
(:attr:`monitoring.model.AlarmDefinition.runbook_anchor`), so adding an alarm never means
editing its call site. The runbook's "First query" and "Dashboard" lines, the alarm notifier's
links and the tests all read it. :func:`routing_table` resolves it for one deployment into the
plain JSON the notifier function reads (``pipeline.alarm_message.Routing``).

Example::

    >>> from pipeline.spec import build_spec
    >>> from monitoring.plan import build_monitoring
    >>> table = routing_table(build_spec("tuned"), build_monitoring(build_spec("tuned")))
    >>> table["alarms"]["dlq-depth-critical"]
    ['dlq-depth', 'reporter-errors']
    >>> table["anchors"]["dlq-depth"]
    {'dashboard': 'cidb-dev-queue', 'dlq': True}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from monitoring.model import AlarmDefinition, CompositeAlarmDefinition
from monitoring.naming import View, dashboard_name, query_definition_name
from monitoring.plan import Monitoring
from monitoring.resources import MonitoredResources
from pipeline.spec import DeploymentSpec
from queries import load_query

__all__ = ["ALARM_LINKS", "NOTIFIER_DLQ_ANCHOR", "AlarmLink", "link_for", "routing_table"]

NOTIFIER_DLQ_ANCHOR = "notifier-dlq"


@dataclass(frozen=True)
class AlarmLink:
    view: View
    query: str  # a file name in queries/, without the suffix
    # Run the query on the alarm's own function log group (its FunctionName dimension), not the query's roles:
    # an errors alarm of the collector needs the collector's log lines.
    own_log_group: bool = False
    # The alarm counts DLQ messages: the notifier shows the DLQ's top errors.
    dlq: bool = False


ALARM_LINKS: dict[str, AlarmLink] = {
    "pipeline-unhealthy": AlarmLink(View.SUMMARY, "trace-run"),
    "queue-oldest-message-age": AlarmLink(View.QUEUE, "reporter-errors"),
    "queue-backlog": AlarmLink(View.QUEUE, "lock-wait-percentiles"),
    "dlq-depth": AlarmLink(View.QUEUE, "reporter-errors", dlq=True),
    "producer-stopped": AlarmLink(View.THROTTLING, "trace-run"),
    "data-loss": AlarmLink(View.SUMMARY, "run-reconciliation"),
    "verifier-stopped": AlarmLink(View.QUEUE, "reporter-errors"),
    "lambda-errors": AlarmLink(View.LAMBDA, "reporter-errors", own_log_group=True),
    "lambda-throttles": AlarmLink(View.THROTTLING, "cold-starts-duration"),
    "lambda-duration": AlarmLink(View.LAMBDA, "cold-starts-duration"),
    "reporter-concurrency": AlarmLink(View.LAMBDA, "lock-wait-percentiles"),
    "sns-notifications-failed": AlarmLink(View.THROTTLING, "throttling-retries"),
    "sns-redrive-failed": AlarmLink(View.THROTTLING, "run-reconciliation"),
    "publish-retries": AlarmLink(View.THROTTLING, "throttling-retries"),
    "publish-given-up": AlarmLink(View.THROTTLING, "throttling-retries"),
    "sdk-retries": AlarmLink(View.THROTTLING, "throttling-retries"),
    "lock-acquire-failed": AlarmLink(View.LOCKS, "lock-contention"),
    "lock-wait-p99": AlarmLink(View.LOCKS, "lock-wait-percentiles"),
    "lock-stale-broken": AlarmLink(View.LOCKS, "stale-locks"),
    "lock-release-failed": AlarmLink(View.LOCKS, "lock-release-failures"),
    # reporter-errors reads any Powertools log group; the stack points it at the notifier's own.
    NOTIFIER_DLQ_ANCHOR: AlarmLink(View.SUMMARY, "reporter-errors"),
}


def link_for(anchor: str) -> AlarmLink:
    """The links of one runbook anchor; a new alarm without an entry fails here, naming what to add."""
    try:
        return ALARM_LINKS[anchor]
    except KeyError:
        raise KeyError(
            f"runbook anchor {anchor!r} has no entry in monitoring.alarm_links.ALARM_LINKS; "
            "add its dashboard view and first saved query there"
        ) from None


def routing_table(
    spec: DeploymentSpec,
    plan: Monitoring,
    *,
    extra_alarms: Iterable[AlarmDefinition] = (),
    log_groups: Mapping[str, Sequence[str]] | None = None,
    resources: MonitoredResources | None = None,
) -> dict[str, Any]:
    """The notifier's view of one deployment, as plain JSON-able data.

    ``alarms``: alarm name without the ``prefix`` (the deployment's base name and ``-``, stored once to keep
    the table small) -> [runbook anchor, query, (log groups that replace the query's)];
    ``anchors``: anchor -> dashboard name (and ``dlq``); ``queries``: query -> saved query name, log
    groups and text. ``log_groups`` (alarm name -> log groups) points an alarm's query elsewhere, e.g. at
    the notifier's own log group. Names come from the spec
    (``resources`` defaults to it), so the table can be stored before anything is deployed.
    """
    resources = resources or MonitoredResources.from_spec(spec)
    alarms: list[AlarmDefinition | CompositeAlarmDefinition] = [*plan.alarms, plan.composite, *extra_alarms]
    prefix = f"{spec.base_name}-"
    table: dict[str, Any] = {"prefix": prefix, "alarms": {}, "anchors": {}, "queries": {}}
    for alarm in alarms:
        link = link_for(alarm.runbook_anchor)
        query = load_query(link.query)
        table["queries"][query.name] = {
            "name": query_definition_name(spec.base_name, query.name),
            "log_groups": [resources.log_group(role) for role in query.log_groups],
            "text": query.text,
        }
        anchor = {"dashboard": dashboard_name(spec.base_name, link.view)}
        table["anchors"][alarm.runbook_anchor] = {**anchor, "dlq": True} if link.dlq else anchor
        route = [alarm.runbook_anchor, query.name]
        function = alarm.metric.dimension_map.get("FunctionName") if isinstance(alarm, AlarmDefinition) else None
        if log_groups and alarm.name in log_groups:
            route.append(list(log_groups[alarm.name]))
        elif link.own_log_group and function is not None:
            route.append([f"/aws/lambda/{function}"])
        table["alarms"][alarm.name.removeprefix(prefix)] = route
    return table
