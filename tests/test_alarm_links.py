"""One table says which dashboard and saved query belong to each alarm; everything else agrees with it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from monitoring import build_monitoring
from monitoring.alarm_links import ALARM_LINKS, link_for, routing_table
from monitoring.naming import dashboard_name
from monitoring.notifier import notifier_dlq_alarm
from pipeline.alarm_message import Routing
from pipeline.spec import PROFILES, build_spec
from queries import load_queries

RUNBOOK = Path(__file__).resolve().parents[1] / "docs" / "runbook.md"


def all_alarms(profile: str) -> list:
    spec = build_spec(profile)
    plan = build_monitoring(spec)
    return [*plan.alarms, plan.composite, notifier_dlq_alarm(spec, f"{spec.base_name}-alarm-notifier-dlq")]


@pytest.mark.parametrize("profile", PROFILES)
def test_every_alarm_has_links_to_an_existing_query(profile):
    names = {q.name for q in load_queries()}
    for alarm in all_alarms(profile):
        link = link_for(alarm.runbook_anchor)
        assert link.query in names, f"{alarm.name}: query {link.query!r} is not in queries/"


def test_every_entry_belongs_to_an_alarm():
    used = {a.runbook_anchor for profile in PROFILES for a in all_alarms(profile)}
    assert set(ALARM_LINKS) == used, f"entries without alarm: {set(ALARM_LINKS) - used}"


def test_unknown_anchor_says_where_to_add_it():
    with pytest.raises(KeyError, match=r"monitoring\.alarm_links\.ALARM_LINKS"):
        link_for("no-such-anchor")


def test_runbook_names_the_same_first_query_and_dashboard():
    text = RUNBOOK.read_text()
    for anchor, link in ALARM_LINKS.items():
        entry = text.split(f'<a id="{anchor}"></a>', 1)[1].split("<a id=", 1)[0]
        first_query = re.search(r"`([\w-]+)`", entry.split("**First query:**", 1)[1])
        first_dashboard = re.search(r"`<prefix>-([\w-]+)`", entry.split("**Dashboard:**", 1)[1])
        assert first_query and first_query[1] == link.query, f"runbook #{anchor}: first query vs ALARM_LINKS"
        assert first_dashboard and first_dashboard[1] == link.view, f"runbook #{anchor}: dashboard vs ALARM_LINKS"


@pytest.mark.parametrize("profile", PROFILES)
def test_routing_table_routes_every_alarm(profile):
    spec = build_spec(profile)
    alarms = all_alarms(profile)
    notifier = alarms[-1]
    table = routing_table(
        spec, build_monitoring(spec), extra_alarms=[notifier], log_groups={notifier.name: ["/aws/lambda/n"]}
    )
    routing = Routing(table)
    for alarm in alarms:
        route = routing.route(alarm.name)
        assert route is not None, f"{alarm.name}: not in the routing table"
        link = ALARM_LINKS[alarm.runbook_anchor]
        assert route.dashboard == dashboard_name(spec.base_name, link.view), alarm.name
        assert route.query_name == f"{spec.base_name}/{link.query}", alarm.name
        assert route.dlq == link.dlq, alarm.name
        assert route.log_groups and all(g.startswith("/aws/lambda/") for g in route.log_groups), alarm.name
    assert routing.route(notifier.name).log_groups == ("/aws/lambda/n",)
    assert routing.route(f"{spec.base_name}-verifier-errors-warning").log_groups == (spec.verifier.log_group,)
