"""Dashboard widgets as data, and the named sizes they are laid out with (a 24-unit wide grid)."""

from __future__ import annotations

from dataclasses import dataclass

from monitoring.model import AlarmDefinition, Annotation, MathExpression, Metric

FULL_WIDTH = 24
HALF_WIDTH = 12
THIRD_WIDTH = 8
GRAPH_HEIGHT = 6
LOG_HEIGHT = 6
ALARM_STATUS_HEIGHT = 6
HEADER_HEIGHT = 2


@dataclass(frozen=True)
class GraphWidget:
    title: str
    metrics: tuple[Metric | MathExpression, ...]
    annotations: tuple[Annotation, ...] = ()
    left_axis_label: str = ""
    width: int = THIRD_WIDTH
    height: int = GRAPH_HEIGHT


@dataclass(frozen=True)
class LogWidget:
    """Runs a saved query (by name) over the log groups the query file names."""

    title: str
    query: str
    width: int = HALF_WIDTH
    height: int = LOG_HEIGHT


@dataclass(frozen=True)
class AlarmStatusWidget:
    title: str
    alarm_names: tuple[str, ...]
    width: int = FULL_WIDTH
    height: int = ALARM_STATUS_HEIGHT


@dataclass(frozen=True)
class TextWidget:
    markdown: str
    width: int = FULL_WIDTH
    height: int = HEADER_HEIGHT


Widget = GraphWidget | LogWidget | AlarmStatusWidget | TextWidget


def graph(
    title: str,
    *metrics: Metric | MathExpression,
    alarms: tuple[AlarmDefinition, ...] = (),
    left_axis_label: str = "",
    width: int = THIRD_WIDTH,
) -> GraphWidget:
    """A graph whose threshold lines come from the alarms watching its metrics."""
    return GraphWidget(title, metrics, tuple(a.annotation for a in alarms), left_axis_label, width)
