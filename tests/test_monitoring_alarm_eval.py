"""Local alarm evaluation on synthetic datapoints: breaches fire, calm does not, missing data as configured."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from loadtest.analysis.alarm_eval import RESULT_COLUMNS, dashboard_series, evaluate_alarms
from monitoring import build_monitoring
from monitoring.thresholds import MIN_PERCENTILE_SAMPLES
from pipeline.spec import build_spec

SPEC = build_spec("tuned")
START = pd.Timestamp("2026-03-02T10:00:00Z")
QUEUE = {"QueueName": SPEC.queue_name}
DLQ = {"QueueName": SPEC.dlq_name}
REPORTER = {"service": SPEC.reporter.name}
VERIFIER = {"service": SPEC.verifier.name}


def point(seconds: float, namespace: str, name: str, dimensions: dict, value: float) -> dict:
    return {
        "time": START + pd.Timedelta(seconds=seconds),
        "namespace": namespace,
        "metric_name": name,
        "dimensions": json.dumps(dimensions, sort_keys=True),
        "value": float(value),
    }


def healthy(*extra: dict) -> pd.DataFrame:
    """A calm two-minute run: messages sent and drained, short lock waits, a clean reconciliation."""
    rows = [
        point(5, "AWS/SQS", "NumberOfMessagesSent", QUEUE, 100),
        point(60, "AWS/SQS", "ApproximateNumberOfMessagesVisible", QUEUE, 40),
        point(60, "AWS/SQS", "ApproximateAgeOfOldestMessage", QUEUE, 45),
        point(90, "AWS/SQS", "NumberOfMessagesDeleted", QUEUE, 100),
        point(100, "AWS/SQS", "ApproximateNumberOfMessagesVisible", DLQ, 0),
        *(point(30 + i, "CIDB", "LockWaitMs", REPORTER, 50) for i in range(20)),
        point(110, "CIDB", "RunShortfall", VERIFIER, 0),
        point(110, "CIDB", "RunsVerified", VERIFIER, 1),
        *extra,
    ]
    return pd.DataFrame(rows)


def result(frame: pd.DataFrame, suffix: str) -> pd.Series:
    table = evaluate_alarms(SPEC, frame)
    (row,) = [row for _, row in table.iterrows() if row["name"].startswith(f"{SPEC.base_name}-{suffix}-")]
    return row


def test_result_has_one_row_per_alarm_and_the_composite():
    table = evaluate_alarms(SPEC, healthy())
    monitoring = build_monitoring(SPEC)
    assert list(table.columns) == RESULT_COLUMNS
    assert list(table["name"]) == [a.name for a in monitoring.alarms] + [monitoring.composite.name]


def test_healthy_run_fires_nothing():
    table = evaluate_alarms(SPEC, healthy())
    assert not table["fired"].any(), table[table["fired"]]


def test_dlq_message_fires_and_pages():
    """GIVEN one message in the DLQ WHEN evaluated THEN the DLQ alarm and the composite fire."""
    frame = healthy(point(100, "AWS/SQS", "ApproximateNumberOfMessagesVisible", DLQ, 1))
    dlq = result(frame, "dlq-depth")
    assert dlq["fired"] and dlq["worst_value"] == 1 and dlq["threshold"] == 1
    assert dlq["first_breach_time"] == START + pd.Timedelta(seconds=60), "DLQ alarm uses 60 s periods"
    assert result(frame, "pipeline-unhealthy")["fired"]


def test_percentile_alarm_reads_p99_not_the_average():
    frame = healthy(point(45, "CIDB", "LockWaitMs", REPORTER, 60_000))
    wait = result(frame, "reporter-lock-wait-p99")
    assert wait["fired"] and wait["worst_value"] > SPEC.lock_wait_p99_alarm_ms
    assert not result(frame, "pipeline-unhealthy")["fired"], "lock waits notify, they do not page"


def test_percentile_alarm_needs_its_minimum_sample_count():
    """GIVEN fewer lock waits in a period than the alarm's minimum WHEN all are slow THEN the p99 alarm is quiet."""
    few = healthy()[lambda f: f["metric_name"] != "LockWaitMs"]
    slow = [point(30 + i, "CIDB", "LockWaitMs", REPORTER, 60_000) for i in range(MIN_PERCENTILE_SAMPLES)]
    assert not result(pd.concat([few, pd.DataFrame(slow[:-1])]), "reporter-lock-wait-p99")["fired"]
    assert result(pd.concat([few, pd.DataFrame(slow)]), "reporter-lock-wait-p99")["fired"]


def test_not_breaching_missing_data_stays_quiet():
    errors = result(healthy(), "reporter-errors")
    assert not errors["fired"] and errors["datapoints"] == 0 and "notBreaching" in errors["note"]


def test_breaching_missing_data_fires_the_producer_heartbeat():
    frame = healthy()
    frame = frame[frame["metric_name"] != "NumberOfMessagesSent"]
    assert result(frame, "queue-producer-stopped")["fired"], "no message sent in the run period must fire"


def test_datapoints_to_alarm_needs_three_breaching_periods_for_backlog():
    def backlog(periods: int) -> pd.DataFrame:
        rows = [
            point(300 * i + 10, "AWS/SQS", "ApproximateNumberOfMessagesVisible", QUEUE, 5000) for i in range(periods)
        ]
        return healthy(*rows)

    assert not result(backlog(2), "queue-backlog")["fired"]
    assert result(backlog(3), "queue-backlog")["fired"]


def test_verifier_heartbeat_fires_when_the_verifier_is_silent():
    frame = healthy()[lambda f: f["metric_name"] != "RunsVerified"]
    assert result(frame, "verifier-stopped")["fired"], "no RunsVerified sample in the window must fire"


def test_ignore_keeps_data_loss_on_until_a_clean_verdict():
    frame = healthy(point(115, "CIDB", "RunShortfall", VERIFIER, 86))
    loss = result(frame, "verifier-data-loss")
    assert loss["fired"] and loss["worst_value"] == 86
    assert not result(frame, "pipeline-unhealthy")["fired"], "data loss pages on its own, outside the composite"
    quiet = result(healthy()[lambda f: f["metric_name"] != "RunShortfall"], "verifier-data-loss")
    assert not quiet["fired"] and "ignore" in quiet["note"]


def test_age_threshold_is_the_raised_one():
    frame = healthy(point(70, "AWS/SQS", "ApproximateAgeOfOldestMessage", QUEUE, 700))
    age = result(frame, "queue-oldest-message-age")
    assert not age["fired"] and age["threshold"] == 1025, "700 s is within a healthy tuned batch (5 s + 900 s + 120 s)"


@pytest.mark.parametrize("period", [None, 10])
def test_dashboard_series_carry_alarm_annotations(period):
    series = dashboard_series(
        SPEC, healthy(point(100, "AWS/SQS", "ApproximateNumberOfMessagesVisible", DLQ, 3)), period_seconds=period
    )
    by_title = {(dashboard, title): (data, notes) for dashboard, title, data, notes in series}
    data, notes = by_title[(f"{SPEC.base_name}-summary", "DLQ depth")]
    (line,) = data.values()
    assert line.max() == 3 and [n.value for n in notes] == [1.0]
    drain, _ = by_title[(f"{SPEC.base_name}-queue", "Time to drain")]
    (values,) = drain.values()
    assert (values.dropna() >= 0).all()


def test_time_to_drain_is_backlog_over_consumer_rate():
    series = dashboard_series(SPEC, healthy())
    (drain,) = [data for _, title, data, _ in series if title == "Time to drain"]
    (values,) = drain.values()
    assert values.iloc[0] == pytest.approx(40 / (100 / 300)), "40 visible / (100 deleted per 300 s)"
