"""Turn a run's observations into the summary, the per-invocation table and the metric frame."""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

import pandas as pd

from loadtest.analysis.captured_logs import emf_datapoints, merge_instance_logs
from loadtest.analysis.metrics_frame import build_frame, lambda_rows, sns_rows, sqs_rows
from loadtest.faults.rehearsal import judge_faults
from loadtest.run.observation import RunObservation
from ops.forensics import LOSS_CAUSES
from pipeline.telemetry import MetricName


def _metric(emf: pd.DataFrame, name: MetricName) -> pd.Series:
    return emf.loc[emf["metric_name"] == name, "value"]


def invocations_table(obs: RunObservation, emf: pd.DataFrame) -> pd.DataFrame:
    rows = [
        {
            "request_id": inv.result.request_id,
            "instance_id": inv.result.instance_id,
            "start": pd.Timestamp(inv.result.started, unit="s", tz="UTC"),
            "end": pd.Timestamp(inv.result.ended, unit="s", tz="UTC"),
            "duration_ms": round(inv.result.duration_ms, 1),
            "cold_start": inv.result.cold_start,
            "outcome": inv.result.outcome,
            "batch_size": inv.batch_size,
            "failures": inv.failed,
            "oldest_age_s": round(inv.oldest_age_s, 2),
        }
        for inv in obs.invocations
    ]
    table = pd.DataFrame(
        rows,
        columns=[
            "request_id",
            "instance_id",
            "start",
            "end",
            "duration_ms",
            "cold_start",
            "outcome",
            "batch_size",
            "failures",
            "oldest_age_s",
        ],
    )
    per_request = emf[emf["request_id"].notna()].pivot_table(
        index="request_id", columns="metric_name", values="value", aggfunc="sum"
    )
    for metric, column in ((MetricName.RECORDS_WRITTEN, "records_written"), (MetricName.LOCK_WAIT_MS, "lock_wait_ms")):
        values = per_request[metric] if metric in per_request else pd.Series(dtype=float)
        table[column] = table["request_id"].map(values).fillna(0).round(1)
    return table


def metric_frame(obs: RunObservation, emf: pd.DataFrame) -> pd.DataFrame:
    collector = [r for r in obs.function_results if r.function == obs.spec.collector.name]
    sent_at = collector[0].ended if collector else obs.started
    return build_frame(
        emf,
        sqs_rows(obs.outputs, obs.samples, obs.invocations, obs.published, sent_at),
        lambda_rows(obs.function_results, obs.samples, obs.outputs.reporter_function_name),
        sns_rows(obs.outputs, obs.published, 0, sent_at),
    )


def _quantile(values: pd.Series, q: float) -> float | None:
    return None if values.empty else round(float(values.quantile(q)), 1)


def summarize(obs: RunObservation, emf: pd.DataFrame, fired: list[str], target: str) -> dict[str, Any]:
    rec = obs.reconciliation
    policies = len(obs.expected_keys)
    pipeline_calls = obs.api_calls
    by_operation: Counter[str] = Counter()
    for ops in (obs.api_calls or {}).values():
        by_operation.update(ops)
    total = sum(sum(ops.values()) for ops in pipeline_calls.values())
    waits = _metric(emf, MetricName.LOCK_WAIT_MS)
    outcomes = Counter(inv.result.outcome for inv in obs.invocations)
    init_errors: Counter[tuple[str, str]] = Counter(
        (r.function, r.error or "") for r in obs.function_results if r.outcome == "init_error"
    )
    return {
        "profile": obs.spec.profile,
        "target": target,
        "run_id": obs.run_id,
        "policies": policies,
        "concurrency": obs.concurrency,
        "batch_size": obs.spec.queue.batch_size,
        "batching_window_seconds": obs.spec.queue.batching_window_seconds,
        "published": obs.published,
        "producer_error": obs.producer_error,
        "artifact": obs.artifact,
        "faults_injected": obs.faults,
        "faults": judge_faults(obs.rehearsed, fired),
        "poison_expected": sum(f["poison"] for f in obs.rehearsed),
        "dlq_records_expected": sum(f.get("dlq_records", 0) for f in obs.rehearsed),
        "init_errors": [
            {"function": function, "error": error, "count": count}
            for (function, error), count in sorted(init_errors.items())
        ],
        "rows_written": rec.rows_written,
        "unique_rows": rec.unique_rows,
        "lost": rec.lost,
        "duplicates": rec.duplicates,
        "dlq": rec.dlq,
        "written_and_dlq": rec.written_and_dlq,
        "queued_at_end": rec.queued,
        "in_flight_at_end": obs.in_flight_at_end,
        "in_flight": rec.in_flight,
        "dlq_unparseable": rec.dlq_unparseable,
        "unexpected_rows": rec.unexpected,
        "output_files": rec.output_files,
        "output_bytes": rec.output_bytes,
        "timed_out": obs.timed_out,
        "e2e_seconds": round(obs.ended - obs.started, 2),
        **obs.floor,
        "reporter_invocations": len(obs.invocations),
        "reporter_outcomes": dict(outcomes),
        "reporter_throttles": sum(1 for r in obs.function_results if r.outcome == "throttled"),
        "cold_starts": sum(1 for inv in obs.invocations if inv.result.cold_start),
        "api_calls": {
            "total": total,
            "per_policy": round(total / policies, 3) if policies else None,
            "by_component": pipeline_calls,
            "by_operation": dict(sorted(by_operation.items())),
        },
        "s3_bytes_written": obs.s3_bytes_written,
        "s3_bytes_written_per_output_byte": round(obs.s3_bytes_written / rec.output_bytes, 2)
        if rec.output_bytes
        else None,
        "lock": {
            "acquired": int(_metric(emf, MetricName.LOCK_ACQUIRED).sum()),
            "contended": int(_metric(emf, MetricName.LOCK_CONTENDED).sum()),
            "wait_ms_p50": _quantile(waits, 0.5),
            "wait_ms_p99": _quantile(waits, 0.99),
            "stale_broken": int(_metric(emf, MetricName.LOCK_STALE_BROKEN).sum()),
            "acquire_failed": int(_metric(emf, MetricName.LOCK_ACQUIRE_FAILED).sum()),
            "release_failed": int(_metric(emf, MetricName.LOCK_RELEASE_FAILED).sum()),
        },
        "alarms_fired": fired,
        "iam": {
            "mode": obs.iam,
            "denied": sum(n for ops in obs.denied.values() for n in ops.values()),
            "denied_by_function": obs.denied,
        },
        "forensics": obs.forensics.to_summary(),
        "latency": obs.latency,
        "latency_injected": _latency_injected(obs),
        "poller_scaling": obs.scaling,
        "missing_keys": rec.missing_keys[:100],
        "duplicate_keys": rec.duplicate_keys[:100],
        "dlq_keys": rec.dlq_keys[:100],
        "written_and_dlq_keys": rec.written_and_dlq_keys[:100],
        "queued_keys": rec.queued_keys[:100],
        "in_flight_keys": rec.in_flight_keys[:100],
        "dlq_unparseable_messages": rec.dlq_unparseable_messages[:100],
        "mapping_batch_failures": {
            "count": len(obs.mapping_batch_failures),
            "first": obs.mapping_batch_failures[:20],
        },
    }


def _latency_injected(obs: RunObservation) -> dict[str, Any]:
    """What the latency profile added: calls delayed by component and operation, seconds, cold starts."""
    cold = [r.init_injected_ms for r in obs.function_results if r.init_injected_ms]
    return {
        "calls": {component: d["calls"] for component, d in obs.delayed.items()},
        "total_calls": sum(sum(d["calls"].values()) for d in obs.delayed.values()),
        "attempts": sum(d["attempts"] for d in obs.delayed.values()),
        "seconds": {component: d["seconds"] for component, d in obs.delayed.items()},
        "cold_starts": len(cold),
        "cold_start_ms_total": round(sum(cold), 1),
    }


def problems(summary: dict[str, Any]) -> list[str]:
    """Why a run failed, one line each; empty for a run that delivered every record exactly once."""
    out = []
    for error in summary.get("init_errors") or []:
        out.append(
            f"{error['function']} failed at cold start ({error['count']}x): {error['error']}; "
            "the deployed function would fail the same way"
        )
    if summary.get("producer_error"):
        out.append(str(summary["producer_error"]))
    iam = summary.get("iam") or {}
    if iam.get("denied"):
        by_function = sorted(iam["denied_by_function"].items())
        calls = ", ".join(f"{component} {op} x{n}" for component, ops in by_function for op, n in sorted(ops.items()))
        out.append(
            f"IAM denied {iam['denied']} calls ({calls}): a role's policy (iam_policies) lacks a grant the code needs"
        )
    if summary["lost"] or summary["duplicates"]:
        in_flight = summary.get("in_flight_at_end") or 0
        caveat = f" (up to {in_flight} of them may still have been in flight, keys unknown)" if in_flight else ""
        out.append(
            f"DATA LOSS: {summary['lost']} records lost{caveat} and {summary['duplicates']} duplicated "
            f"out of {summary['policies']}{_by_cause(summary)}"
        )
    unknown = ((summary.get("forensics") or {}).get("by_cause") or {}).get("unknown")
    if unknown:
        out.append(
            f"{unknown} records missing for no cause that forensics could find: the toolkit's evidence has a hole "
            "(forensics.samples.unknown in summary.json)"
        )
    poison = summary.get("poison_expected") or 0
    unparseable = summary.get("dlq_unparseable") or 0
    records_in_dlq = summary["dlq"] - unparseable
    damaged = summary.get("dlq_records_expected") or 0
    if records_in_dlq != damaged:
        planted = f" ({damaged} damaged by the fault)" if damaged else ""
        out.append(f"{records_in_dlq} records in the DLQ instead of the output{planted}")
    if unparseable != poison:
        out.append(
            f"{unparseable} unparseable messages in the DLQ, {poison} planted by --fault poison "
            "(see dlq_unparseable_messages in summary.json)"
        )
    for fault in summary.get("faults") or []:
        if fault["alarms_missing"]:
            out.append(f"fault {fault['fault']}: expected alarm(s) did not fire: {', '.join(fault['alarms_missing'])}")
        if not fault["injected"]:
            out.append(f"fault {fault['fault']} was never injected: the run did not rehearse it")
    if summary.get("written_and_dlq"):
        out.append(
            f"{summary['written_and_dlq']} records are in the output and also in the DLQ: a step after the "
            "commit point returned committed records to the queue"
        )
    return out


def _by_cause(summary: dict[str, Any]) -> str:
    """'; lost as: overwritten 44' from the forensics' loss causes, or '' when there are none."""
    counts = (summary.get("forensics") or {}).get("by_cause") or {}
    lost = [f"{cause} {counts[cause]}" for cause in LOSS_CAUSES if counts.get(cause)]
    return f"; lost as: {', '.join(lost)}" if lost else ""


def unsettled(summary: dict[str, Any]) -> list[str]:
    """Records neither delivered nor lost when the run ended: still queued or in flight."""
    out = []
    if summary.get("queued_at_end"):
        out.append(
            f"{summary['queued_at_end']} records were still in the queue when the run ended "
            f"(timed out: {summary['timed_out']}); not lost, not delivered"
        )
    if summary.get("in_flight"):
        out.append(
            f"{summary['in_flight']} records were in flight when the run ended (SQS refused their delete or "
            "visibility change); on AWS they return after the visibility timeout; not lost, not delivered"
        )
    return out


def load_emf(obs: RunObservation) -> pd.DataFrame:
    if obs.log_dir is None:
        return emf_datapoints([])
    return emf_datapoints(merge_instance_logs(obs.log_dir))


def json_ready(value: Any) -> Any:
    """Summary values as plain JSON (no NaN, no numpy scalars)."""
    return json.loads(json.dumps(value, default=lambda v: None if isinstance(v, float) and math.isnan(v) else str(v)))
