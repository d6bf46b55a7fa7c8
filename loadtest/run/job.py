"""``run_loadtest``: one call from options to a finished report directory."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from loadtest.analysis.alarm_eval import evaluate_alarms
from loadtest.analysis.report import dashboard_figures, run_charts, write_html
from loadtest.analysis.summary import (
    invocations_table,
    json_ready,
    load_emf,
    metric_frame,
    problems,
    summarize,
    unsettled,
)
from loadtest.bench.baseline import baseline_entry
from loadtest.bench.cases import BenchCase
from loadtest.emulator.aws_session import AwsSession
from loadtest.run.local_target import run_local
from loadtest.run.mirror import mirror_alarms, ship_logs
from loadtest.run.observation import Progress, RunObservation
from loadtest.run.options import LoadTestError, LoadTestOptions
from loadtest.run.stack_target import run_stack
from pipeline.spec import DeploymentSpec


@dataclass
class LoadTestResult:
    report_dir: Path
    spec: DeploymentSpec
    summary: dict[str, Any]
    alarms: pd.DataFrame | None

    @property
    def problems(self) -> list[str]:
        return problems(self.summary)

    @property
    def unsettled(self) -> list[str]:
        return unsettled(self.summary)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.unsettled

    @property
    def exit_code(self) -> int:
        """1 for a loss, a duplicate or a missed alarm; 3 when records were only still queued or in flight."""
        return 1 if self.problems else 3 if self.unsettled else 0


def default_report_dir() -> Path:
    return Path("loadtest-results") / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def _no_progress(*_: Any) -> None:
    return None


def _mirror(endpoint_url: str, obs: RunObservation, alarms: pd.DataFrame) -> None:
    session = AwsSession(endpoint_url)
    ship_logs(session.client("logs"), obs.outputs, obs.log_dir, obs.run_id)
    mirror_alarms(session.client("cloudwatch"), alarms, obs.run_id)


def run_loadtest(options: LoadTestOptions, progress: Progress = _no_progress) -> LoadTestResult:
    problems = options.problems()
    if problems:
        raise LoadTestError("invalid load-test options: " + "; ".join(problems))
    report_dir = options.out or default_report_dir()
    report_dir.mkdir(parents=True, exist_ok=True)
    run = run_stack if options.target == "stack" else run_local
    obs = run(options, report_dir, progress)
    (report_dir / "stack-outputs.json").write_text(obs.outputs.to_json())

    emf = load_emf(obs)
    alarms = None
    if options.target == "local":
        frame = metric_frame(obs, emf)
        frame.to_csv(report_dir / "metrics.csv", index=False)
        alarms = evaluate_alarms(obs.spec, frame)
        if options.endpoint_url:
            _mirror(options.endpoint_url, obs, alarms)
        invocations_table(obs, emf).to_csv(report_dir / "invocations.csv", index=False)
        dashboards = dashboard_figures(obs.spec, frame)
    else:
        dashboards = []
    fired = [] if alarms is None else list(alarms.loc[alarms["fired"], "name"])
    summary = json_ready(summarize(obs, emf, fired, options.target))
    (report_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    charts = run_charts(emf, obs.samples, len(obs.expected_keys))
    case = BenchCase(options.profile, options.policies, options.latency)
    baseline = baseline_entry(options.baseline, case.name) if options.baseline else None
    write_html(report_dir / "report.html", summary, charts, alarms, dashboards, baseline)
    return LoadTestResult(report_dir, obs.spec, summary, alarms)
