"""Alarm thresholds and periods, derived from the deployment spec.

Thresholds the spec states (``spec.alarms``) are used as they are, except the age of the oldest
message, which must leave room for a healthy batch (see :func:`check_age_threshold`). The few
numbers the spec does not hold are named constants here.
"""

from __future__ import annotations

import re

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

MAX_HEARTBEAT_PERIOD_SECONDS = 86_400
"""CloudWatch limits how far back an alarm may look; schedules longer than a day get no heartbeat alarm."""

_RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86_400}


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


def schedule_period_seconds(expression: str | None) -> int | None:
    """Seconds between scheduled runs for ``rate(...)`` schedules up to a day; None for none, cron, or longer."""
    match = _RATE.fullmatch(expression or "")
    if not match:
        return None
    seconds = int(match[1]) * _UNIT_SECONDS[match[2].removesuffix("s")]
    return seconds if seconds <= MAX_HEARTBEAT_PERIOD_SECONDS else None
