"""Alarm kinds with their defaults, and the factory every alarm is made by.

Choosing evaluation periods, datapoints-to-alarm and missing-data treatment once per kind keeps
alarms of the same nature consistent, and says in one place why each choice was made.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitoring.model import AlarmDefinition, Comparison, Metric, MissingData, Severity
from monitoring.naming import alarm_name


@dataclass(frozen=True)
class AlarmKind:
    comparison: Comparison
    evaluation_periods: int
    datapoints_to_alarm: int
    treat_missing_data: MissingData


IMMEDIATE = AlarmKind(Comparison.GREATER, 1, 1, MissingData.NOT_BREACHING)
"""One breaching period is news (errors, retries, lock failures, queue age, DLQ depth, p99 latency).
Runs are daily, so waiting for a second bad period would mean waiting for the next day. These metrics
have no datapoint when nothing happened (EMF counters, Lambda errors) or the queue is idle (SQS stops
reporting), so missing data is healthy."""

SUSTAINED = AlarmKind(Comparison.GREATER, 3, 3, MissingData.NOT_BREACHING)
"""Saturation that is by design during a burst (backlog, reporters at the concurrency cap) and a
problem only when it lasts three periods in a row."""

HEARTBEAT = AlarmKind(Comparison.LESS, 1, 1, MissingData.BREACHING)
"""Activity that must happen once per scheduled period; silence (no datapoint at all) is the failure."""

VERDICT = AlarmKind(Comparison.GREATER, 1, 1, MissingData.IGNORE)
"""A per-run verdict (reconciliation shortfall): the state holds until the next reconciled run, so a
data-loss alarm does not clear itself just because no run was verified in the next period."""


class AlarmFactory:
    """Makes every alarm of one deployment: names, kind defaults and runbook links in one place."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def alarm(
        self,
        kind: AlarmKind,
        *,
        component: str,
        suffix: str,
        severity: Severity,
        metric: Metric,
        threshold: float,
        summary: str,
        runbook_anchor: str,
        comparison: Comparison | None = None,
    ) -> AlarmDefinition:
        return AlarmDefinition(
            name=alarm_name(self.prefix, component, suffix, severity),
            severity=severity,
            metric=metric,
            comparison=comparison or kind.comparison,
            threshold=float(threshold),
            evaluation_periods=kind.evaluation_periods,
            datapoints_to_alarm=kind.datapoints_to_alarm,
            treat_missing_data=kind.treat_missing_data,
            summary=summary,
            runbook_anchor=runbook_anchor,
        )
