"""Dashboards: the on-call summary and one detail view per concern, assembled from monitoring sections."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from monitoring.model import AlarmDefinition
from monitoring.naming import RUNBOOK_PATH, View, dashboard_name
from monitoring.widgets import AlarmStatusWidget, TextWidget, Widget


class Section(Protocol):
    """A monitoring class: owns its metrics and alarms, and says where its graphs go."""

    @property
    def alarms(self) -> tuple[AlarmDefinition, ...]: ...

    def summary_widgets(self) -> list[Widget]: ...

    def detail_widgets(self) -> dict[View, list[Widget]]: ...


@dataclass(frozen=True)
class DashboardDefinition:
    name: str
    view: View
    widgets: tuple[Widget, ...]


_TITLES = {
    View.SUMMARY: "on-call summary",
    View.QUEUE: "queue age, backlog and throughput",
    View.LOCKS: "S3 lock contention",
    View.THROTTLING: "throttling and retries",
    View.LAMBDA: "Lambda performance",
}


def build_dashboards(
    prefix: str, sections: Sequence[Section], alarm_names: Sequence[str], runbook: str = RUNBOOK_PATH
) -> tuple[DashboardDefinition, ...]:
    """Summary first (header, alarm status, each section's summary graphs), then the detail views.

    ``runbook`` is the runbook's URL pinned to a commit when the stack sets one, else its relative path.
    """
    # A relative link goes nowhere in the console: without a pinned URL the header names the file as text.
    runbook_text = f"[{RUNBOOK_PATH}]({runbook})" if "://" in runbook else f"`{RUNBOOK_PATH}` in the repository"
    links = " · ".join(f"[{view}](#dashboards:name={dashboard_name(prefix, view)})" for view in View)
    by_view: dict[View, list[Widget]] = {view: [] for view in View}
    by_view[View.SUMMARY] = [
        AlarmStatusWidget("Alarms (composite first)", tuple(alarm_names)),
        *(w for section in sections for w in section.summary_widgets()),
    ]
    for section in sections:
        for view, widgets in section.detail_widgets().items():
            by_view[view].extend(widgets)
    return tuple(
        DashboardDefinition(
            dashboard_name(prefix, view),
            view,
            (
                TextWidget(f"## {prefix}: {_TITLES[view]}\nRunbook: {runbook_text} · Dashboards: {links}"),
                *widgets,
            ),
        )
        for view, widgets in by_view.items()
        if widgets
    )
