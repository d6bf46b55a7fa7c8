"""The one place that names alarms, dashboards and saved queries.

Names are what on-call sees in a page, so they follow one pattern everywhere:
``<prefix>-<component>-<what>-<severity>``, with the deployment's base name as prefix.
"""

from __future__ import annotations

from enum import StrEnum

RUNBOOK_PATH = "docs/runbook.md"


class View(StrEnum):
    """Dashboards: one on-call summary, then one detail view per concern."""

    SUMMARY = "summary"
    QUEUE = "queue"
    LOCKS = "locks"
    THROTTLING = "throttling"
    LAMBDA = "lambda"


def alarm_name(prefix: str, component: str, suffix: str, severity: str) -> str:
    return f"{prefix}-{component}-{suffix}-{severity}"


def dashboard_name(prefix: str, view: View) -> str:
    return f"{prefix}-{view}"


def query_definition_name(prefix: str, query: str) -> str:
    """Logs Insights shows ``/`` as folders, so each deployment's queries sit together."""
    return f"{prefix}/{query}"


def runbook_link(anchor: str, base: str = RUNBOOK_PATH) -> str:
    """``base`` is the runbook's URL pinned to a commit (``alarms.runbook_url``), or the relative path."""
    return f"{base}#{anchor}"
