"""Every rehearsed fault, at 200 policies, through the real handlers, emulator and mapping runtime.

GIVEN one fault injected into a run WHEN the run ends THEN no record is lost or duplicated,
the fault really happened (its injection count), and the alarms on-call must get for it fired.
Run with ``pytest -m faults`` (about 4 minutes on 2 cores); ``.ci/run`` runs it as its own step.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadtest.faults import FAULTS
from loadtest.faults.catalog import alarm_matches
from loadtest.faults.poison import CORRUPTED_RECORDS
from loadtest.faults.poison import NAME as POISON
from loadtest.run.job import LoadTestResult, run_loadtest
from loadtest.run.options import LoadTestOptions
from loadtest.run.rehearse import run_rehearsal

pytestmark = pytest.mark.faults
POLICIES = 200


def rehearse(name: str, out: Path) -> LoadTestResult:
    return run_loadtest(LoadTestOptions(policies=POLICIES, faults=(name,), idle_seconds=2, out=out))


@pytest.mark.parametrize("name", list(FAULTS))
def test_fault_loses_nothing_and_trips_its_alarms(name: str, tmp_path: Path) -> None:
    run = rehearse(name, tmp_path)
    s = run.summary
    [fault] = s["faults"]
    assert fault["injected"] > 0, f"{name} was never injected; the run rehearsed nothing"
    damaged = fault["dlq_records"]
    assert (s["lost"], s["duplicates"], s["unique_rows"]) == (0, 0, POLICIES - damaged), s["missing_keys"][:5]
    assert s["dlq"] == fault["poison"] + damaged, f"only what the fault planted may reach the DLQ: {s['dlq_keys'][:5]}"
    assert s["forensics"]["by_cause"]["dlq"] == damaged and s["forensics"]["lost"] == 0, s["forensics"]
    fired = s["alarms_fired"]
    for expected in FAULTS[name].alarms:
        assert any(alarm_matches(expected, alarm) for alarm in fired), f"{name}: {expected} not in {fired}"
    assert (run.problems, run.unsettled, run.exit_code) == ([], [], 0)


def test_poison_is_named_in_the_dlq_and_fails_nothing_else(tmp_path: Path) -> None:
    run = rehearse(POISON, tmp_path)
    poison = run.summary["dlq_unparseable_messages"]
    assert len(poison) == 5, poison
    assert all(m["message_id"] and m["first_bytes"] and m["error"] for m in poison), poison
    assert any("UTF-8" in m["error"] for m in poison), "the lone surrogate must be refused as text, not as a write"
    assert run.summary["unique_rows"] == POLICIES - CORRUPTED_RECORDS
    # The records damaged on their way are no loss: forensics finds them in the DLQ, with the validator's error.
    damaged = run.summary["forensics"]["samples"]["dlq"]
    assert len(damaged) == CORRUPTED_RECORDS and all("wrong type" in d["detail"] for d in damaged), damaged


def test_rehearsal_runs_each_fault_apart_and_tables_them(tmp_path: Path) -> None:
    options = LoadTestOptions(policies=100, faults=("duplicate-delivery", "clock-skew"), idle_seconds=2, out=tmp_path)
    rehearsal = run_rehearsal(options, progress=lambda *_: None)
    rows = json.loads((tmp_path / "faults.json").read_text())
    assert [r["fault"] for r in rows] == ["duplicate-delivery", "clock-skew"]
    assert all(r["passed"] and r["injected"] > 0 for r in rows), rows
    assert (tmp_path / "duplicate-delivery" / "report.html").is_file() and rehearsal.exit_code == 0
    assert "clock-skew" in (tmp_path / "report.html").read_text()
