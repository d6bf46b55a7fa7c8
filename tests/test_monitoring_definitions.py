"""Alarm definitions: derived from the spec, pointing at emitted metrics, sane CloudWatch settings."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from monitoring import (
    Comparison,
    GraphWidget,
    MathExpression,
    MissingData,
    MonitoredResources,
    Route,
    Severity,
    build_monitoring,
    check_age_threshold,
)
from monitoring.model import SAMPLE_COUNT, STANDARD_STATISTICS
from monitoring.schedule import heartbeat_hours, max_gap_seconds
from monitoring.thresholds import AGE_MARGIN_SECONDS, MIN_PERCENTILE_SAMPLES, age_budget_seconds, check_heartbeat
from pipeline.spec import PROFILES, build_spec
from pipeline.telemetry import MetricName

# Documented metric names and the dimension our alarms use, per AWS namespace.
AWS_METRICS = {
    "AWS/SQS": (
        "QueueName",
        {
            "ApproximateAgeOfOldestMessage",
            "ApproximateNumberOfMessagesVisible",
            "ApproximateNumberOfMessagesNotVisible",
            "NumberOfMessagesSent",
            "NumberOfMessagesDeleted",
        },
    ),
    "AWS/Lambda": ("FunctionName", {"Errors", "Throttles", "Invocations", "Duration", "ConcurrentExecutions"}),
    "AWS/SNS": (
        "TopicName",
        {"NumberOfMessagesPublished", "NumberOfNotificationsFailed", "NumberOfNotificationsFailedToRedriveToDlq"},
    ),
}
TUNED = build_spec("tuned")


@pytest.fixture(params=PROFILES)
def spec(request):
    return build_spec(request.param)


def test_pure_layer_imports_without_pulumi():
    code = (
        "import sys, monitoring, loadtest.analysis.alarm_eval; "
        "sys.exit(any(m.startswith('pulumi') for m in sys.modules))"
    )
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, check=False)
    assert result.returncode == 0, "monitoring's pure layer or loadtest.analysis.alarm_eval imported pulumi"


def test_cidb_metrics_are_telemetry_names_with_service_dimension(spec):
    services = {fn.name for fn in spec.functions}
    for metric in build_monitoring(spec).metrics():
        if metric.namespace == spec.metrics_namespace:
            assert metric.name in {m.value for m in MetricName}, f"{metric.name} is not a pipeline.telemetry name"
            (key, value), *rest = metric.dimensions
            assert key == "service" and value in services and not rest, f"{metric.label}: {metric.dimensions}"


def test_aws_metrics_are_documented_and_point_at_passed_resources(spec):
    resources = MonitoredResources(**{f.name: f"physical-{f.name}" for f in dataclasses.fields(MonitoredResources)})
    names = {getattr(resources, f.name) for f in dataclasses.fields(MonitoredResources)}
    for metric in build_monitoring(spec, resources).metrics():
        if metric.namespace == spec.metrics_namespace:
            continue
        dimension, known = AWS_METRICS[metric.namespace]
        assert metric.name in known, f"{metric.namespace} {metric.name} is not a metric we know AWS emits"
        assert metric.dimension_map.keys() == {dimension}, f"{metric.label}: {metric.dimensions}"
        assert metric.dimension_map[dimension] in names, f"{metric.label} points at {metric.dimension_map}"


def test_alarm_settings_are_valid_cloudwatch(spec):
    alarms = build_monitoring(spec).alarms
    assert len({a.name for a in alarms}) == len(alarms), "alarm names must be unique"
    for alarm in alarms:
        metric = alarm.metric
        assert metric.statistic in STANDARD_STATISTICS or metric.is_percentile, alarm.name
        assert metric.period in (10, 30) or metric.period % 60 == 0, alarm.name
        assert metric.period * alarm.evaluation_periods <= 7 * 86_400, alarm.name
        assert 1 <= alarm.datapoints_to_alarm <= alarm.evaluation_periods, alarm.name
        assert len(alarm.name) <= 255 and len(alarm.description) <= 1024, alarm.name
        assert alarm.name.startswith(f"{spec.base_name}-") and alarm.name.endswith(f"-{alarm.severity}"), alarm.name


def _by_suffix(spec):
    return {a.name.removeprefix(f"{spec.base_name}-").rsplit("-", 1)[0]: a for a in build_monitoring(spec).alarms}


def test_thresholds_come_from_the_spec(spec):
    alarms = _by_suffix(spec)
    assert alarms["queue-backlog"].threshold == spec.alarms.backlog_messages
    assert alarms["dlq-depth"].threshold == spec.alarms.dlq_messages
    assert alarms["dlq-depth"].comparison == Comparison.GREATER_OR_EQUAL
    for fn in spec.functions:
        role = fn.name.removeprefix(f"{spec.base_name}-")
        expected = spec.alarms.duration_fraction_of_timeout * fn.timeout_seconds * 1000
        assert alarms[f"{role}-duration-p99"].threshold == expected
        assert alarms[f"{role}-duration-p99"].metric.statistic == "p99"
    if spec.lock.enabled:
        assert alarms["reporter-lock-wait-p99"].threshold == spec.lock_wait_p99_alarm_ms


def test_age_threshold_is_derived_from_the_window_and_the_timeout():
    assert check_age_threshold(TUNED) is None, "tuned derives its threshold: nothing to report at deploy time"
    age = _by_suffix(TUNED)["queue-oldest-message-age"]
    assert age.threshold == age_budget_seconds(TUNED) + AGE_MARGIN_SECONDS == 5 + 900 + 120


def test_age_threshold_is_raised_when_a_healthy_batch_could_exceed_it():
    too_low = dataclasses.replace(TUNED, alarms=dataclasses.replace(TUNED.alarms, oldest_message_age_seconds=600))
    assert "905" in (check_age_threshold(too_low) or ""), "600 s < 5 s window + 900 s timeout must be reported"
    assert _by_suffix(too_low)["queue-oldest-message-age"].threshold == 905 + AGE_MARGIN_SECONDS
    seed = build_spec("seed")
    assert check_age_threshold(seed) is None
    assert _by_suffix(seed)["queue-oldest-message-age"].threshold == seed.alarms.oldest_message_age_seconds


def test_concurrency_alarm_only_with_a_cap():
    assert _by_suffix(TUNED)["reporter-concurrency-at-cap"].threshold == pytest.approx(
        0.9 * TUNED.queue.max_concurrency
    )
    assert not any("concurrency" in name for name in _by_suffix(build_spec("seed")))


def test_lock_alarms_only_when_the_lock_is_enabled():
    assert "reporter-lock-acquire-failed" in _by_suffix(TUNED)
    assert not any("lock" in name for name in _by_suffix(build_spec("seed")))


@pytest.mark.parametrize(
    ("schedule", "gap_hours", "window_hours"),
    [
        ("rate(1 day)", 24, 26),
        ("rate(6 hours)", 6, 8),
        ("rate(30 minutes)", 0.5, 3),
        ("cron(0 3 * * ? *)", 24, 26),
        ("cron(0 6 ? * MON-FRI *)", 72, 74),
        ("cron(0 8,20 ? * 2-6 *)", 60, 62),
        ("cron(0/15 * * * ? *)", 0.25, 3),
    ],
)
def test_heartbeat_window_is_the_longest_gap_plus_slack(schedule, gap_hours, window_hours):
    assert max_gap_seconds(schedule) == gap_hours * 3600, schedule
    assert heartbeat_hours(schedule) == window_hours, schedule


@pytest.mark.parametrize("schedule", ["cron(30 2 1 * ? *)", "cron(0 6 L * ? *)", "cron(0 6 ? * 2#1 *)", None])
def test_no_heartbeat_for_schedules_beyond_seven_days_unreadable_or_off(schedule):
    assert heartbeat_hours(schedule) is None, schedule
    assert heartbeat_hours(schedule, override=30) == (30 if schedule else None), "the override wins, if runs exist"


@pytest.mark.parametrize(("schedule", "hours"), [("rate(1 day)", 26), ("cron(0 6 ? * MON-FRI *)", 74)])
def test_producer_heartbeat_counts_hourly_over_the_window(schedule, hours):
    """GIVEN a daily rate or a weekday cron WHEN monitored THEN N of N hourly periods, Sum < 1, missing breaching."""
    alarm = _by_suffix(dataclasses.replace(TUNED, schedule_expression=schedule))["queue-producer-stopped"]
    assert (alarm.metric.name, alarm.metric.statistic, alarm.metric.period) == ("NumberOfMessagesSent", "Sum", 3600)
    assert (alarm.evaluation_periods, alarm.datapoints_to_alarm) == (hours, hours), schedule
    assert (alarm.comparison, alarm.threshold, alarm.treat_missing_data) == (
        Comparison.LESS,
        1,
        MissingData.BREACHING,
    )


def test_heartbeat_override_and_schedule_off():
    custom = build_spec("tuned", overrides={"alarms.heartbeat_hours": 50})
    assert _by_suffix(custom)["queue-producer-stopped"].evaluation_periods == 50, "alarms.heartbeat_hours wins"
    assert "queue-producer-stopped" not in _by_suffix(dataclasses.replace(TUNED, schedule_expression=None))
    monthly = dataclasses.replace(TUNED, schedule_expression="cron(30 2 1 * ? *)")
    assert "queue-producer-stopped" not in _by_suffix(monthly)
    assert "cidb:heartbeatHours" in (check_heartbeat(monthly) or ""), "the deploy log must say how to get one"
    assert check_heartbeat(TUNED) is None


def test_verifier_heartbeat_watches_runs_verified_every_hour():
    alarm = _by_suffix(TUNED)["verifier-stopped"]
    assert (alarm.metric.name, alarm.metric.statistic, alarm.metric.period) == ("RunsVerified", SAMPLE_COUNT, 3600)
    assert (alarm.comparison, alarm.threshold, alarm.treat_missing_data) == (
        Comparison.LESS,
        1,
        MissingData.BREACHING,
    )
    assert alarm.evaluation_periods == heartbeat_hours(TUNED.verify_schedule_expression) == 3


def test_data_loss_alarm_holds_until_that_run_completes_and_pages_on_its_own():
    alarm = _by_suffix(TUNED)["verifier-data-loss"]
    assert (alarm.metric.name, alarm.metric.statistic, alarm.threshold) == ("RunShortfall", "Maximum", 0)
    assert alarm.treat_missing_data == MissingData.IGNORE
    assert alarm.severity == Severity.PAGE and alarm.severity.route == Route.PAGE
    assert alarm.name not in build_monitoring(TUNED).composite.children, "a latched child would mute the composite"
    assert "that same run" in alarm.summary and "later clean run does not clear" in alarm.summary


def test_percentile_alarms_need_a_minimum_sample_count(spec):
    for alarm in build_monitoring(spec).alarms:
        if not alarm.metric.is_percentile:
            assert alarm.expression is None, alarm.name
            continue
        expression = alarm.expression
        assert expression is not None, f"{alarm.name}: a percentile alarm must alarm on the sample-count guard"
        assert expression.expression.startswith("IF(samples >= "), alarm.name
        samples, value = expression.metrics["samples"], expression.metrics["value"]
        assert value == alarm.metric and samples.statistic == SAMPLE_COUNT and samples.name == value.name
    assert _by_suffix(TUNED)["reporter-duration-p99"].min_samples == MIN_PERCENTILE_SAMPLES


def test_runbook_url_reaches_every_description_and_the_dashboard_header():
    url = "https://github.com/acme/cidb/blob/0123abc/docs/runbook.md"
    monitoring = build_monitoring(build_spec("tuned", overrides={"alarms.runbook_url": url}))
    for alarm in (*monitoring.alarms, monitoring.composite):
        assert f"Runbook: {url}#{alarm.runbook_anchor}" in alarm.description, alarm.name
    header = monitoring.dashboards[0].widgets[0]
    assert f"[docs/runbook.md]({url})" in header.markdown


def test_composite_pages_on_every_critical_alarm_and_nothing_else(spec):
    monitoring = build_monitoring(spec)
    critical = {a.name for a in monitoring.alarms if a.severity == Severity.CRITICAL}
    assert set(monitoring.composite.children) == critical
    for must in ("dlq-depth", "reporter-errors", "queue-oldest-message-age", "topic-redrive-failed"):
        assert any(must in name for name in critical), f"{must} must page"
    routes = {a.name: a.severity.route for a in monitoring.alarms}
    assert {n for n, r in routes.items() if r == Route.PAGE} == {f"{spec.base_name}-verifier-data-loss-page"}
    assert monitoring.composite.rule().count("ALARM(") == len(critical)


def test_every_alarm_metric_is_graphed_with_its_threshold(spec):
    """The graph gets the alarm's own metric object and its threshold line from the alarm."""
    monitoring = build_monitoring(spec)
    graphs = [w for d in monitoring.dashboards for w in d.widgets if isinstance(w, GraphWidget)]
    for alarm in monitoring.alarms:
        shown = [g for g in graphs if alarm.metric in g.metrics and alarm.annotation in g.annotations]
        assert shown, f"{alarm.name}: no graph shows its metric with its threshold"


def test_math_inputs_are_metrics_of_the_same_plan():
    monitoring = build_monitoring(TUNED)
    maths = [m for d in monitoring.dashboards for w in d.widgets if isinstance(w, GraphWidget) for m in w.metrics]
    maths = [m for m in maths if isinstance(m, MathExpression)]
    assert maths, "the queue dashboard computes rates and time to drain"
    for math in maths:
        for metric_id in math.metrics:
            assert metric_id in math.expression, f"{math.label}: {metric_id} unused"
