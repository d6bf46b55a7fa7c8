"""Every metric an alarm or a graph reads is really emitted, checked against a real local run.

Uses the ``local_run`` fixture (tests/conftest.py): ``report_dir`` holds ``logs/<function>.jsonl`` as
the handlers printed them and ``metrics.csv`` with the datapoints the emulator sampled.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from monitoring import Metric, build_monitoring
from pipeline.spec import DeploymentSpec, build_spec


def _spec(local_run) -> DeploymentSpec:
    return getattr(local_run, "spec", None) or build_spec()


def _emf_metrics(report_dir: Path) -> set[tuple[str, str, tuple[tuple[str, str], ...]]]:
    """(namespace, metric, dimensions) of every EMF blob the handlers printed."""
    found = set()
    for path in (report_dir / "logs").glob("*.jsonl"):
        for line in path.read_text().splitlines():
            try:
                blob = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(blob, dict) or "_aws" not in blob:
                continue
            for directive in blob["_aws"]["CloudWatchMetrics"]:
                for keys in directive["Dimensions"]:
                    dimensions = tuple(sorted((key, str(blob[key])) for key in keys))
                    found |= {(directive["Namespace"], m["Name"], dimensions) for m in directive["Metrics"]}
    return found


def _key(metric: Metric) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    return metric.namespace, metric.name, tuple(sorted(metric.dimensions))


def test_every_cidb_metric_referenced_is_in_captured_emf(local_run):
    """GIVEN a local run WHEN alarms and graphs read an EMF metric THEN that function emitted it."""
    spec = _spec(local_run)
    emitted = _emf_metrics(local_run.report_dir)
    referenced = [m for m in build_monitoring(spec).metrics() if m.namespace == spec.metrics_namespace]
    missing = sorted({f"{m.name} {dict(m.dimensions)}" for m in referenced if _key(m) not in emitted})
    assert not missing, (
        f"referenced by monitoring but never emitted in the local run: {missing}. Event counters (lock failures, "
        "publish retries, ...) are only emitted when the event happens: make the load test trigger them, or have "
        "the handler emit 0"
    )


def test_every_aws_metric_referenced_was_sampled_by_the_emulator(local_run):
    """Without these datapoints the local alarm evaluation would call an alarm quiet for lack of data."""
    spec = _spec(local_run)
    frame = pd.read_csv(local_run.report_dir / "metrics.csv")
    sampled = {
        (row.namespace, row.metric_name, tuple(sorted((k, str(v)) for k, v in json.loads(row.dimensions).items())))
        for row in frame.drop_duplicates(["namespace", "metric_name", "dimensions"]).itertuples()
    }
    referenced = [m for m in build_monitoring(spec).metrics() if m.namespace.startswith("AWS/")]
    missing = sorted({f"{m.namespace} {m.name} {dict(m.dimensions)}" for m in referenced if _key(m) not in sampled})
    assert not missing, f"referenced by monitoring but not in metrics.csv: {missing}"


@pytest.mark.parametrize("role", ["collector", "reporter", "verifier"])
def test_each_function_logged_during_the_run(local_run, role):
    path = local_run.report_dir / "logs" / f"{getattr(_spec(local_run), role).name}.jsonl"
    assert path.exists() and path.stat().st_size, f"{path} is missing or empty; the checks above need it"
