"""Evaluate the deployed alarm definitions against datapoints collected by a local run.

The alarms come from :func:`monitoring.build_monitoring`, the same definitions the Pulumi layer
deploys, so a threshold or period changed there is what is evaluated here. Each metric is bucketed
into its alarm's own period (aligned to the epoch, as CloudWatch aligns periods), reduced with its
statistic (Sum, Maximum, Minimum, Average, SampleCount, pNN), passed through the alarm's expression if it
has one (a percentile counts only in periods with enough samples), and then judged like CloudWatch does:
M of the last N periods breaching, with the alarm's missing-data treatment.

Approximations, stated: periods before the first datapoint of the run count as missing; with
``missing``/``ignore`` the alarm judges only the periods that have data (fires when all of them, up
to M, breach); percentiles interpolate linearly between values. The composite is evaluated as the OR
of its children.

Input: a frame with columns ``time`` (UTC), ``namespace``, ``metric_name``, ``dimensions`` (JSON
object string) and ``value``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

from monitoring import (
    AlarmDefinition,
    Annotation,
    GraphWidget,
    MathExpression,
    Metric,
    MissingData,
    MonitoredResources,
    build_monitoring,
)
from monitoring.model import AVERAGE, MAXIMUM, MINIMUM, SAMPLE_COUNT, SUM, percentile_fraction
from pipeline.spec import DeploymentSpec

RESULT_COLUMNS = [
    "name",
    "severity",
    "fired",
    "first_breach_time",
    "worst_value",
    "threshold",
    "runbook_anchor",
    "datapoints",
    "note",
]
_PERIOD_CALL = re.compile(r"PERIOD\((\w+)\)")
_IF_AT_LEAST = re.compile(r"IF\((\w+) >= (\d+), (\w+)\)")
_MATH_TOKENS = re.compile(r"[A-Za-z_]\w*|\d+(\.\d+)?|[-+*/() ]")


def evaluate_alarms(spec: DeploymentSpec, frame: pd.DataFrame) -> pd.DataFrame:
    """One row per alarm (and the composite): did it fire, when first, worst value seen, with how much data."""
    monitoring = build_monitoring(spec, MonitoredResources.from_spec(spec))
    data = _prepared(frame)
    rows = [_evaluate(alarm, data) for alarm in monitoring.alarms]
    children = [row for row in rows if row["name"] in monitoring.composite.children]
    fired = [row for row in children if row["fired"]]
    rows.append(
        {
            "name": monitoring.composite.name,
            "severity": str(monitoring.composite.severity),
            "fired": bool(fired),
            "first_breach_time": min((row["first_breach_time"] for row in fired), default=pd.NaT),
            "worst_value": math.nan,
            "threshold": math.nan,
            "runbook_anchor": monitoring.composite.runbook_anchor,
            "datapoints": math.nan,
            "note": f"composite: OR of {len(children)} critical alarms",
        }
    )
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def dashboard_series(
    spec: DeploymentSpec, frame: pd.DataFrame, *, period_seconds: int | None = None
) -> list[tuple[str, str, dict[str, pd.Series], list[Annotation]]]:
    """``(dashboard name, widget title, {label: series}, annotations)`` for every graph widget.

    Series are indexed by period start (UTC) with NaN for periods without data. ``period_seconds``
    overrides each metric's own period, which helps charts of a run shorter than one alarm period.
    """
    monitoring = build_monitoring(spec, MonitoredResources.from_spec(spec))
    data = _prepared(frame)
    out = []
    for dashboard in monitoring.dashboards:
        for widget in dashboard.widgets:
            if isinstance(widget, GraphWidget):
                series = {item.label: _series(item, data, period_seconds) for item in widget.metrics}
                out.append((dashboard.name, widget.title, series, list(widget.annotations)))
    return out


def _prepared(frame: pd.DataFrame) -> pd.DataFrame:
    data = frame.copy()
    data["time"] = pd.to_datetime(data["time"], utc=True)
    data["dimensions"] = data["dimensions"].map(lambda raw: json.dumps(json.loads(raw), sort_keys=True))
    data["value"] = data["value"].astype(float)
    return data


def _datapoints(metric: Metric, data: pd.DataFrame, period_seconds: int | None = None) -> pd.Series:
    """The metric reduced to one value per period over the whole span of the run (NaN = missing)."""
    period = f"{period_seconds or metric.period}s"
    if data.empty:
        return pd.Series(dtype=float)
    index = pd.date_range(data["time"].min().floor(period), data["time"].max().floor(period), freq=period)
    dimensions = json.dumps(dict(metric.dimensions), sort_keys=True)
    rows = data[
        (data["namespace"] == metric.namespace)
        & (data["metric_name"] == metric.name)
        & (data["dimensions"] == dimensions)
    ]
    grouped = rows["value"].groupby(rows["time"].dt.floor(period))
    fraction = percentile_fraction(metric.statistic)
    reducers = {SUM: "sum", MAXIMUM: "max", MINIMUM: "min", AVERAGE: "mean", SAMPLE_COUNT: "count"}
    reduced = grouped.quantile(fraction) if fraction is not None else grouped.agg(reducers[metric.statistic])
    return reduced.reindex(index).astype(float)


def _series(item: Metric | MathExpression, data: pd.DataFrame, period_seconds: int | None) -> pd.Series:
    if isinstance(item, Metric):
        return _datapoints(item, data, period_seconds)
    return _math(item, {i: _datapoints(m, data, period_seconds) for i, m in item.using}, period_seconds)


def _math(expression: MathExpression, inputs: Mapping[str, pd.Series], period_seconds: int | None) -> pd.Series:
    """Arithmetic metric math (ids, numbers, + - * /, parentheses, PERIOD(id)), as CloudWatch computes it, and
    ``IF(a >= N, b)`` (the minimum-sample guard of percentile alarms): b where a >= N, no datapoint elsewhere."""
    if guard := _IF_AT_LEAST.fullmatch(expression.expression):
        condition, at_least, value = guard.groups()
        return inputs[value].where(inputs[condition] >= int(at_least)).astype(float)
    periods = {i: period_seconds or m.period for i, m in expression.using}
    text = _PERIOD_CALL.sub(lambda match: str(periods[match[1]]), expression.expression)
    if "".join(m[0] for m in _MATH_TOKENS.finditer(text)) != text:
        raise ValueError(f"metric math {expression.expression!r} uses more than arithmetic; evaluate it in AWS")
    result = pd.eval(text, local_dict=dict(inputs), engine="python")
    return result.replace([np.inf, -np.inf], np.nan).astype(float)


def _evaluate(alarm: AlarmDefinition, data: pd.DataFrame) -> dict[str, object]:
    values = _series(alarm.expression or alarm.metric, data, None)
    present = values.dropna()
    padded = [math.nan] * (alarm.evaluation_periods - 1) + values.tolist()
    first = next(
        (
            values.index[i]
            for i in range(len(values))
            if _window_alarms(alarm, padded[i : i + alarm.evaluation_periods])
        ),
        pd.NaT,
    )
    worst = (present.max() if alarm.comparison.upward else present.min()) if len(present) else math.nan
    return {
        "name": alarm.name,
        "severity": str(alarm.severity),
        "fired": first is not pd.NaT,
        "first_breach_time": first,
        "worst_value": float(worst),
        "threshold": alarm.threshold,
        "runbook_anchor": alarm.runbook_anchor,
        "datapoints": len(present),
        "note": "" if len(present) else f"no datapoints; missing data treated as {alarm.treat_missing_data}",
    }


def _window_alarms(alarm: AlarmDefinition, window: list[float]) -> bool:
    """Would the alarm be in ALARM after judging these N periods (oldest first)?"""
    known = [v for v in window if not math.isnan(v)]
    breaching = sum(alarm.comparison.breaches(v, alarm.threshold) for v in known)
    missing = len(window) - len(known)
    if alarm.treat_missing_data == MissingData.BREACHING:
        return breaching + missing >= alarm.datapoints_to_alarm
    if alarm.treat_missing_data == MissingData.NOT_BREACHING:
        return breaching >= alarm.datapoints_to_alarm
    return bool(known) and breaching >= min(alarm.datapoints_to_alarm, len(known))
