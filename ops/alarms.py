"""The stack's alarms that are not OK, read from CloudWatch: name, severity, since when, runbook link."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitoring.model import Severity
from ops.errors import aws_errors
from ops.target import Target

# The runbook link every alarm description carries (``docs/runbook.md#anchor`` or a full URL to it).
_RUNBOOK = re.compile(r"(\S*runbook\.md#[\w-]+)")
_SEVERITIES = tuple(str(s) for s in Severity)


@dataclass(frozen=True)
class AlarmState:
    name: str
    kind: str  # metric or composite
    severity: str
    state: str
    since: datetime | None
    reason: str
    runbook: str | None

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "since": self.since.isoformat() if self.since else None}


def alarms_not_ok(target: Target) -> list[AlarmState]:
    """ALARM first, then INSUFFICIENT_DATA; each group oldest first."""
    cloudwatch = target.client("cloudwatch")
    found: list[AlarmState] = []
    with aws_errors(f"CloudWatch at {target.where}"):
        pages = cloudwatch.get_paginator("describe_alarms").paginate(
            AlarmNamePrefix=f"{target.outputs.base_name}-", AlarmTypes=["MetricAlarm", "CompositeAlarm"]
        )
        for page in pages:
            for kind, key in (("metric", "MetricAlarms"), ("composite", "CompositeAlarms")):
                found += [_state(kind, alarm) for alarm in page.get(key, []) if alarm["StateValue"] != "OK"]
    order = {"ALARM": 0, "INSUFFICIENT_DATA": 1}
    return sorted(found, key=lambda a: (order.get(a.state, 2), a.since.timestamp() if a.since else float("inf")))


def firing(alarms: list[AlarmState]) -> list[AlarmState]:
    return [a for a in alarms if a.state == "ALARM"]


def _state(kind: str, alarm: dict[str, Any]) -> AlarmState:
    name = alarm["AlarmName"]
    severity = next((s for s in _SEVERITIES if name.endswith(f"-{s}")), "?")
    link = _RUNBOOK.search(alarm.get("AlarmDescription", ""))
    since = alarm.get("StateUpdatedTimestamp")
    return AlarmState(
        name=name,
        kind=kind,
        severity=severity,
        state=alarm["StateValue"],
        since=since,
        reason=alarm.get("StateReason", ""),
        runbook=link[1] if link else None,
    )
