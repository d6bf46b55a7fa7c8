"""Pieces shared by the HTML pages (run report, fault rehearsal, benchmark): one style, plotly inlined once.

The pages inline plotly.js's *basic* bundle (scatter and bar traces, 1.1 MB), vendored from npm's
``plotly.js-basic-dist-min`` at the version that plotly.py itself bundles (a test checks both), instead of the
full 4.9 MB bundle: a self-contained report then stays under about 1.5 MB. Charts use scatter and bar only.
"""

from __future__ import annotations

import functools
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs_version

VENDOR_DIR = Path(__file__).parent / "vendor"

STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0}"
    "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;font-size:13px}"
    ".cards{display:flex;flex-wrap:wrap;gap:12px;margin:1em 0}"
    ".card{border-radius:8px;padding:12px 16px;min-width:150px;border:2px solid #ccc}"
    ".card .label{font-size:12px;color:#555}.card .value{font-size:26px;font-weight:bold}"
    ".card .base{font-size:12px;color:#555}"
    ".card.pass{border-color:#2a7;background:#effaf3}.card.fail{border-color:#c33;background:#fdeeee}"
    ".card.info{border-color:#999;background:#f6f6f6}"
    ".bad{color:#b00;font-weight:bold}.ok{color:#070;font-weight:bold}"
)


@dataclass(frozen=True)
class Card:
    label: str
    value: Any
    state: str  # pass | fail | info
    baseline: Any = None


def cards_html(cards: list[Card]) -> str:
    items = []
    for card in cards:
        base = "" if card.baseline is None else f"<div class='base'>baseline {html.escape(str(card.baseline))}</div>"
        items.append(
            f"<div class='card {card.state}' data-card='{html.escape(card.label)}'>"
            f"<div class='label'>{html.escape(card.label)}</div>"
            f"<div class='value'>{html.escape(_text(card.value))}</div>{base}</div>"
        )
    return f"<div class='cards'>{''.join(items)}</div>"


def _text(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value) or "none"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_text(v)}" for k, v in value.items()) or "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def table_html(rows: list[dict[str, Any]], css_class: str = "") -> str:
    """Rows of plain values; lists and mappings are written out as text, never as JSON."""
    if not rows:
        return "<p>none</p>"
    columns = list(rows[0])
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_text(row.get(c)))}</td>" for c in columns) + "</tr>" for row in rows
    )
    return f"<table class='{css_class}'><tr>{head}</tr>{body}</table>"


def pairs_html(data: dict[str, Any]) -> str:
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_text(v))}</td></tr>" for k, v in data.items())
    return f"<table>{rows}</table>"


def plotly_basic_path() -> Path:
    return VENDOR_DIR / f"plotly-basic-{get_plotlyjs_version()}.min.js"


@functools.cache
def plotly_basic_js() -> str:
    path = plotly_basic_path()
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: plotly.py bundles plotly.js {get_plotlyjs_version()}, but no basic bundle of that version is "
            "vendored; run `npm pack plotly.js-basic-dist-min@<version>` and copy plotly-basic.min.js there"
        )
    return path.read_text()


class FigureWriter:
    """Figures as HTML; plotly.js (the basic bundle) goes into the page once, before the first figure."""

    def __init__(self) -> None:
        self._first = True

    def __call__(self, fig: go.Figure) -> str:
        script = f"<script>{plotly_basic_js()}</script>" if self._first else ""
        self._first = False
        return script + fig.to_html(full_html=False, include_plotlyjs=False)


def page(title: str, parts: list[str]) -> str:
    head = f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
    return "\n".join([head, f"<style>{STYLE}</style></head><body>", *parts, "</body></html>"])
