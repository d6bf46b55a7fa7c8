"""Alarm thresholds and periods, derived from the deployment spec.

Thresholds the spec states (``spec.alarms``) are used as they are, except the age of the oldest
message, which must leave room for a healthy batch (see :func:`check_age_threshold`). The few
numbers the spec does not hold are named constants here.
"""

from __future__ import annotations

from monitoring.schedule import MAX_HEARTBEAT_HOURS, heartbeat_hours
from pipeline.spec import DeploymentSpec, FunctionSpec

ALARM_PERIOD_SECONDS = 300
"""Default alarm period; AWS/Lambda, AWS/SNS and EMF metrics all resolve to a minute or better."""

DLQ_PERIOD_SECONDS = 60
"""SQS reports queue depth every minute; a dead letter should page within minutes, not five."""

AGE_MARGIN_SECONDS = 120
"""Room, beyond batching window + reporter timeout, for a message to wait for a free reporter under
max concurrency and for the one-minute granularity of the SQS age metric."""

SDK_RETRIES_PER_PERIOD = 25
"""botocore adaptive-mode retries per function per alarm period that we treat as sustained throttling;
a few retries are normal and absorbed by the SDK."""

HEARTBEAT_PERIOD_SECONDS = 3600
"""Heartbeat alarms count activity per hour over a window of hours (:mod:`monitoring.schedule`)."""

MIN_PERCENTILE_SAMPLES = 5
"""Samples a period needs before its p99 may alarm; fewer make the p99 one slow call (reporter, lock waits)."""

SPARSE_PERCENTILE_SAMPLES = 1
"""For functions that run about once per alarm period (collector daily, verifier every 15 minutes): their
one sample per period is the whole story, so one is enough."""


def age_budget_seconds(spec: DeploymentSpec) -> int:
    """The longest a message can be un-deleted in a healthy pipeline: batching window + one reporter run.

    ApproximateAgeOfOldestMessage counts in-flight messages, so a message is "old" while its batch runs.
    """
    return spec.queue.batching_window_seconds + spec.reporter.timeout_seconds


def check_age_threshold(spec: DeploymentSpec) -> str | None:
    """A problem string when the spec's age threshold would fire on a healthy pipeline, else None."""
    budget, configured = age_budget_seconds(spec), spec.alarms.oldest_message_age_seconds
    if configured is None or configured >= budget:
        return None
    return (
        f"alarms.oldest_message_age_seconds={configured} is below batching window "
        f"{spec.queue.batching_window_seconds} s + reporter timeout {spec.reporter.timeout_seconds} s = {budget} s: "
        f"a healthy batch can keep a message in flight that long, so the age alarm would page on normal operation; "
        f"monitoring raises the threshold to {oldest_message_age_threshold(spec)} s (budget + {AGE_MARGIN_SECONDS} s)"
    )


def oldest_message_age_threshold(spec: DeploymentSpec) -> int:
    """The healthy budget plus margin, unless the spec sets a threshold at least that budget (decision: runbook)."""
    budget = age_budget_seconds(spec)
    configured = spec.alarms.oldest_message_age_seconds
    return budget + AGE_MARGIN_SECONDS if configured is None or configured < budget else configured


def duration_threshold_ms(spec: DeploymentSpec, function: FunctionSpec) -> float:
    return spec.alarms.duration_fraction_of_timeout * function.timeout_seconds * 1000


def concurrency_threshold(spec: DeploymentSpec) -> float | None:
    """Reporter concurrency that counts as "at the mapping's cap"; None without a cap."""
    cap = spec.queue.max_concurrency
    return None if cap is None else spec.alarms.concurrency_fraction_of_max * cap


def producer_heartbeat_hours(spec: DeploymentSpec) -> int | None:
    """Hours without a message sent after which the scheduled collector run counts as missed."""
    return heartbeat_hours(spec.schedule_expression, spec.alarms.heartbeat_hours)


def verifier_heartbeat_hours(spec: DeploymentSpec) -> int | None:
    """Hours without a verifier invocation after which data-loss detection counts as stopped."""
    return heartbeat_hours(spec.verify_schedule_expression)


def check_heartbeat(spec: DeploymentSpec) -> str | None:
    """A problem string when the schedule has runs but no heartbeat alarm can watch them, else None."""
    if spec.schedule_expression is None or producer_heartbeat_hours(spec) is not None:
        return None
    return (
        f"schedule {spec.schedule_expression!r}: monitoring cannot derive its longest gap between runs within "
        f"{MAX_HEARTBEAT_HOURS} hours (it reads rate(...) and cron(...) with *, ?, lists, ranges and steps, not L, W, "
        "# or a year), so the producer-stopped alarm is off; set cidb:heartbeatHours to the hours of silence that "
        f"mean a missed run (1..{MAX_HEARTBEAT_HOURS})"
    )
