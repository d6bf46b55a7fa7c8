"""Write the report directory: summary.json, invocations.csv, metrics.csv and report.html.

report.html is one self-contained file (plotly.js inlined once) with the summary, the run's
charts, the alarms that would have fired and each dashboard's metric widgets drawn from the
run's own data.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from loadtest.alarm_eval import dashboard_series
from loadtest.analysis import problems
from loadtest.sampler import Sample
from pipeline.spec import DeploymentSpec
from pipeline.telemetry import MetricName

CHART_HEIGHT = 320
WIDGET_HEIGHT = 260
DASHBOARD_PERIOD_SECONDS = 10


def _figure_html(fig: go.Figure, first: bool) -> str:
    return fig.to_html(full_html=False, include_plotlyjs="inline" if first else False)


def _samples_frame(samples: list[Sample]) -> pd.DataFrame:
    frame = pd.DataFrame([s.__dict__ for s in samples])
    if not frame.empty:
        frame["time"] = pd.to_datetime(frame["time"], unit="s", utc=True)
    return frame


def run_charts(emf: pd.DataFrame, samples: list[Sample], expected: int) -> list[go.Figure]:
    figures = []
    written = emf[emf["metric_name"] == MetricName.RECORDS_WRITTEN].sort_values("time")
    fig = go.Figure(go.Scatter(x=written["time"], y=written["value"].cumsum(), mode="lines", name="rows written"))
    fig.add_hline(y=expected, line_dash="dot", annotation_text=f"expected {expected}")
    fig.update_layout(title="Records written over time", height=CHART_HEIGHT)
    figures.append(fig)

    frame = _samples_frame(samples)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    if not frame.empty:
        for column, label in (("visible", "visible"), ("not_visible", "in flight"), ("dlq", "DLQ")):
            fig.add_trace(go.Scatter(x=frame["time"], y=frame[column], name=label), secondary_y=False)
        fig.add_trace(
            go.Scatter(x=frame["time"], y=frame["oldest_age_s"], name="oldest message age (s)", line_dash="dash"),
            secondary_y=True,
        )
    fig.update_layout(title="Queue depth and age of the oldest message", height=CHART_HEIGHT)
    figures.append(fig)

    fig = go.Figure()
    if not frame.empty:
        fig.add_trace(go.Scatter(x=frame["time"], y=frame["instances_in_flight"], line_shape="hv", name="instances"))
    fig.update_layout(title="Reporter instances in flight", height=CHART_HEIGHT)
    figures.append(fig)

    waits = emf.loc[emf["metric_name"] == MetricName.LOCK_WAIT_MS, "value"]
    fig = go.Figure(go.Histogram(x=waits, nbinsx=40, name="lock wait"))
    fig.update_layout(title=f"Lock wait distribution (ms, n={len(waits)})", height=CHART_HEIGHT)
    figures.append(fig)
    return figures


def dashboard_figures(spec: DeploymentSpec, frame: pd.DataFrame) -> list[tuple[str, go.Figure]]:
    figures = []
    for dashboard, title, series, notes in dashboard_series(spec, frame, period_seconds=DASHBOARD_PERIOD_SECONDS):
        fig = go.Figure()
        for label, values in series.items():
            fig.add_trace(go.Scatter(x=values.index, y=values.values, name=label, mode="lines+markers"))
        for note in notes:
            fig.add_hline(y=note.value, line_dash="dot", line_color="red", annotation_text=note.label)
        fig.update_layout(title=title, height=WIDGET_HEIGHT, margin={"t": 40, "b": 20})
        figures.append((dashboard, fig))
    return figures


def _table(data: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(json.dumps(v) if isinstance(v, dict | list) else str(v))}"
        "</td></tr>"
        for k, v in data.items()
    )
    return f"<table class='summary'>{rows}</table>"


def write_html(
    path: Path,
    summary: dict[str, Any],
    charts: list[go.Figure],
    alarms: pd.DataFrame | None,
    dashboards: list[tuple[str, go.Figure]],
) -> None:
    headline = {k: v for k, v in summary.items() if not isinstance(v, dict | list)}
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>CIDB load test</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;font-size:13px}"
        ".bad{color:#b00;font-weight:bold}.ok{color:#070;font-weight:bold}</style></head><body>",
        f"<h1>CIDB load test: {html.escape(summary['profile'])}, {summary['policies']} policies</h1>",
    ]
    failures = problems(summary)
    parts.append(
        f"<p class='{'bad' if failures else 'ok'}'>lost {summary['lost']}, duplicates {summary['duplicates']}, "
        f"DLQ {summary['dlq']}</p>"
    )
    parts += [f"<p class='bad'>{html.escape(line)}</p>" for line in failures]
    if summary.get("artifact"):
        parts += ["<h2>Code that ran</h2>", _table(summary["artifact"])]
    parts += ["<h2>Summary</h2>", _table(headline)]
    parts += ["<h2>Lock</h2>", _table(summary["lock"]), "<h2>API calls</h2>", _table(summary["api_calls"])]
    parts.append("<h2>Run</h2>")
    parts += [_figure_html(fig, i == 0) for i, fig in enumerate(charts)]
    parts.append("<h2>Alarms that would have fired</h2>")
    if alarms is None:
        parts.append("<p>Alarm evaluation needs the local target's captured metrics.</p>")
    else:
        parts.append(alarms.to_html(index=False, na_rep="", classes="alarms"))
    current = None
    for dashboard, fig in dashboards:
        if dashboard != current:
            parts.append(f"<h2>Dashboard {html.escape(dashboard)} (from this run's data)</h2>")
            current = dashboard
        parts.append(_figure_html(fig, False))
    if summary.get("missing_keys"):
        items = "".join(f"<li>{html.escape(k)}</li>" for k in summary["missing_keys"])
        parts.append(f"<h2>Missing records (first {len(summary['missing_keys'])})</h2><ul>{items}</ul>")
    parts.append("</body></html>")
    path.write_text("\n".join(parts))
