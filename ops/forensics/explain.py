"""Give every expected record that is not in the output exactly one cause, cheapest evidence first.

One implementation for ``cidb verify`` on a stack and for the load test's reconciliation. The
order is the cost: the DLQ, queue and segment contents the caller has already read; then the
collector's publish results (one small object); then the output's version history (one HEAD
and at most one ranged GET per version), which a clean run never reads; then the reporter's
log lines, fetched only when a record in the DLQ or a still unexplained one needs them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from ops.forensics.causes import Cause, Explained, Forensics
from ops.forensics.log_evidence import LogEvidence
from ops.forensics.versions import Overwrite, VersionHistory, load_history
from pipeline.collection import trace_id as trace_id_of
from pipeline.dlq_messages import RECORD_FAILED_ELSEWHERE, DecodedMessage
from pipeline.layout import report_prefix
from pipeline.publish_results import PublishResults, read_publish_results
from pipeline.writer_metadata import NOTHING_READ

NO_PUBLISH_RESULTS = (
    "the collector left no publish results: it crashed or timed out before it finished publishing, or the "
    "run predates publish results (its log group says which)"
)
UNREADABLE = object()  # evidence that exists but could not be read (no permission): it proves nothing


@dataclass
class RunEvidence:
    """What the caller has already read about a run, and how to read the rest."""

    run_id: str
    account_id: str
    expected: list[str]  # in seq order: position + 1 is a key's seq
    s3: Any
    bucket: str
    dlq: list[DecodedMessage]
    queued: Collection[str] = ()
    in_flight: Collection[str] = ()
    committed: Collection[str] = ()  # in segments, not yet folded into parts
    unread_queue_depth: int = 0  # messages in the main queue that nobody read (a stack, without --peek-queue)
    logs: Callable[[], list[dict[str, Any]]] | None = None  # the reporter's lines of the run; None: no log access


def explain(not_in_output: list[str], evidence: RunEvidence) -> Forensics:
    seq_of = {key: seq for seq, key in enumerate(evidence.expected, start=1)}
    forensics = Forensics(logs_available=evidence.logs is not None)
    logs = _LazyLogs(evidence.logs, forensics)
    found: dict[str, Explained] = {}

    def settle(key: str, cause: Cause, detail: str, **facts: Any) -> None:
        seq = seq_of.get(key)
        trace = trace_id_of(evidence.run_id, seq) if seq else None
        found[key] = Explained(key, seq, trace, cause, detail, facts)

    def left() -> list[str]:
        return [key for key in not_in_output if key not in found]

    in_dlq = _dlq_by_key(evidence.dlq, evidence.run_id)
    queued, in_flight, committed = set(evidence.queued), set(evidence.in_flight), set(evidence.committed)
    for key in left():
        if key in in_dlq:
            message = in_dlq[key]
            error = message.error or logs.last_failure(seq_of.get(key), evidence.run_id) or RECORD_FAILED_ELSEWHERE
            settle(
                key,
                Cause.DLQ,
                f"message {message.message_id}, {message.receive_count} receives: {error}",
                message_id=message.message_id,
                receive_count=message.receive_count,
                error=error,
            )
        elif key in queued:
            settle(key, Cause.QUEUED, "still in the main queue")
        elif key in in_flight:
            settle(key, Cause.IN_FLIGHT, "received and neither deleted nor returned: SQS brings it back")
        elif key in committed:
            settle(key, Cause.COMMITTED, "in a segment; the next compaction or the verifier's flush folds it in")

    publish = _read(forensics, "publish results", _publish_results, evidence) if left() else None
    for key in left():
        seq = seq_of.get(key)
        if isinstance(publish, PublishResults) and seq in publish.given_up:
            settle(key, Cause.NEVER_PUBLISHED, f"the collector gave up: {publish.given_up[seq]}")

    history = _read(forensics, "object versions", _history, evidence) if left() else None
    if isinstance(history, VersionHistory):
        forensics.versions_listed = history.versions
        hits = history.overwrites(set(left()))
        for key, hit in hits.items():
            settle(key, Cause.OVERWRITTEN, _overwrite_detail(hit), **_overwrite_facts(hit))
        forensics.writers = [w for w in history.writer_cycles(hits) if w.dropped_versions or w.rows_lost]

    for key in left():
        reason = logs.rejection(seq_of.get(key), evidence.run_id)
        if reason:
            settle(key, Cause.REJECTED, f"the reporter rejected it: {reason}", reason=reason)
    for key in left():
        _settle_unexplained(key, publish, evidence.unread_queue_depth, settle, forensics.unreadable)
    forensics.explained = sorted(found.values(), key=lambda r: (r.seq is None, r.seq or 0, r.key))
    return forensics


def _read(forensics: Forensics, what: str, read: Callable[[RunEvidence], Any], evidence: RunEvidence) -> Any:
    """One source of evidence, or UNREADABLE (noted in the forensics) when AWS refuses it."""
    try:
        return read(evidence)
    except ClientError as exc:
        forensics.unreadable.append(f"{what}: {exc}")
        return UNREADABLE


def _publish_results(evidence: RunEvidence) -> PublishResults | None:
    return read_publish_results(evidence.s3, evidence.bucket, evidence.run_id)


def _history(evidence: RunEvidence) -> VersionHistory:
    return load_history(evidence.s3, evidence.bucket, report_prefix(evidence.account_id, evidence.run_id))


def _settle_unexplained(
    key: str, publish: Any, unread: int, settle: Callable[..., None], unreadable: list[str]
) -> None:
    if unreadable:
        settle(key, Cause.UNKNOWN, "the evidence that would explain it could not be read: " + "; ".join(unreadable))
    elif publish is None:
        settle(key, Cause.NEVER_PUBLISHED, NO_PUBLISH_RESULTS)
    elif unread:
        settle(key, Cause.QUEUED, f"not found elsewhere; the main queue holds {unread} messages (--peek-queue to look)")
    else:
        settle(
            key,
            Cause.UNKNOWN,
            "published, and in no output version, queue or DLQ, and no rejection logged: a hole in the evidence",
        )


def _dlq_by_key(messages: list[DecodedMessage], run_id: str) -> dict[str, DecodedMessage]:
    by_key: dict[str, DecodedMessage] = {}
    for message in messages:
        if message.record is not None and message.record.run_id == run_id:
            by_key[message.record.key] = message
        elif message.claim is not None and message.claim.run_id == run_id:
            by_key.setdefault(message.claim.key, message)
    return by_key


def _short(version_id: str | None) -> str:
    return (version_id or "?")[:8]


def _overwrite_detail(hit: Overwrite) -> str:
    held, dropped = hit.held_in, hit.dropped_by
    read = dropped.stamp.read_version if dropped.stamp else None
    had_read = ""
    if read == NOTHING_READ:
        had_read = ", which had read the object before it existed"
    elif read:
        had_read = f", which had read the older version {_short(read)}"

    return (
        f"{hit.object_key}: in version {_short(held.version_id)} ({held.last_modified:%H:%M:%S}, by {held.writer}); "
        f"gone from version {_short(dropped.version_id)} ({dropped.last_modified:%H:%M:%S}, by {dropped.writer}"
        f"{had_read})"
    )


def _overwrite_facts(hit: Overwrite) -> dict[str, Any]:
    return {"object_key": hit.object_key, "held_in": hit.held_in.describe(), "dropped_by": hit.dropped_by.describe()}


class _LazyLogs:
    """The reporter's lines, fetched on first need and at most once."""

    def __init__(self, fetch: Callable[[], list[dict[str, Any]]] | None, forensics: Forensics) -> None:
        self._fetch, self._forensics, self._evidence = fetch, forensics, None

    def _get(self) -> LogEvidence | None:
        if self._fetch is None:
            return None
        if self._evidence is None:
            try:
                lines = self._fetch()
            except Exception as exc:  # no access to the log group: the other evidence still stands
                self._fetch, self._forensics.logs_available = None, False
                self._forensics.logs_error = str(exc)
                return None
            self._forensics.log_lines_read = len(lines)
            self._evidence = LogEvidence(lines)
        return self._evidence

    def last_failure(self, seq: int | None, run_id: str) -> str | None:
        logs = self._get()
        return logs.last_failure(trace_id_of(run_id, seq)) if logs and seq else None

    def rejection(self, seq: int | None, run_id: str) -> str | None:
        logs = self._get()
        return logs.rejection(trace_id_of(run_id, seq)) if logs and seq else None
