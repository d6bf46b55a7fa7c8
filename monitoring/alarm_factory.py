"""Alarm kinds with their defaults, and the factory every alarm is made by.

Choosing evaluation periods, datapoints-to-alarm and missing-data treatment once per kind keeps
alarms of the same nature consistent, and says in one place why each choice was made.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitoring.model import AlarmDefinition, Comparison, Metric, MissingData, Severity
from monitoring.naming import RUNBOOK_PATH, alarm_name


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


def heartbeat(hours: int) -> AlarmKind:
    """Activity that must happen at least once in ``hours`` hourly periods; silence (no datapoint) is the failure.

    Hourly periods over the whole window (``hours`` of ``hours``, see :mod:`monitoring.schedule`) rather than one
    period as long as the schedule: a run a few minutes late then does not page, and CloudWatch allows an
    hourly alarm to look back 7 days where a single period may last at most one day.
    """
    return AlarmKind(Comparison.LESS, hours, hours, MissingData.BREACHING)


VERDICT = AlarmKind(Comparison.GREATER, 1, 1, MissingData.IGNORE)
"""A per-run verdict (reconciliation shortfall): the verifier reports a run with a shortfall every time it
checks it, until that run completes (or on-call closes it), then reports 0. Missing periods keep the state,
so the alarm does not clear just because the verifier did not run in the next period."""


class AlarmFactory:
    """Makes every alarm of one deployment: names, kind defaults and runbook links in one place."""

    def __init__(self, prefix: str, runbook_base: str = RUNBOOK_PATH) -> None:
        self.prefix = prefix
        self.runbook_base = runbook_base

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
        min_samples: int | None = None,
    ) -> AlarmDefinition:
        """``min_samples`` (percentile metrics only): alarm on :func:`monitoring.model.min_samples_expression`."""
        if min_samples is not None and not metric.is_percentile:
            raise ValueError(f"{component}-{suffix}: min_samples applies to percentile metrics, not {metric.statistic}")
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
            runbook_base=self.runbook_base,
            min_samples=min_samples,
        )
