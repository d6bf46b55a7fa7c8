"""Why an expected record is not in the output: one cause per record, with its evidence."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Cause(StrEnum):
    """Where a record that is not in the output went. Only the first group is loss."""

    OVERWRITTEN = "overwritten"  # in an earlier version of an output object, dropped by a later one
    NEVER_PUBLISHED = "never-published"  # the collector gave up on it, or never finished
    REJECTED = "rejected"  # the reporter dropped it on purpose and logged why
    UNKNOWN = "unknown"  # none of the evidence explains it: a hole in the toolkit itself
    DLQ = "dlq"  # in the DLQ, counted and alarmed: not lost, not delivered
    QUEUED = "queued"  # still in the main queue
    IN_FLIGHT = "in-flight"  # received and not yet deleted or returned
    COMMITTED = "committed"  # in a segment that no compaction has folded into a part yet


LOSS_CAUSES = (Cause.OVERWRITTEN, Cause.NEVER_PUBLISHED, Cause.REJECTED, Cause.UNKNOWN)
SAMPLES_PER_CAUSE = 3


@dataclass(frozen=True)
class Explained:
    key: str
    seq: int | None
    trace_id: str | None
    cause: Cause
    detail: str  # one line on-call can read
    evidence: dict[str, Any] = field(default_factory=dict)  # the facts behind it (version ids, message id, ...)

    @property
    def lost(self) -> bool:
        return self.cause in LOSS_CAUSES

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "seq": self.seq,
            "trace_id": self.trace_id,
            "cause": str(self.cause),
            "detail": self.detail,
            "evidence": self.evidence,
        }


@dataclass(frozen=True)
class WriterCycle:
    """One writer's read-append-write of an output object: what the timeline draws."""

    writer: str
    object_key: str
    version_id: str
    read_version: str | None
    read_at_ms: int | None
    write_at_ms: int | None
    rows_appended: int
    dropped_versions: tuple[str, ...]  # versions whose rows this write dropped (it had read an older one)
    rows_lost: int  # rows of this writer's own version that a later write dropped

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "dropped_versions": list(self.dropped_versions)}


@dataclass
class Forensics:
    """Every expected record not in the output, explained; and what it cost to find out."""

    explained: list[Explained] = field(default_factory=list)
    writers: list[WriterCycle] = field(default_factory=list)
    versions_listed: int = 0  # object versions read; 0 unless some record was unexplained by cheaper evidence
    log_lines_read: int = 0
    logs_available: bool = True
    logs_error: str | None = None  # why the log lines could not be read, when they were needed
    unreadable: list[str] = field(default_factory=list)  # other evidence AWS refused (no permission), and why

    def counts(self) -> dict[str, int]:
        counts = {str(cause): 0 for cause in Cause}
        for record in self.explained:
            counts[str(record.cause)] += 1
        return counts

    @property
    def lost(self) -> int:
        return sum(1 for record in self.explained if record.lost)

    def samples(self, per_cause: int = SAMPLES_PER_CAUSE) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for record in self.explained:
            bucket = out.setdefault(str(record.cause), [])
            if len(bucket) < per_cause:
                bucket.append(record.to_dict())
        return out

    def to_summary(self) -> dict[str, Any]:
        return {
            "by_cause": self.counts(),
            "lost": self.lost,
            "samples": self.samples(),
            "versions_read": self.versions_listed,
            "log_lines_read": self.log_lines_read,
            "logs_available": self.logs_available,
            "logs_error": self.logs_error,
            "unreadable": self.unreadable,
            "writers": [w.to_dict() for w in self.writers],
        }
