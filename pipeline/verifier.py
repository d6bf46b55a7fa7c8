"""Verifier Lambda: reconcile finished runs against what S3 really holds.

It never trusts the pipeline's own counters. For each run past its grace period it first
flushes the run's last segments into its parts (see :mod:`pipeline.compaction`: a run whose
records partly went to the DLQ never reaches the count that makes a reporter flush), then reads
every CSV of the run back from S3, counts unique record keys that belong to the run's
expected key set, and emits RunExpected, RunWritten and RunShortfall. A shortfall above
zero is data loss (or records parked in the DLQ) and drives the data-loss alarm; the run
is re-checked on every schedule until it is complete, so a DLQ redrive clears the alarm.

Events::

    {}                                  # scheduled: every unverified run past its grace period
    {"run_id": "lt-1", "force": true}   # one run now, ignoring the grace period

Environment variables: see :mod:`pipeline.settings`.
"""

from __future__ import annotations

import json
import time
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline import aws, run_store
from pipeline.compaction import compact_under_lock
from pipeline.csv_store import FencedCsvStore, csv_record_keys
from pipeline.env import OUTPUT_MODE_SEED
from pipeline.layout import report_prefix
from pipeline.lock import LockStats
from pipeline.record import keys_digest
from pipeline.settings import Settings, load_settings
from pipeline.telemetry import LogField, MetricName, make_logger, make_metrics

logger = make_logger()
metrics = make_metrics()


def output_keys(s3: Any, bucket: str, account_id: str, run_id: str) -> list[str]:
    """Every record key in the run's CSV files, duplicates included."""
    keys: list[str] = []
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=report_prefix(account_id, run_id))
    for obj in (o for page in pages for o in page.get("Contents", [])):
        if obj["Key"].endswith(".csv"):
            keys += csv_record_keys(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode())
    return keys


def flush_run(settings: Settings, run: run_store.RunRecord, owner: str) -> None:
    """Fold whatever segments the run still has into its parts, so that the check sees them."""
    store = FencedCsvStore(
        aws.client("s3"), settings.bucket, run.account_id, run.run_id, settings.max_rows_per_file, writer=owner
    )
    stats = LockStats()
    result = compact_under_lock(store, settings.lock, flush=True, owner=owner, logger=logger, lock_stats=stats)
    stats.publish(metrics)
    if result is not None and result.written:
        metrics.add_metric(name=MetricName.RECORDS_COMPACTED, unit="Count", value=result.written)
        run_store.add_compacted(
            aws.client("dynamodb"), table=settings.run_table, run_id=run.run_id, count=result.written
        )


def verify_run(settings: Settings, run: run_store.RunRecord) -> dict[str, Any]:
    s3 = aws.client("s3")
    expected_list = json.loads(s3.get_object(Bucket=settings.bucket, Key=run.expected_keys_key)["Body"].read())
    if keys_digest(expected_list) != run.keys_digest:
        # The key list in S3 is not the one the collector recorded: a check against it would prove nothing.
        raise ValueError(
            f"run {run.run_id}: s3://{settings.bucket}/{run.expected_keys_key} does not match the run record's "
            "keys_digest; it was changed after the collector wrote it"
        )
    expected = set(expected_list)
    found = output_keys(s3, settings.bucket, run.account_id, run.run_id)
    written = expected & set(found)
    missing = sorted(expected - written)
    run_store.mark_verified(
        aws.client("dynamodb"), table=settings.run_table, run_id=run.run_id, written=len(written), missing=len(missing)
    )
    metrics.add_metric(name=MetricName.RUN_EXPECTED, unit="Count", value=len(expected))
    metrics.add_metric(name=MetricName.RUN_WRITTEN, unit="Count", value=len(written))
    metrics.add_metric(name=MetricName.RUN_SHORTFALL, unit="Count", value=len(missing))
    outcome = {
        LogField.RUN_ID: run.run_id,
        LogField.EXPECTED: len(expected),
        LogField.WRITTEN: len(written),
        LogField.MISSING: len(missing),
        LogField.DUPLICATES: len(found) - len(set(found)),
        "missing_sample": missing[:20],
    }
    (logger.error if missing else logger.info)("run reconciled", extra={str(k): v for k, v in outcome.items()})
    return outcome


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = load_settings(need_bucket=True, need_topic=False)
    dynamodb = aws.client("dynamodb")
    if event.get("run_id"):
        run = run_store.get_run(dynamodb, table=settings.run_table, run_id=str(event["run_id"]))
        if run is None:
            raise ValueError(f"run {event['run_id']!r} has no record in table {settings.run_table}")
        runs = [run] if event.get("force") or run.created_at + settings.run_grace_seconds <= time.time() else []
    else:
        cutoff = time.time() - settings.run_grace_seconds
        runs = [r for r in run_store.unverified_runs(dynamodb, table=settings.run_table) if r.created_at <= cutoff]
    if settings.output_mode != OUTPUT_MODE_SEED:
        for run in runs:
            logger.append_keys(**{LogField.RUN_ID: run.run_id})  # the flush's lock lines name their run
            try:
                flush_run(settings, run, owner=f"{context.function_name}/{context.aws_request_id}")
            except Exception as exc:
                # The check still runs: what the flush could not fold shows as a shortfall, which alarms.
                metrics.add_metric(name=MetricName.COMPACTION_FAILED, unit="Count", value=1)
                logger.warning(
                    f"flush before the check failed: {exc}",
                    extra={LogField.RUN_ID: run.run_id, LogField.ERROR_CODE: aws.error_code(exc)},
                )
            finally:
                logger.remove_keys([LogField.RUN_ID])
    results, unverifiable = [], []
    for run in runs:  # one run that cannot be checked must not stop the checks of the others
        try:
            results.append(verify_run(settings, run))
        except Exception as exc:
            logger.exception("run could not be verified", extra={LogField.RUN_ID: run.run_id})
            unverifiable.append(f"{run.run_id}: {exc}")
    metrics.add_metric(name=MetricName.RUNS_VERIFIED, unit="Count", value=len(results))
    if unverifiable:
        # Fail the invocation, so that the verifier's error alarm says a run went unchecked.
        raise RuntimeError(f"{len(unverifiable)} runs could not be verified: " + "; ".join(unverifiable))
    return {"verified": [{str(k): v for k, v in r.items()} for r in results]}
