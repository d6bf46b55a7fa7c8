"""``cidb status``: is the pipeline healthy right now? One screen, and an exit status for scripts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ops.alarms import AlarmState, alarms_not_ok, firing
from ops.locks import LockInfo, held_locks
from ops.queue_state import QueueState, queue_state
from ops.runs import RunRow, list_runs
from ops.target import Target
from pipeline.run_store import DONE_STATUSES

LATEST_RUNS = 5


@dataclass
class Status:
    target: str
    alarms: list[AlarmState]
    queue: QueueState
    runs: list[RunRow]
    locks: list[LockInfo]
    problems: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "healthy": self.healthy,
            "problems": self.problems,
            "alarms": [a.to_dict() for a in self.alarms],
            "queue": self.queue.to_dict(),
            "runs": [r.to_dict() for r in self.runs],
            "locks": [lock.to_dict() for lock in self.locks],
        }


def status(target: Target, latest: int = LATEST_RUNS) -> Status:
    runs = list_runs(target)
    unfinished = [r.run for r in runs if r.run.status not in DONE_STATUSES]
    shown = runs[:latest]
    found = Status(
        target=f"{target.outputs.base_name} ({target.where})",
        alarms=alarms_not_ok(target),
        queue=queue_state(target),
        runs=shown,
        locks=held_locks(target, list({r.run_id: r for r in [*unfinished, *(r.run for r in shown)]}.values())),
    )
    found.problems = _problems(found)
    return found


def _utc(when: datetime | None) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if when else "an unknown time"


def _problems(found: Status) -> list[str]:
    problems = [f"alarm {a.name} is in ALARM since {_utc(a.since)}" for a in firing(found.alarms)]
    if found.queue.dlq_depth or found.queue.dlq_in_flight:
        problems.append(f"the DLQ holds {found.queue.dlq_depth + found.queue.dlq_in_flight} messages (`cidb dlq show`)")
    if found.queue.mapping_state not in (None, "Enabled", "Enabling", "Updating"):
        problems.append(f"the event source mapping is {found.queue.mapping_state}: nothing consumes the queue")
    problems += [
        f"run {r.run.run_id} is short by {r.shortfall} records (`cidb verify {r.run.run_id}`)"
        for r in found.runs
        if not r.healthy
    ]
    problems += [
        f"the lock of run {lock.run_id} is stale: held by {lock.owner} for {lock.age_seconds:.0f} s (`cidb lock show`)"
        for lock in found.locks
        if lock.stale
    ]
    return problems
