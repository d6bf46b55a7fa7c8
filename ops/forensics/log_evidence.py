"""What the reporter logged about a record: why its last attempt failed, or why it was rejected.

This is the part of forensics that needs the reporter's log group (on AWS) or the captured
logs (on the emulator); the rest reads S3, SQS and the run's own files. The lines are the
Powertools JSON lines as the reporter wrote them.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

# The reporter rejects nothing today: it fails every invalid message into the DLQ. A reporter
# that drops a record on purpose must log this message with the record's trace id and a
# ``reason``; forensics then names the record ``rejected`` instead of ``unknown``.
REJECTED_MESSAGE = "record rejected"
RECEIVED_MESSAGE = "record received"
FAILURE_LEVELS = ("WARNING", "ERROR", "CRITICAL")


def _trace_ids(line: dict[str, Any]) -> list[str]:
    ids = line.get("trace_ids") if isinstance(line.get("trace_ids"), list) else []
    return [str(t) for t in ids] + ([str(line["trace_id"])] if line.get("trace_id") else [])


def _describe(line: dict[str, Any]) -> str:
    text = str(line.get("message", "")).strip()
    exception = str(line.get("exception") or "").strip().splitlines()
    if exception:
        text += f" ({exception[-1]})"
    request = line.get("function_request_id")
    when = line.get("timestamp")
    return f"{text} [request {request}, {when}]" if request else text


class LogEvidence:
    def __init__(self, lines: list[dict[str, Any]]) -> None:
        self.lines = sorted(lines, key=lambda line: str(line.get("timestamp", "")))
        self._by_trace: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._failures_by_request: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for line in self.lines:
            for trace_id in _trace_ids(line):
                self._by_trace[trace_id].append(line)
            if line.get("level") in FAILURE_LEVELS and line.get("function_request_id"):
                self._failures_by_request[str(line["function_request_id"])].append(line)

    def last_failure(self, trace_id: str) -> str | None:
        """The error behind the record's last failed attempt, as the reporter logged it."""
        lines = self._by_trace.get(trace_id, [])
        named = [line for line in lines if line.get("level") in FAILURE_LEVELS]
        if named:
            return _describe(named[-1])
        received = [line for line in lines if line.get("message") == RECEIVED_MESSAGE]
        if not received:
            return None
        request = str(received[-1].get("function_request_id"))
        failures = self._failures_by_request.get(request)
        if failures:
            return _describe(failures[-1])
        return (
            f"request {request} received it last and logged no error: it timed out or was killed "
            f"(`cidb trace --trace-id {trace_id}`)"
        )

    def rejection(self, trace_id: str) -> str | None:
        for line in reversed(self._by_trace.get(trace_id, [])):
            if line.get("message") == REJECTED_MESSAGE:
                return f"{line.get('reason', 'no reason logged')} [request {line.get('function_request_id')}]"
        return None
