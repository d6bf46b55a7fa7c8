"""What alarms and dashboards are made of: metrics, metric math, alarm definitions.

Plain frozen dataclasses, so the Pulumi layer, the dashboard renderer and the local alarm
evaluator all read the very same objects; none of them keeps its own copy of a threshold.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from monitoring.naming import RUNBOOK_PATH, runbook_link

SUM = "Sum"
MAXIMUM = "Maximum"
MINIMUM = "Minimum"
AVERAGE = "Average"
SAMPLE_COUNT = "SampleCount"
STANDARD_STATISTICS = (SUM, MAXIMUM, MINIMUM, AVERAGE, SAMPLE_COUNT)
MILLISECONDS = "Milliseconds"
_PERCENTILE = re.compile(r"p(\d{1,2}(\.\d+)?)")


def percentile(value: float) -> str:
    """CloudWatch's name for a percentile statistic, e.g. ``percentile(99) == "p99"``."""
    return f"p{value:g}"


def percentile_fraction(statistic: str) -> float | None:
    """0.99 for "p99"; None for the standard statistics."""
    match = _PERCENTILE.fullmatch(statistic)
    return float(match[1]) / 100 if match else None


class Comparison(StrEnum):
    GREATER = "GreaterThanThreshold"
    GREATER_OR_EQUAL = "GreaterThanOrEqualToThreshold"
    LESS = "LessThanThreshold"
    LESS_OR_EQUAL = "LessThanOrEqualToThreshold"

    @property
    def symbol(self) -> str:
        return {"GreaterThan": ">", "GreaterThanOrEqualTo": ">=", "LessThan": "<", "LessThanOrEqualTo": "<="}[
            self.value.removesuffix("Threshold")
        ]

    @property
    def upward(self) -> bool:
        """True when higher values are worse."""
        return self in (Comparison.GREATER, Comparison.GREATER_OR_EQUAL)

    def breaches(self, value: float, threshold: float) -> bool:
        return {
            Comparison.GREATER: value > threshold,
            Comparison.GREATER_OR_EQUAL: value >= threshold,
            Comparison.LESS: value < threshold,
            Comparison.LESS_OR_EQUAL: value <= threshold,
        }[self]


class MissingData(StrEnum):
    """CloudWatch's ``TreatMissingData`` values."""

    BREACHING = "breaching"
    NOT_BREACHING = "notBreaching"
    IGNORE = "ignore"
    MISSING = "missing"


class Route(StrEnum):
    """Where an alarm's notifications go: the page topic wakes someone, the ticket topic queues work."""

    PAGE = "page"
    TICKET = "ticket"


class Severity(StrEnum):
    CRITICAL = "critical"  # a child of the paging composite; notifies the ticket topic itself
    WARNING = "warning"  # notifies the ticket topic only
    PAGE = "page"  # pages on its own: the composite, and alarms that must not wait behind it (data loss)

    @property
    def route(self) -> Route:
        """One notification per event: the composite pages for its critical children, which only ticket."""
        return Route.PAGE if self == Severity.PAGE else Route.TICKET


@dataclass(frozen=True)
class Metric:
    """One metric read with one statistic over one period; dimension values may be Pulumi Outputs."""

    namespace: str
    name: str
    dimensions: tuple[tuple[str, Any], ...]
    statistic: str
    period: int
    label: str
    unit: str = ""  # MILLISECONDS for durations, so a graph can put counts beside them on another axis

    @property
    def is_milliseconds(self) -> bool:
        """A duration read with a value statistic; its sample count is a count, whatever the unit."""
        return self.unit == MILLISECONDS and self.statistic != SAMPLE_COUNT

    @property
    def dimension_map(self) -> dict[str, Any]:
        return dict(self.dimensions)

    @property
    def is_percentile(self) -> bool:
        return percentile_fraction(self.statistic) is not None


@dataclass(frozen=True)
class MathExpression:
    """CloudWatch metric math over named metrics; ``using`` maps expression ids to metrics."""

    expression: str
    using: tuple[tuple[str, Metric], ...]
    label: str

    @property
    def metrics(self) -> Mapping[str, Metric]:
        return dict(self.using)


def min_samples_expression(metric: Metric, min_samples: int) -> MathExpression:
    """The percentile only in periods with at least ``min_samples`` samples, like cdk-monitoring-constructs'
    ``minMetricSamplesToAlarm``: a p99 of two samples is one slow call, not a trend. Other periods have no
    datapoint, so the alarm's missing-data treatment judges them."""
    return MathExpression(
        f"IF(samples >= {min_samples}, value)",
        (("value", metric), ("samples", replace(metric, statistic=SAMPLE_COUNT, label=f"{metric.label} samples"))),
        metric.label,
    )


@dataclass(frozen=True)
class Annotation:
    """A horizontal line on a graph; taken from an alarm so graph and alarm never disagree."""

    label: str
    value: float


@dataclass(frozen=True)
class AlarmDefinition:
    name: str
    severity: Severity
    metric: Metric
    comparison: Comparison
    threshold: float
    evaluation_periods: int
    datapoints_to_alarm: int
    treat_missing_data: MissingData
    summary: str
    runbook_anchor: str
    runbook_base: str = RUNBOOK_PATH
    min_samples: int | None = None

    @property
    def description(self) -> str:
        return f"{self.summary} Runbook: {runbook_link(self.runbook_anchor, self.runbook_base)}"

    @property
    def expression(self) -> MathExpression | None:
        """What CloudWatch alarms on when it is not ``metric`` itself (percentiles with a minimum sample count)."""
        return None if self.min_samples is None else min_samples_expression(self.metric, self.min_samples)

    @property
    def annotation(self) -> Annotation:
        return Annotation(f"{self.name} {self.comparison.symbol} {self.threshold:g}", self.threshold)


@dataclass(frozen=True)
class CompositeAlarmDefinition:
    name: str
    severity: Severity
    children: tuple[str, ...]
    summary: str
    runbook_anchor: str
    runbook_base: str = RUNBOOK_PATH

    @property
    def description(self) -> str:
        return f"{self.summary} Runbook: {runbook_link(self.runbook_anchor, self.runbook_base)}"

    def rule(self, children: tuple[str, ...] | None = None) -> str:
        """``ALARM("a") OR ALARM("b")``; pass resolved names to tie the rule to deployed alarms."""
        return " OR ".join(f'ALARM("{name}")' for name in children or self.children)
