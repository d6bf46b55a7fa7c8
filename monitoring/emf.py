"""Metric factory for the EMF metrics the CIDB handlers emit.

Names come from :class:`pipeline.telemetry.MetricName`, so a metric the handlers do not define
cannot be referenced. Powertools puts each function's metrics under the spec's namespace with the
single dimension ``service`` = the function name (``POWERTOOLS_SERVICE_NAME``, set by the spec).
"""

from __future__ import annotations

from monitoring.model import MILLISECONDS, SUM, Metric
from monitoring.thresholds import ALARM_PERIOD_SECONDS
from pipeline.spec import DeploymentSpec
from pipeline.telemetry import MetricName


class CidbMetricFactory:
    """EMF metrics of one function, by role ("collector", "reporter", "verifier")."""

    def __init__(self, spec: DeploymentSpec, role: str) -> None:
        self.namespace = spec.metrics_namespace
        self.service = getattr(spec, role).name
        self.role = role

    def metric_count(self, name: MetricName, statistic: str = SUM, label: str = "") -> Metric:
        return self._metric(name, statistic, label or f"{self.role} {name}")

    def metric_milliseconds(self, name: MetricName, statistic: str) -> Metric:
        return self._metric(name, statistic, f"{self.role} {name} {statistic}", MILLISECONDS)

    def _metric(self, name: MetricName, statistic: str, label: str, unit: str = "") -> Metric:
        dimensions = (("service", self.service),)
        return Metric(self.namespace, str(name), dimensions, statistic, ALARM_PERIOD_SECONDS, label, unit)
