"""An S3 lock with a lease, in the style of Terraform's ``use_lockfile`` but safe to take over.

The lock only reduces contention. Correctness comes from fencing in the CSV store:
every data write there is conditional on the ETag it read, so a writer that pauses past
its lease cannot overwrite newer data even though its lock was taken over.

How the lock differs from the seed's design, and why:

- Acquire is ``PutObject(IfNoneMatch="*")``: atomic create, no check-then-create race.
- A stale lock is taken over with ``PutObject(IfMatch=<etag of the stale lock>)``, never by
  delete-then-create, which would let two writers both "break" the lock and both win.
- Release is ``DeleteObject(IfMatch=<our etag>)``, so a writer never deletes a lock that a
  newer owner took over. If that delete fails for any other reason (``AccessDenied`` when
  ``s3:DeleteObject`` is missing, ``503 SlowDown`` past the SDK's retries, or ``501
  NotImplemented`` on endpoints without conditional deletes, such as LocalStack), the lock is
  released by overwriting it with a tombstone, ``PutObject(IfMatch=<our etag>)``: as atomic
  as the conditional delete, it needs only ``s3:PutObject``, and the next acquirer takes a
  tombstone over at once instead of waiting out the lease. (A check-then-delete fallback
  would race with a take-over; waiting out the lease would queue every writer behind it.)
- A release never raises: it runs after the commit point, and a failed release must not
  send committed records back to the queue. It is logged with its error code and counted
  in ``LockReleaseFailed``; the lease frees the lock in the end, and fencing keeps the data
  correct meanwhile.
- Staleness is judged on S3's clock (the object's LastModified against the response's Date
  header), so clock skew between Lambda hosts cannot make a live lock look stale.

Example::

    lock = S3Lock(s3, "bucket", "reports/123/run/_index.json", LockSettings(), owner="fn/req")
    with lock.held():
        ...  # conditional writes

Environment variables: the LOCK_* settings of :mod:`pipeline.settings`.
"""

from __future__ import annotations

import contextlib
import json
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.aws import error_code
from pipeline.layout import LOCK_TAGGING, lock_key
from pipeline.settings import LockSettings
from pipeline.telemetry import LockEvent, LogField, MetricName, emit_counts

CONFLICT_CODES = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}
MISSING_CODES = {"NoSuchKey", "404", "NotFound"}
NOT_IMPLEMENTED_CODES = {"NotImplemented", "501"}


class EndpointFacts:
    """What this process learned about the S3 endpoint; Lambda keeps it for the warm container."""

    conditional_delete = True


class LockNotAcquired(RuntimeError):
    """The lock stayed busy for every attempt; the caller returns its records to the queue."""


@dataclass
class LockStats:
    acquired: int = 0
    contended: int = 0
    stale_broken: int = 0
    acquire_failed: int = 0
    release_failed: int = 0
    wait_ms: list[float] = field(default_factory=list)

    def publish(self, metrics: Any) -> None:
        emit_counts(
            metrics,
            (
                (MetricName.LOCK_ACQUIRED, self.acquired),
                (MetricName.LOCK_CONTENDED, self.contended),
                (MetricName.LOCK_STALE_BROKEN, self.stale_broken),
                (MetricName.LOCK_ACQUIRE_FAILED, self.acquire_failed),
                (MetricName.LOCK_RELEASE_FAILED, self.release_failed),
            ),
        )
        for wait in self.wait_ms:
            metrics.add_metric(name=MetricName.LOCK_WAIT_MS, unit="Milliseconds", value=wait)


@dataclass(frozen=True)
class LockHandle:
    lock_id: str
    key: str
    etag: str
    wait_ms: float
    took_over: bool


class S3Lock:
    """Lease lock on ``<target>.lock``; see the module docstring for the protocol."""

    def __init__(
        self,
        s3: Any,
        bucket: str,
        target_key: str,
        settings: LockSettings,
        *,
        owner: str,
        logger: Any = None,
        stats: LockStats | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
        optional: bool = False,
    ) -> None:
        """``optional``: the caller can do without the lock (someone holding it does the work), so
        running out of attempts is logged as a skip, not counted as ``LockAcquireFailed``."""
        self.s3, self.bucket, self.settings, self.owner = s3, bucket, settings, owner
        self.optional = optional
        self.key = lock_key(target_key)
        self.logger = logger
        self._sleep, self._rng = sleep, rng
        self.stats = stats if stats is not None else LockStats()
        self._last_conflict = ""

    def backoff_seconds(self, attempt: int) -> float:
        """Capped exponential backoff with jitter: ceiling * (1 - jitter * U[0,1)).

        ceiling = min(base * 2^(attempt-1), max_backoff). A jitter factor of 1.0 is "full
        jitter" (uniform between 0 and the ceiling), which spreads waiting writers apart
        best; 0 gives plain exponential backoff. The cap keeps a writer that lost a few
        rounds from sleeping through the moments the lock is free.
        """
        ceiling = min(self.settings.base_backoff_seconds * (2 ** (attempt - 1)), self.settings.max_backoff_seconds)
        return ceiling * (1.0 - min(1.0, self.settings.jitter_factor) * self._rng())

    def acquire(self) -> LockHandle:
        lock_id = str(uuid.uuid4())
        started = time.monotonic()
        for attempt in range(1, self.settings.max_attempts + 1):
            handle = self._try_create(lock_id, started) or self._try_take_over(lock_id, started, attempt)
            if handle:
                return handle
            self.stats.contended += 1
            self._log(
                "info", "lock busy", LockEvent.CONTENDED, lock_id, attempt=attempt, error_code=self._last_conflict
            )
            if attempt < self.settings.max_attempts:
                self._sleep(self.backoff_seconds(attempt))
        waited = (time.monotonic() - started) * 1000
        if self.optional:
            self._log(
                "info", "lock busy; its holder does the work", LockEvent.SKIPPED, lock_id, wait_ms=round(waited, 1)
            )
        else:
            self.stats.acquire_failed += 1
            self._log("warning", "lock not acquired", LockEvent.ACQUIRE_FAILED, lock_id, wait_ms=round(waited, 1))
        raise LockNotAcquired(
            f"lock s3://{self.bucket}/{self.key} still held after {self.settings.max_attempts} attempts "
            f"({waited:.0f} ms); raise LOCK_MAX_ATTEMPTS or LOCK_BASE_BACKOFF_SECONDS if this persists"
        )

    def release(self, handle: LockHandle) -> bool:
        """Free the lock if it is still ours (same ETag); True if freed. Never raises (see module docstring)."""
        if not EndpointFacts.conditional_delete:
            return self._release_by_tombstone(handle, cause=None)
        try:
            self.s3.delete_object(Bucket=self.bucket, Key=handle.key, IfMatch=handle.etag)
        except (ClientError, BotoCoreError) as exc:
            code = error_code(exc)
            self.stats.release_failed += 1
            if code in CONFLICT_CODES or code in MISSING_CODES:
                self._log(
                    "warning",
                    "lock release failed: no longer ours (taken over after the lease); left to its owner",
                    LockEvent.RELEASE_FAILED,
                    handle.lock_id,
                    error_code=code,
                )
                return False
            if code in NOT_IMPLEMENTED_CODES:
                EndpointFacts.conditional_delete = False
                self._log(
                    "warning",
                    "this S3 endpoint does not implement conditional DeleteObject; "
                    "releasing locks with a conditional tombstone overwrite from now on (logged once per instance)",
                    LockEvent.RELEASE_FAILED,
                    handle.lock_id,
                    error_code=code,
                )
            return self._release_by_tombstone(handle, cause=code)
        self._log("info", "lock released", LockEvent.RELEASED, handle.lock_id, release_method="delete")
        return True

    def _release_by_tombstone(self, handle: LockHandle, cause: str | None) -> bool:
        body = json.dumps({"id": handle.lock_id, "owner": self.owner, "released": datetime.now(UTC).isoformat()})
        try:
            self.s3.put_object(
                Bucket=self.bucket, Key=handle.key, Body=body.encode(), IfMatch=handle.etag, Tagging=LOCK_TAGGING
            )
        except (ClientError, BotoCoreError) as exc:
            code = error_code(exc)
            if cause is None:
                self.stats.release_failed += 1
            self._log(
                "warning",
                "lock release failed; the lease will free it",
                LockEvent.RELEASE_FAILED,
                handle.lock_id,
                error_code=f"{cause}+{code}" if cause else code,
            )
            return False
        if cause is None:
            self._log("info", "lock released", LockEvent.RELEASED, handle.lock_id, release_method="tombstone")
        else:
            self._log(
                "warning",
                f"lock release by delete failed ({cause}); released by tombstone",
                LockEvent.RELEASED,
                handle.lock_id,
                release_method="tombstone",
                error_code=cause,
            )
        return True

    @contextlib.contextmanager
    def held(self) -> Iterator[LockHandle]:
        handle = self.acquire()
        try:
            yield handle
        finally:
            self.release(handle)

    def _body(self, lock_id: str, now: datetime) -> bytes:
        expires = now.timestamp() + self.settings.timeout_seconds
        return json.dumps(
            {
                "id": lock_id,
                "owner": self.owner,
                "created": now.isoformat(),
                "expires": datetime.fromtimestamp(expires, UTC).isoformat(),
                "operation": "write-csv",
            }
        ).encode()

    def _try_create(self, lock_id: str, started: float) -> LockHandle | None:
        try:
            resp = self.s3.put_object(
                Bucket=self.bucket,
                Key=self.key,
                Body=self._body(lock_id, datetime.now(UTC)),
                IfNoneMatch="*",
                Tagging=LOCK_TAGGING,
            )
        except ClientError as exc:
            if error_code(exc) in CONFLICT_CODES:
                self._last_conflict = error_code(exc)
                return None
            raise
        return self._acquired(lock_id, resp["ETag"], started, took_over=False)

    def _try_take_over(self, lock_id: str, started: float, attempt: int) -> LockHandle | None:
        try:
            current = self.s3.get_object(Bucket=self.bucket, Key=self.key)
        except ClientError as exc:
            if error_code(exc) in MISSING_CODES:
                return self._try_create(lock_id, started)  # released meanwhile
            raise
        body = current["Body"].read()
        released = is_tombstone(body)
        age = server_age_seconds(current)
        if not released and age <= self.settings.timeout_seconds:
            return None
        try:
            resp = self.s3.put_object(
                Bucket=self.bucket,
                Key=self.key,
                Body=self._body(lock_id, datetime.now(UTC)),
                IfMatch=current["ETag"],
                Tagging=LOCK_TAGGING,
            )
        except ClientError as exc:
            if error_code(exc) in CONFLICT_CODES or error_code(exc) in MISSING_CODES:
                return None  # someone else took it over or released it first
            raise
        if released:
            return self._acquired(lock_id, resp["ETag"], started, took_over=False)
        self.stats.stale_broken += 1
        previous = owner_of(body)
        self._log(
            "warning",
            "stale lock taken over",
            LockEvent.STALE_BROKEN,
            lock_id,
            stale_age_s=round(age, 1),
            **{LogField.PREVIOUS_OWNER: previous},
            attempt=attempt,
        )
        return self._acquired(lock_id, resp["ETag"], started, took_over=True)

    def _acquired(self, lock_id: str, etag: str, started: float, *, took_over: bool) -> LockHandle:
        wait_ms = (time.monotonic() - started) * 1000
        self.stats.acquired += 1
        self.stats.wait_ms.append(wait_ms)
        self._log("info", "lock acquired", LockEvent.ACQUIRED, lock_id, wait_ms=round(wait_ms, 1))
        return LockHandle(lock_id=lock_id, key=self.key, etag=etag, wait_ms=wait_ms, took_over=took_over)

    def _log(self, level: str, message: str, event: LockEvent, lock_id: str, **fields: Any) -> None:
        if self.logger is None:
            return
        extra = {LogField.LOCK_ID: lock_id, LogField.LOCK_KEY: self.key, LogField.LOCK_EVENT: event, **fields}
        getattr(self.logger, level)(message, extra={str(k): v for k, v in extra.items()})


def server_age_seconds(response: dict[str, Any]) -> float:
    """Age of the object by S3's own clock, falling back to ours if S3 sent no Date."""
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    now = parsedate_to_datetime(headers["date"]) if headers.get("date") else datetime.now(UTC)
    return (now - response["LastModified"]).total_seconds()


def is_tombstone(body: bytes) -> bool:
    """A lock its owner released by overwriting (see ``release``): free to take at once."""
    try:
        return "released" in json.loads(body)
    except (ValueError, TypeError):
        return False


def owner_of(body: bytes) -> str:
    try:
        return str(json.loads(body).get("owner", "?"))
    except (ValueError, AttributeError):
        return "?"
