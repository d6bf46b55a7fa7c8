"""Write the report directory: summary.json, invocations.csv, metrics.csv and report.html.

report.html is one self-contained file (plotly.js inlined once). Its first screen holds pass/fail
cards (lost, duplicates, DLQ, e2e ÷ floor, API calls per policy, bytes per byte, each beside the
baseline's value when one is given) and the faults injected; then the summary, the run's charts,
the alarms that would have fired and each dashboard's metric widgets drawn from the run's own data.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from loadtest.analysis.alarm_eval import dashboard_series
from loadtest.analysis.html_parts import Card, FigureWriter, cards_html, page, pairs_html, table_html
from loadtest.analysis.loss_section import loss_section
from loadtest.analysis.summary import problems, unsettled
from loadtest.bench.baseline import DEFAULT_TOLERANCE
from loadtest.bench.measures import measures
from loadtest.run.sampler import Sample
from pipeline.spec import DeploymentSpec
from pipeline.telemetry import MetricName

CHART_HEIGHT = 320
WIDGET_HEIGHT = 260
DASHBOARD_PERIOD_SECONDS = 10


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
    counts, edges = np.histogram(waits, bins=40) if len(waits) else (np.array([]), np.array([0.0]))
    fig = go.Figure(go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=counts, name="lock wait"))
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


def api_calls_chart(summary: dict[str, Any]) -> go.Figure:
    """API calls by component and operation, as stacked bars (one per component)."""
    fig = go.Figure()
    by_component = summary["api_calls"]["by_component"]
    operations = sorted({op for ops in by_component.values() for op in ops})
    for op in operations:
        fig.add_trace(go.Bar(name=op, x=list(by_component), y=[ops.get(op, 0) for ops in by_component.values()]))
    total = summary["api_calls"]["total"]
    fig.update_layout(title=f"API calls by component ({total} in all)", barmode="stack", height=CHART_HEIGHT + 80)
    return fig


def headline_cards(summary: dict[str, Any], baseline: dict[str, Any] | None, tolerance: float) -> list[Card]:
    """The first screen: did every record arrive once, and did the run cost what the baseline did."""
    poison = summary.get("poison_expected") or 0
    unparseable = summary.get("dlq_unparseable") or 0
    damaged = summary.get("dlq_records_expected") or 0
    dlq_ok = summary["dlq"] - unparseable == damaged and unparseable == poison
    planted = poison + damaged
    dlq_value = f"{summary['dlq']} ({planted} planted by the fault)" if planted else summary["dlq"]
    cards = [
        Card("lost", summary["lost"], "fail" if summary["lost"] else "pass"),
        Card("duplicates", summary["duplicates"], "fail" if summary["duplicates"] else "pass"),
        Card("DLQ", dlq_value, "pass" if dlq_ok else "fail"),
    ]
    now = measures(summary, peak_rss_mb=0.0)
    for label, measure in (
        ("e2e ÷ floor", "e2e_over_floor"),
        ("API calls per policy", "api_calls_per_policy"),
        ("S3 bytes per output byte", "bytes_per_output_byte"),
    ):
        old = (baseline or {}).get(measure)
        if old is None or now[measure] is None:
            cards.append(Card(label, now[measure], "info"))
            continue
        state = "fail" if now[measure] > old * (1 + tolerance) else "pass"
        cards.append(Card(label, now[measure], state, baseline=old))
    iam = summary.get("iam")
    if iam:  # enforced with no denial passes; off says so, as information
        state = ("fail" if iam["denied"] else "pass") if iam["mode"] == "enforced" else "info"
        cards.append(Card("IAM denied calls", f"{iam['denied']} ({iam['mode']})", state))
    unsettled_count = (summary.get("queued_at_end") or 0) + (summary.get("in_flight") or 0)
    if unsettled_count:
        cards.append(Card("queued or in flight at the end", unsettled_count, "fail"))
    return cards


def _faults_table(summary: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "fault": f["fault"],
            "what it does": f["does"],
            "injected": f["injected"],
            "lost": summary["lost"],
            "duplicates": summary["duplicates"],
            "DLQ": summary["dlq"],
            "alarms expected": f["expected_alarms"] or f"none: {f['why_no_alarm']}",
            "alarms missing": f["alarms_missing"],
            "overrides": f["overrides"],
        }
        for f in summary.get("faults") or []
    ]


def _alarm_rows(alarms: pd.DataFrame) -> list[dict[str, Any]]:
    table = alarms.copy()
    for column in table.columns:
        if pd.api.types.is_datetime64_any_dtype(table[column]):
            table[column] = table[column].dt.strftime("%H:%M:%S")
    table = table.astype(object).where(table.notna(), "")
    return table.to_dict("records")


def write_html(
    path: Path,
    summary: dict[str, Any],
    charts: list[go.Figure],
    alarms: pd.DataFrame | None,
    dashboards: list[tuple[str, go.Figure]],
    baseline: dict[str, Any] | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> None:
    figure = FigureWriter()
    headline = {k: v for k, v in summary.items() if not isinstance(v, dict | list)}
    parts = [
        f"<h1>CIDB load test: {html.escape(summary['profile'])}, {summary['policies']} policies, "
        f"latency {html.escape(summary.get('latency', 'none'))}</h1>",
        *loss_section(summary, figure),
        cards_html(headline_cards(summary, baseline, tolerance)),
    ]
    failures = problems(summary) + unsettled(summary)
    parts += [f"<p class='bad'>{html.escape(line)}</p>" for line in failures]
    if summary.get("faults"):
        parts += ["<h2>Faults injected</h2>", table_html(_faults_table(summary), "faults")]
    if summary.get("dlq_unparseable_messages"):
        parts += ["<h2>Unparseable DLQ messages</h2>", table_html(summary["dlq_unparseable_messages"], "poison")]
    parts += ["<h2>Summary</h2>", pairs_html(headline), "<h2>Lock</h2>", pairs_html(summary["lock"])]
    if summary.get("latency", "none") != "none":  # docs/latency.md says where each delay comes from
        injected = {**summary["latency_injected"], **summary["poller_scaling"]}
        parts += [f"<h2>AWS latency profile: {html.escape(summary['latency'])}</h2>", pairs_html(injected)]
    if summary.get("artifact"):
        parts += ["<h2>Code that ran</h2>", pairs_html(summary["artifact"])]
    parts += ["<h2>Run</h2>", figure(api_calls_chart(summary))]
    parts += [figure(fig) for fig in charts]
    parts.append("<h2>Alarms that would have fired</h2>")
    if alarms is None:
        parts.append("<p>Alarm evaluation needs the local target's captured metrics.</p>")
    else:
        parts.append(table_html(_alarm_rows(alarms), "alarms"))
    current = None
    for dashboard, fig in dashboards:
        if dashboard != current:
            parts.append(f"<h2>Dashboard {html.escape(dashboard)} (from this run's data)</h2>")
            current = dashboard
        parts.append(figure(fig))
    for title, key in (("Missing records", "missing_keys"), ("Records in flight at the end", "in_flight_keys")):
        if summary.get(key):
            items = "".join(f"<li>{html.escape(k)}</li>" for k in summary[key])
            parts.append(f"<h2>{title} (first {len(summary[key])})</h2><ul>{items}</ul>")
    path.write_text(page(f"CIDB load test {summary['run_id']}", parts))
