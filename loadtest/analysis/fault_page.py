"""The page of a fault rehearsal: one row per fault, each linking to its own run report."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from loadtest.analysis.html_parts import Card, cards_html, page, table_html


def write_fault_page(path: Path, policies: int, rows: list[dict[str, Any]]) -> None:
    failed = [row["fault"] for row in rows if not row["passed"]]
    cards = [
        Card("faults rehearsed", len(rows), "info"),
        Card("faults passed", len(rows) - len(failed), "fail" if failed else "pass"),
        Card("records lost", sum(row["lost"] for row in rows), "fail" if any(row["lost"] for row in rows) else "pass"),
        Card(
            "duplicates",
            sum(row["duplicates"] for row in rows),
            "fail" if any(row["duplicates"] for row in rows) else "pass",
        ),
        Card(
            "expected alarms missing",
            sum(len(row["alarms_missing"]) for row in rows),
            "fail" if any(row["alarms_missing"] for row in rows) else "pass",
        ),
    ]
    table = [
        {**{k: v for k, v in row.items() if k != "report"}, "report": Path(row["report"]).parent.name} for row in rows
    ]
    links = "".join(
        f"<li><a href='{html.escape(Path(row['report']).parent.name)}/report.html'>{html.escape(row['fault'])}</a></li>"
        for row in rows
    )
    parts = [
        f"<h1>CIDB fault rehearsal: {len(rows)} faults, {policies} policies each</h1>",
        cards_html(cards),
        "<h2>Faults</h2>",
        table_html(table, "faults"),
        f"<h2>Run reports</h2><ul>{links}</ul>",
    ]
    path.write_text(page("CIDB fault rehearsal", parts))
