"""The benchmark page: each case's measures, the baseline comparison, charts of cost against size, and each
case run under the AWS latency profile beside the same run without it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from loadtest.analysis.html_parts import Card, FigureWriter, cards_html, page, table_html

LATENCY_COLUMNS = ("e2e_seconds", "floor_seconds", "e2e_over_floor", "records_per_second", "lock_wait_p99_ms")


def _latency_pairs(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Each case under a latency profile beside the same case without: both ratios use their own floor."""
    plain = {(row["profile"], row["policies"]): row for _, row in frame[frame["latency"] == "none"].iterrows()}
    rows = []
    for _, row in frame[frame["latency"] != "none"].iterrows():
        without = plain.get((row["profile"], row["policies"]))
        for measure in LATENCY_COLUMNS:
            value = None if without is None else without[measure]
            rows.append({"case": row["case"], "measure": measure, row["latency"]: row[measure], "none": value})
    return rows


def _cost_by_size(frame: pd.DataFrame) -> go.Figure:
    tuned = frame[(frame["profile"] == "tuned") & (frame["latency"] == "none")].sort_values("policies")
    fig = make_subplots(
        rows=1, cols=3, subplot_titles=("API calls per policy", "S3 bytes per output byte", "e2e ÷ floor")
    )
    for col, measure in enumerate(("api_calls_per_policy", "bytes_per_output_byte", "e2e_over_floor"), start=1):
        fig.add_trace(go.Scatter(x=tuned["policies"], y=tuned[measure], mode="lines+markers", name=measure), 1, col)
        fig.update_xaxes(title_text="policies", type="log", row=1, col=col)
    fig.update_layout(title="Cost per record against size (tuned)", height=340, showlegend=False)
    return fig


def _seed_against_tuned(frame: pd.DataFrame) -> go.Figure:
    plain = frame[frame["latency"] == "none"]
    same = plain[plain["policies"] == plain.loc[plain["profile"] == "seed", "policies"].max()]
    measures = ["api_calls_per_policy", "bytes_per_output_byte", "invocations_per_policy", "e2e_over_floor"]
    fig = go.Figure()
    for _, row in same.iterrows():
        fig.add_trace(go.Bar(name=f"{row['profile']} ({row['policies']})", x=measures, y=[row[m] for m in measures]))
    fig.update_layout(title="Seed against tuned, same size", barmode="group", height=340, yaxis_type="log")
    return fig


def write_bench_page(path: Path, cases: dict[str, dict[str, Any]], comparison: list[dict[str, Any]]) -> None:
    frame = pd.DataFrame([{"case": name, "latency": "none", **values} for name, values in cases.items()])
    regressions = [row for row in comparison if row["regressed"]]
    cards = [Card("cases", len(cases), "info")]
    if comparison:
        cards.append(Card("regressions against the baseline", len(regressions), "fail" if regressions else "pass"))
    figure = FigureWriter()
    parts = [f"<h1>CIDB benchmark: {len(cases)} cases</h1>", cards_html(cards), "<h2>Cases</h2>"]
    parts.append(table_html(frame.to_dict("records"), "cases"))
    if comparison:
        parts += ["<h2>Against the baseline</h2>", table_html(comparison, "comparison")]
    pairs = _latency_pairs(frame)
    if pairs:
        parts += ["<h2>Under a latency profile, beside the same run without it</h2>", table_html(pairs, "latency")]
    if ((frame["profile"] == "tuned") & (frame["latency"] == "none")).sum() > 1:
        parts.append(figure(_cost_by_size(frame)))
    plain = frame[frame["latency"] == "none"]
    if (plain["profile"] == "seed").any() and (plain["profile"] == "tuned").any():
        parts.append(figure(_seed_against_tuned(frame)))
    parts.append("<p>peak_rss_mb is the harness process's peak so far (it can only grow across the cases).</p>")
    path.write_text(page("CIDB benchmark", parts))
