"""Every alarm links to a runbook entry that says what it means, what to run, where to look, how to fix."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
import typer

from cidb.cli import app
from loadtest.faults import FAULTS
from loadtest.faults.catalog import alarm_matches
from monitoring import View, build_monitoring
from monitoring.notifier import notifier_dlq_alarm
from pipeline.spec import PROFILES, build_spec
from queries import load_queries

RUNBOOK = Path(__file__).resolve().parents[1] / "docs" / "runbook.md"
_ANCHOR = re.compile(r'<a id="([\w-]+)"></a>')


def _entries() -> dict[str, str]:
    """Anchor -> text up to the next anchor."""
    text = RUNBOOK.read_text()
    marks = list(_ANCHOR.finditer(text))
    ends = [m.start() for m in marks[1:]] + [len(text)]
    return {m[1]: text[m.end() : end] for m, end in zip(marks, ends, strict=True)}


def _alarms(profile: str) -> list:
    spec = build_spec(profile)
    monitoring = build_monitoring(spec)
    return [*monitoring.alarms, monitoring.composite, notifier_dlq_alarm(spec, f"{spec.base_name}-alarm-notifier-dlq")]


@pytest.mark.parametrize("profile", PROFILES)
def test_every_alarm_description_names_an_existing_runbook_entry(profile):
    entries = _entries()
    for alarm in _alarms(profile):
        assert f"docs/runbook.md#{alarm.runbook_anchor}" in alarm.description, f"{alarm.name}: no runbook link"
        assert alarm.runbook_anchor in entries, f"{alarm.name}: docs/runbook.md has no #{alarm.runbook_anchor}"


@pytest.mark.parametrize("anchor", sorted(_entries()))
def test_entry_says_meaning_first_query_dashboard_and_fix(anchor):
    entry = _entries()[anchor]
    for part in ("**Means:**", "**First query:**", "**Dashboard:**", "**Fix:**"):
        assert part in entry, f"runbook #{anchor} lacks {part}"
    first_query = entry.split("**First query:**", 1)[1].split("\n\n", 1)[0]
    named = set(re.findall(r"`([\w-]+)`", first_query))
    assert named & {q.name for q in load_queries()}, f"runbook #{anchor}: first query {named} is not a saved query"
    dashboard = entry.split("**Dashboard:**", 1)[1].split("\n\n", 1)[0]
    views = set(re.findall(r"`<prefix>-([\w-]+)`", dashboard))
    assert views and views <= {v.value for v in View}, f"runbook #{anchor}: dashboards {views} do not exist"


def test_every_entry_belongs_to_an_alarm():
    used = {a.runbook_anchor for profile in PROFILES for a in _alarms(profile)}
    assert set(_entries()) == used, (
        f"entries without alarm: {set(_entries()) - used}; missing: {used - set(_entries())}"
    )


def test_internal_links_point_at_entries():
    links = set(re.findall(r"\]\(#([\w-]+)\)", RUNBOOK.read_text()))
    assert links <= set(_entries()), f"broken runbook links: {links - set(_entries())}"


def test_dlq_entry_explains_safe_redrive():
    entry = _entries()["dlq-depth"]
    assert "cidb dlq redrive --dry-run" in entry
    assert "record key" in entry


def test_every_cidb_command_in_the_runbook_exists():
    cli = typer.main.get_command(app)
    used = set(re.findall(r"`cidb ([a-z]+)(?: ([a-z]+))?", RUNBOOK.read_text()))
    assert {verb for verb, _ in used} >= {"status", "verify", "trace", "dlq", "lock", "runs", "query", "loadtest"}
    for verb, sub in used:
        assert verb in cli.commands, f"runbook uses `cidb {verb}`, which does not exist"
        group = cli.commands[verb]
        if isinstance(group, click.Group) and sub:
            assert sub in group.commands, f"runbook uses `cidb {verb} {sub}`, which does not exist"


def test_every_alarm_a_fault_trips_says_how_to_rehearse_it():
    alarms = build_monitoring(build_spec("tuned")).alarms
    for fault in FAULTS.values():
        for expected in fault.alarms:
            [alarm] = [a for a in alarms if alarm_matches(expected, a.name)]
            assert f"--fault {fault.name}`" in _entries()[alarm.runbook_anchor], (
                f"runbook #{alarm.runbook_anchor} must say `cidb loadtest --fault {fault.name}` rehearses it"
            )
