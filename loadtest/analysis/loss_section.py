"""The report's first section when a run lost records: why, by cause, and the writers that overwrote rows."""

from __future__ import annotations

import html
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from loadtest.analysis.html_parts import FigureWriter, table_html

MAX_TIMELINE_WRITERS = 80
ROW_HEIGHT = 14


def loss_section(summary: dict[str, Any], figure: FigureWriter) -> list[str]:
    """Nothing for a run that delivered every record; otherwise counts, samples and the writer timeline."""
    forensics = summary.get("forensics") or {}
    counts = {cause: n for cause, n in (forensics.get("by_cause") or {}).items() if n}
    if not counts:
        return []
    parts = [
        "<h2>Why records were lost</h2>",
        "<p>Every expected record missing from the output, by cause. Only <b>overwritten</b>, "
        "<b>never-published</b>, <b>rejected</b> and <b>unknown</b> are losses; the others are still on "
        "their way (DLQ, queue, in flight, committed). <b>unknown</b> must be 0: a record there means the "
        "toolkit's evidence has a hole.</p>",
        table_html([{"cause": cause, "records": n} for cause, n in counts.items()], "causes"),
    ]
    samples = [
        {"cause": cause, "seq": s["seq"], "trace id": s["trace_id"], "evidence": s["detail"]}
        for cause, items in (forensics.get("samples") or {}).items()
        for s in items
    ]
    parts += ["<h3>Samples</h3>", table_html(samples, "samples")]
    writers = forensics.get("writers") or []
    if writers:
        parts.append(figure(writer_timeline(writers)))
    reads = f"{forensics.get('versions_read', 0)} object versions read"
    logs = f"{forensics.get('log_lines_read', 0)} reporter log lines read" if forensics.get("logs_available") else ""
    parts.append(f"<p>Evidence: {html.escape(', '.join(p for p in (reads, logs) if p))}.</p>")
    return parts


def writer_timeline(writers: list[dict[str, Any]]) -> go.Figure:
    """Each writer's read-append-write cycle as a bar from its read to its write.

    A bar that spans another writer's write ends in a lost update: red bars are writes that
    dropped rows (they had read an older version), orange ones are writes whose rows were dropped.
    """
    frame = pd.DataFrame(writers).dropna(subset=["read_at_ms", "write_at_ms"])
    frame = frame.sort_values("read_at_ms").head(MAX_TIMELINE_WRITERS)
    fig = go.Figure()
    if frame.empty:
        return fig
    start = pd.to_datetime(frame["read_at_ms"], unit="ms", utc=True)
    end = pd.to_datetime(frame["write_at_ms"], unit="ms", utc=True)
    labels = frame["writer"].str.split("/").str[-1].str[:8] + " v" + frame["version_id"].str[:6]
    colours = [
        "#c0392b" if dropped else "#e67e22" if lost else "#7f8c8d"
        for dropped, lost in zip(frame["dropped_versions"].map(bool), frame["rows_lost"] > 0, strict=True)
    ]
    hover = [
        f"writer {w}<br>read version {r}<br>appended {a} rows; {n} of them lost later<br>dropped versions: {d}"
        for w, r, a, n, d in zip(
            frame["writer"],
            frame["read_version"],
            frame["rows_appended"],
            frame["rows_lost"],
            frame["dropped_versions"].map(lambda v: ", ".join(x[:8] for x in v) or "none"),
            strict=True,
        )
    ]
    fig.add_trace(
        go.Bar(
            base=start,
            x=(end - start).dt.total_seconds() * 1000,
            y=labels,
            orientation="h",
            marker_color=colours,
            hovertext=hover,
            hoverinfo="text",
        )
    )
    fig.update_layout(
        title="Writers' read → write cycles (red: its write dropped rows; orange: its rows were dropped)",
        xaxis={"type": "date", "title": "time (UTC)"},
        yaxis={"autorange": "reversed", "title": "writer (request id) and the version it wrote"},
        height=max(300, ROW_HEIGHT * len(frame) + 120),
        showlegend=False,
    )
    return fig
