"""A log group's JSON lines for a filter pattern, as FilterLogEvents returns them on AWS and on moto."""

from __future__ import annotations

import json
from typing import Any


def filter_lines(logs: Any, group: str, pattern: str, start_ms: int, *, max_events: int | None = None) -> list[dict]:
    """The group's lines that match ``pattern`` since ``start_ms``; none if the group does not exist (yet).

    EMF metric blobs are left out: they are metrics, not log lines.
    """
    events: list[dict[str, Any]] = []
    paging = {"MaxItems": max_events} if max_events else {}
    try:
        pages = logs.get_paginator("filter_log_events").paginate(
            logGroupName=group, filterPattern=pattern, startTime=start_ms, PaginationConfig=paging
        )
        for page in pages:
            events += page.get("events", [])
    except logs.exceptions.ResourceNotFoundException:
        return []
    lines = []
    for event in events:
        try:
            line = json.loads(event["message"])
        except json.JSONDecodeError:
            line = {"message": event["message"].strip()}
        if isinstance(line, dict) and "_aws" not in line:
            lines.append(line)
    return lines
