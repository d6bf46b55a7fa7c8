"""Monitoring for the CIDB pipeline: metrics defined once, alarms and dashboards derived from them.

Importable without Pulumi; :mod:`monitoring.component` is the only module that imports it.

Example::

    >>> from pipeline.spec import build_spec
    >>> from monitoring import build_monitoring
    >>> [a.name for a in build_monitoring(build_spec("tuned")).alarms][:2]
    ['cidb-dev-queue-oldest-message-age-critical', 'cidb-dev-queue-backlog-warning']
"""

from monitoring.dashboards import DashboardDefinition
from monitoring.model import (
    AlarmDefinition,
    Annotation,
    Comparison,
    CompositeAlarmDefinition,
    MathExpression,
    Metric,
    MissingData,
    Route,
    Severity,
)
from monitoring.naming import View
from monitoring.plan import Monitoring, build_monitoring
from monitoring.render import render_dashboard_body
from monitoring.resources import MonitoredResources
from monitoring.thresholds import check_age_threshold
from monitoring.widgets import AlarmStatusWidget, GraphWidget, LogWidget, TextWidget

__all__ = [
    "AlarmDefinition",
    "AlarmStatusWidget",
    "Annotation",
    "Comparison",
    "CompositeAlarmDefinition",
    "DashboardDefinition",
    "GraphWidget",
    "LogWidget",
    "MathExpression",
    "Metric",
    "MissingData",
    "MonitoredResources",
    "Monitoring",
    "Route",
    "Severity",
    "TextWidget",
    "View",
    "build_monitoring",
    "check_age_threshold",
    "render_dashboard_body",
]
