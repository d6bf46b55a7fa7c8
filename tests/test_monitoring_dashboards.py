"""Dashboard bodies: valid CloudWatch JSON, thresholds from alarms, log widgets running the saved queries."""

from __future__ import annotations

import json

import pytest

from monitoring import MonitoredResources, View, build_monitoring, render_dashboard_body
from pipeline.spec import PROFILES, build_spec
from queries import load_query

WIDGET_TYPES = {"metric", "text", "log", "alarm"}
REGION = "eu-west-1"


def _rendered(profile: str):
    spec = build_spec(profile)
    monitoring = build_monitoring(spec)
    resources = MonitoredResources.from_spec(spec)
    names = [monitoring.composite.name, *(a.name for a in monitoring.alarms)]
    arns = {n: f"arn:aws:cloudwatch:{REGION}:123456789012:alarm:{n}" for n in names}
    for dashboard in monitoring.dashboards:
        body = render_dashboard_body(dashboard, region=REGION, resources=resources, alarm_arns=arns)
        yield spec, monitoring, dashboard, json.loads(json.dumps(body))


CASES = [case for profile in PROFILES for case in _rendered(profile)]
IDS = [f"{spec.profile}-{dashboard.view}" for spec, _, dashboard, _ in CASES]


def test_summary_and_detail_views_exist():
    views = {dashboard.view for _, _, dashboard, _ in CASES if dashboard.name.startswith("cidb-dev")}
    assert views == set(View)


@pytest.mark.parametrize(("spec", "monitoring", "dashboard", "body"), CASES, ids=IDS)
def test_layout_is_valid_and_does_not_overlap(spec, monitoring, dashboard, body):
    cells: set[tuple[int, int]] = set()
    for widget in body["widgets"]:
        assert widget["type"] in WIDGET_TYPES, f"{dashboard.name}: unknown widget type {widget['type']}"
        assert widget["x"] >= 0 and widget["y"] >= 0, f"{dashboard.name}: negative position"
        assert widget["width"] >= 1 and widget["x"] + widget["width"] <= 24, f"{dashboard.name}: wider than 24"
        area = {
            (x, y)
            for x in range(widget["x"], widget["x"] + widget["width"])
            for y in range(widget["y"], widget["y"] + widget["height"])
        }
        assert not area & cells, f"{dashboard.name}: widgets overlap"
        cells |= area


@pytest.mark.parametrize(("spec", "monitoring", "dashboard", "body"), CASES, ids=IDS)
def test_metric_widgets_are_well_formed(spec, monitoring, dashboard, body):
    thresholds = {a.threshold for a in monitoring.alarms}
    for widget in (w for w in body["widgets"] if w["type"] == "metric"):
        props = widget["properties"]
        assert props["region"] == REGION and props["title"], dashboard.name
        ids = {row[-1]["id"] for row in props["metrics"] if "id" in row[-1]}
        labels = [row[-1]["label"] for row in props["metrics"] if row[-1].get("visible", True)]
        assert len(labels) == len(set(labels)), f"{props['title']}: duplicate labels {labels}"
        for row in props["metrics"]:
            options = row[-1]
            if "expression" in options:
                assert len(row) == 1, f"{props['title']}: expression rows hold only the expression"
                words = {w for w in options["expression"].replace("(", " ").replace(")", " ").split() if w.islower()}
                assert words <= ids, f"{props['title']}: expression uses unknown ids {words - ids}"
            else:
                namespace, name, *dimensions = row[:-1]
                assert namespace and name and len(dimensions) % 2 == 0, f"{props['title']}: bad metric row {row}"
                assert options["period"] > 0 and options["stat"], f"{props['title']}: {row}"
        for line in props.get("annotations", {}).get("horizontal", []):
            assert line["value"] in thresholds, f"{props['title']}: annotation {line} is not an alarm threshold"


@pytest.mark.parametrize(("spec", "monitoring", "dashboard", "body"), CASES, ids=IDS)
def test_log_widgets_run_saved_queries_on_their_log_groups(spec, monitoring, dashboard, body):
    by_title = {w.title: w for w in dashboard.widgets if hasattr(w, "query")}
    for widget in (w for w in body["widgets"] if w["type"] == "log"):
        props = widget["properties"]
        query = load_query(by_title[props["title"]].query)
        sources = " | ".join(f"SOURCE '{getattr(spec, role).log_group}'" for role in query.log_groups)
        assert props["query"] == f"{sources} | {query.text}", props["title"]
        assert props["region"] == REGION and props["view"] == "table"


def test_summary_shows_every_alarm_state_composite_first():
    for spec, monitoring, dashboard, body in CASES:
        if dashboard.view != View.SUMMARY:
            continue
        (alarm_widget,) = [w for w in body["widgets"] if w["type"] == "alarm"]
        arns = alarm_widget["properties"]["alarms"]
        assert len(arns) == len(monitoring.alarms) + 1 <= 100, spec.profile
        assert arns[0].endswith(monitoring.composite.name), spec.profile


def test_summary_has_queue_age_dlq_errors_and_records():
    titles = {w.title for w in build_monitoring(build_spec()).dashboard(View.SUMMARY).widgets if hasattr(w, "title")}
    for needed in ("age of oldest message", "DLQ depth", "Lambda errors", "expected vs written"):
        assert any(needed in title for title in titles), f"summary lacks {needed!r}"


@pytest.mark.parametrize(("spec", "monitoring", "dashboard", "body"), CASES, ids=IDS)
def test_graphs_inherit_the_consoles_period(spec, monitoring, dashboard, body):
    assert body["periodOverride"] == "inherit", f"{dashboard.name}: graphs must follow the period picked"


def _graph_properties(title: str) -> dict:
    return next(
        w["properties"]
        for _, _, _, body in CASES
        for w in body["widgets"]
        if w["type"] == "metric" and w["properties"]["title"] == title
    )


def test_counts_go_on_the_right_axis_beside_milliseconds():
    """GIVEN the S3 write graph (durations in ms and conflict counts) WHEN rendered THEN counts use the right axis."""
    props = _graph_properties("S3 writes: duration and conflicts")
    axes = {row[1] + " " + row[-1]["stat"]: row[-1].get("yAxis", "left") for row in props["metrics"]}
    assert axes["WriteConflicts Sum"] == "right" and axes["S3WriteMs p99"] == "left", axes
    assert props["yAxis"]["right"]["label"] == "count" and props["yAxis"]["left"]["label"] == "ms"
    only_ms = _graph_properties("Lock wait")
    assert all("yAxis" not in row[-1] for row in only_ms["metrics"]), "a graph of milliseconds only keeps one axis"


def test_dashboard_header_links_the_runbook():
    header = build_monitoring(build_spec()).dashboard(View.SUMMARY).widgets[0]
    assert "Runbook: `docs/runbook.md` in the repository" in header.markdown, "without runbookUrl: no dead link"
