"""``--fault a,b,…``: one run per fault, each in its own directory, and one table of them all."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtest.analysis.fault_page import write_fault_page
from loadtest.run.job import LoadTestResult, default_report_dir, run_loadtest
from loadtest.run.observation import Progress
from loadtest.run.options import LoadTestOptions


@dataclass
class Rehearsal:
    report_dir: Path
    runs: dict[str, LoadTestResult]

    @property
    def rows(self) -> list[dict[str, Any]]:
        return [fault_row(name, run) for name, run in self.runs.items()]

    @property
    def exit_code(self) -> int:
        return max((run.exit_code for run in self.runs.values()), default=0)


def fault_row(name: str, run: LoadTestResult) -> dict[str, Any]:
    """One line of the faults table: what was injected, what it cost, and which alarms told."""
    s = run.summary
    [fault] = [f for f in s["faults"] if f["fault"] == name]
    return {
        "fault": name,
        "injected": fault["injected"],
        "lost": s["lost"],
        "duplicates": s["duplicates"],
        "dlq": s["dlq"],
        "queued_or_in_flight": s["queued_at_end"] + s["in_flight"],
        "alarms_expected": fault["expected_alarms"],
        "alarms_missing": fault["alarms_missing"],
        "alarms_fired": s["alarms_fired"],
        "e2e_seconds": s["e2e_seconds"],
        "passed": run.exit_code == 0,
        "report": str(run.report_dir / "report.html"),
    }


def run_rehearsal(options: LoadTestOptions, progress: Progress, on_run: Any = None) -> Rehearsal:
    """Each fault in ``options.faults`` on a fresh emulator of its own, so that their effects never mix."""
    report_dir = options.out or default_report_dir()
    runs: dict[str, LoadTestResult] = {}
    for name in options.faults:
        one = dataclasses.replace(options, faults=(name,), out=report_dir / name)
        runs[name] = run_loadtest(one, progress)
        if on_run is not None:
            on_run(name, runs[name])
    rehearsal = Rehearsal(report_dir, runs)
    (report_dir / "faults.json").write_text(json.dumps(rehearsal.rows, indent=2))
    write_fault_page(report_dir / "report.html", options.policies, rehearsal.rows)
    return rehearsal
