"""Leave an emulator that outlives its load test looking like a deployed stack to the on-call verbs.

On AWS the functions' logs land in CloudWatch Logs and the alarms in CloudWatch. The emulator's
functions write their logs to files, and the alarms are judged by the load test itself; copying
both into the emulator's CloudWatch lets ``cidb status``, ``trace`` and ``query`` read them the
way they read a stack. Only done when the emulator was started outside the load test
(``--endpoint-url``): one that the load test started stops with it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from loadtest.analysis.captured_logs import line_time, merge_instance_logs
from monitoring.naming import runbook_link
from ops.outputs import StackOutputs

MAX_BATCH_EVENTS = 10_000
MAX_BATCH_BYTES = 1_000_000  # PutLogEvents allows 1,048,576 bytes, counting 26 per event
EVENT_OVERHEAD = 26
VERDICT_NAMESPACE = "cidb/loadtest"


def ship_logs(logs: Any, outputs: StackOutputs, log_dir: Path, run_id: str) -> int:
    """Put each function's captured lines into its log group, in time order; returns the events sent."""
    sent = 0
    groups = {
        getattr(outputs, f"{role}_function_name"): getattr(outputs, f"{role}_log_group_name")
        for role in ("collector", "reporter", "verifier")
    }
    for path in merge_instance_logs(log_dir):
        group = groups.get(path.stem)
        if group is None:
            continue
        stream = f"loadtest/{run_id}"
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        events = [
            {"timestamp": int(line_time(line) * 1000), "message": line}
            for line in path.read_text().splitlines()
            if line.strip()
        ]
        for batch in _batches(sorted(events, key=lambda e: e["timestamp"])):
            logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)
            sent += len(batch)
    return sent


def mirror_alarms(cloudwatch: Any, alarms: pd.DataFrame, run_id: str) -> int:
    """One alarm per row of the load test's evaluation, in ALARM where it fired; returns how many fired."""
    for row in alarms.itertuples():
        cloudwatch.put_metric_alarm(
            AlarmName=row.name,
            AlarmDescription=f"Judged by load test {run_id}. Runbook: {runbook_link(row.runbook_anchor)}",
            Namespace=VERDICT_NAMESPACE,
            MetricName="Verdict",
            Statistic="Maximum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=0,
            ComparisonOperator="GreaterThanThreshold",
        )
        worst = "" if pd.isna(row.worst_value) else f" (worst {row.worst_value:g} against {row.threshold:g})"
        cloudwatch.set_alarm_state(
            AlarmName=row.name,
            StateValue="ALARM" if row.fired else "OK",
            StateReason=f"load test {run_id}: {'fired' if row.fired else 'did not fire'}{worst}",
            StateReasonData=json.dumps({"run_id": run_id}),
        )
    return int(alarms["fired"].sum())


def _batches(events: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    batches: list[list[dict[str, Any]]] = [[]]
    size = 0
    for event in events:
        cost = len(event["message"].encode()) + EVENT_OVERHEAD
        if len(batches[-1]) >= MAX_BATCH_EVENTS or size + cost > MAX_BATCH_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(event)
        size += cost
    return [b for b in batches if b]
