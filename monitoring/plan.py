"""Everything one deployment is monitored with, built from the spec in one call."""

from __future__ import annotations

from dataclasses import dataclass

from monitoring.alarm_factory import AlarmFactory
from monitoring.dashboards import DashboardDefinition, Section, build_dashboards
from monitoring.lambda_functions import FunctionsMonitoring
from monitoring.locks import LockMonitoring
from monitoring.model import AlarmDefinition, CompositeAlarmDefinition, MathExpression, Metric, Severity
from monitoring.naming import RUNBOOK_PATH, View, alarm_name
from monitoring.publishing import PublishMonitoring
from monitoring.resources import MonitoredResources
from monitoring.runs import RunMonitoring
from monitoring.sqs import QueueMonitoring
from monitoring.widgets import GraphWidget
from pipeline.spec import DeploymentSpec


@dataclass(frozen=True)
class Monitoring:
    alarms: tuple[AlarmDefinition, ...]
    composite: CompositeAlarmDefinition
    dashboards: tuple[DashboardDefinition, ...]

    def dashboard(self, view: View) -> DashboardDefinition:
        return next(d for d in self.dashboards if d.view == view)

    def metrics(self) -> tuple[Metric, ...]:
        """Every distinct metric an alarm or a graph reads, including the inputs of metric math."""
        found: list[Metric] = [a.metric for a in self.alarms]
        for dashboard in self.dashboards:
            for widget in dashboard.widgets:
                if isinstance(widget, GraphWidget):
                    for item in widget.metrics:
                        found += item.metrics.values() if isinstance(item, MathExpression) else [item]
        return tuple(dict.fromkeys(found))


def build_monitoring(spec: DeploymentSpec, resources: MonitoredResources | None = None) -> Monitoring:
    """Alarms, the paging composite and dashboards; ``resources`` defaults to the names in the spec.

    Critical alarms are the composite's children; alarms of severity ``page`` (data loss) page on their own.

    Example::

        >>> from pipeline.spec import build_spec
        >>> monitoring = build_monitoring(build_spec("tuned"))
        >>> monitoring.composite.name
        'cidb-dev-pipeline-unhealthy-page'
    """
    resources = resources or MonitoredResources.from_spec(spec)
    runbook = spec.alarms.runbook_url or RUNBOOK_PATH
    factory = AlarmFactory(spec.base_name, runbook)
    sections: list[Section] = [
        QueueMonitoring(spec, resources, factory),
        RunMonitoring(spec, factory),
        FunctionsMonitoring(spec, resources, factory),
        PublishMonitoring(spec, resources, factory),
    ]
    if spec.lock.enabled:
        sections.append(LockMonitoring(spec, factory))
    alarms = tuple(a for section in sections for a in section.alarms)
    composite = CompositeAlarmDefinition(
        name=alarm_name(spec.base_name, "pipeline", "unhealthy", Severity.PAGE),
        severity=Severity.PAGE,
        children=tuple(a.name for a in alarms if a.severity == Severity.CRITICAL),
        summary="The CIDB pipeline is losing or stranding records, or stopped: one of its critical alarms fired.",
        runbook_anchor="pipeline-unhealthy",
        runbook_base=runbook,
    )
    dashboards = build_dashboards(spec.base_name, sections, (composite.name, *(a.name for a in alarms)), runbook)
    return Monitoring(alarms, composite, dashboards)
