"""CloudWatch dashboard body JSON from dashboard definitions.

Works on plain strings: the Pulumi layer resolves resource names and alarm ARNs first, then calls
:func:`render_dashboard_body` inside an ``apply``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from monitoring.dashboards import DashboardDefinition
from monitoring.model import MathExpression, Metric
from monitoring.resources import MonitoredResources
from monitoring.widgets import FULL_WIDTH, AlarmStatusWidget, GraphWidget, LogWidget, TextWidget, Widget
from queries import load_query

DEFAULT_TIME_RANGE = "-P1D"
"""Runs are daily, so a day shows the last run whole."""


def render_dashboard_body(
    dashboard: DashboardDefinition,
    *,
    region: str,
    resources: MonitoredResources,
    alarm_arns: Mapping[str, str],
) -> dict[str, Any]:
    """Lay widgets out left to right in rows of 24 units and render each one."""
    widgets, x, y, row_height = [], 0, 0, 0
    for widget in dashboard.widgets:
        if x + widget.width > FULL_WIDTH:
            x, y, row_height = 0, y + row_height, 0
        widgets.append(
            {
                "type": _TYPES[type(widget)],
                "x": x,
                "y": y,
                "width": widget.width,
                "height": widget.height,
                "properties": _properties(widget, region, resources, alarm_arns),
            }
        )
        x, row_height = x + widget.width, max(row_height, widget.height)
    # "inherit": each graph keeps its own period (hourly heartbeats stay hourly) instead of adapting to the range.
    return {"start": DEFAULT_TIME_RANGE, "periodOverride": "inherit", "widgets": widgets}


_TYPES = {GraphWidget: "metric", LogWidget: "log", AlarmStatusWidget: "alarm", TextWidget: "text"}


def _properties(
    widget: Widget, region: str, resources: MonitoredResources, alarm_arns: Mapping[str, str]
) -> dict[str, Any]:
    if isinstance(widget, GraphWidget):
        return _graph(widget, region)
    if isinstance(widget, LogWidget):
        query = load_query(widget.query)
        sources = " | ".join(f"SOURCE '{resources.log_group(role)}'" for role in query.log_groups)
        return {"title": widget.title, "region": region, "view": "table", "query": f"{sources} | {query.text}"}
    if isinstance(widget, AlarmStatusWidget):
        return {"title": widget.title, "alarms": [alarm_arns[name] for name in widget.alarm_names]}
    return {"markdown": widget.markdown}


def _graph(widget: GraphWidget, region: str) -> dict[str, Any]:
    """Counts go on the right axis when the graph also holds milliseconds, so neither scale flattens the other."""
    rows: list[list[Any]] = []
    ids: dict[str, Metric] = {}
    plotted = [m for m in widget.metrics if isinstance(m, Metric)]
    mixed = any(m.is_milliseconds for m in plotted) and not all(m.is_milliseconds for m in plotted)
    for n, item in enumerate(widget.metrics):
        if isinstance(item, MathExpression):
            for metric_id, metric in item.using:
                if ids.setdefault(metric_id, metric) != metric:
                    raise ValueError(f"widget {widget.title!r}: id {metric_id!r} names two different metrics")
            rows.append([{"expression": item.expression, "label": item.label, "id": f"e{n}"}])
        else:
            rows.append(_metric_row(item, **({"yAxis": "right"} if mixed and not item.is_milliseconds else {})))
    rows += [_metric_row(metric, id=metric_id, visible=False) for metric_id, metric in ids.items()]
    label = widget.left_axis_label or ("ms" if mixed else "")
    y_axis: dict[str, Any] = {"left": {"min": 0, "label": label, "showUnits": False} if label else {"min": 0}}
    if mixed:
        y_axis["right"] = {"min": 0, "label": "count", "showUnits": False}
    properties: dict[str, Any] = {
        "title": widget.title,
        "region": region,
        "view": "timeSeries",
        "stacked": False,
        "metrics": rows,
        "yAxis": y_axis,
    }
    if widget.annotations:
        properties["annotations"] = {"horizontal": [{"label": a.label, "value": a.value} for a in widget.annotations]}
    return properties


def _metric_row(metric: Metric, **options: Any) -> list[Any]:
    """``[namespace, name, dim, value, ..., {stat, period, label}]`` as dashboards expect."""
    dimensions = [part for pair in metric.dimensions for part in pair]
    rendering = {"stat": metric.statistic, "period": metric.period, "label": metric.label, **options}
    return [metric.namespace, metric.name, *dimensions, rendering]
