"""The runs' S3 locks: who holds each, for how long, whether it is stale; and breaking a stale one safely.

A lock is stale when S3's own clock says it is older than its lease (``expires`` - ``created``
in its body). Breaking it deletes with ``IfMatch`` on the ETag that was shown, so a lock that a
writer took over or released meanwhile is never deleted by mistake. Breaking is rarely needed:
the next writer takes a stale lock over by itself (see ``pipeline/lock.py``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from ops.errors import OpsError, aws_errors
from ops.target import Target
from pipeline.layout import index_key, lock_key
from pipeline.lock import (
    CONFLICT_CODES,
    MISSING_CODES,
    NOT_IMPLEMENTED_CODES,
    is_tombstone,
    owner_of,
    server_age_seconds,
)
from pipeline.run_store import RunRecord


@dataclass(frozen=True)
class LockInfo:
    run_id: str
    key: str
    etag: str
    owner: str
    age_seconds: float
    lease_seconds: float | None
    released: bool  # a tombstone: its owner released it by overwriting

    @property
    def stale(self) -> bool:
        return not self.released and self.lease_seconds is not None and self.age_seconds > self.lease_seconds

    @property
    def held(self) -> bool:
        return not self.released

    @property
    def expires_in_seconds(self) -> float | None:
        return None if self.lease_seconds is None else self.lease_seconds - self.age_seconds

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "stale": self.stale, "expires_in_seconds": self.expires_in_seconds}


def run_lock(target: Target, run: RunRecord) -> LockInfo | None:
    """The run's lock as S3 holds it now; None when there is none."""
    key = lock_key(index_key(run.account_id, run.run_id))
    s3 = target.client("s3")
    with aws_errors(f"S3 bucket {target.outputs.bucket_name} at {target.where}"):
        try:
            response = s3.get_object(Bucket=target.outputs.bucket_name, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in MISSING_CODES:
                return None
            raise
        body = response["Body"].read()
    return LockInfo(
        run_id=run.run_id,
        key=key,
        etag=response["ETag"],
        owner=owner_of(body),
        age_seconds=round(server_age_seconds(response), 1),
        lease_seconds=_lease_seconds(body),
        released=is_tombstone(body),
    )


def held_locks(target: Target, runs: list[RunRecord]) -> list[LockInfo]:
    found = [run_lock(target, run) for run in runs]
    return [lock for lock in found if lock is not None and lock.held]


def break_lock(target: Target, lock: LockInfo, *, force: bool) -> str:
    """Delete the lock shown, only if it is still that lock (same ETag); returns how it was broken."""
    if not lock.held:
        raise OpsError(f"the lock of run {lock.run_id} is released already (a tombstone); nothing to break")
    if not lock.stale and not force:
        raise OpsError(
            f"the lock of run {lock.run_id} is not stale (age {lock.age_seconds:.0f} s, lease "
            f"{lock.lease_seconds} s, owner {lock.owner}): its writer may still be working. Wait for the lease, "
            "or pass --force if you know the writer is gone"
        )
    s3, bucket = target.client("s3"), target.outputs.bucket_name
    with aws_errors(f"S3 bucket {bucket} at {target.where}"):
        try:
            s3.delete_object(Bucket=bucket, Key=lock.key, IfMatch=lock.etag)
            return "deleted"
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in CONFLICT_CODES or code in MISSING_CODES:
                raise OpsError(
                    f"the lock of run {lock.run_id} changed since it was shown (ETag {lock.etag} is gone: "
                    "taken over or released); nothing was deleted. Run `cidb lock show` again"
                ) from None
            if code not in NOT_IMPLEMENTED_CODES:
                raise
        # An endpoint without conditional deletes: overwrite with a tombstone, as a writer's release does.
        tombstone = {"id": "cidb-lock-break", "owner": "cidb lock break", "released": datetime.now().isoformat()}
        try:
            s3.put_object(Bucket=bucket, Key=lock.key, Body=json.dumps(tombstone).encode(), IfMatch=lock.etag)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in CONFLICT_CODES:
                raise OpsError(
                    f"the lock of run {lock.run_id} changed since it was shown; nothing was changed"
                ) from None
            raise
        return "released by tombstone (the endpoint has no conditional delete)"


def _lease_seconds(body: bytes) -> float | None:
    try:
        fields = json.loads(body)
        return (datetime.fromisoformat(fields["expires"]) - datetime.fromisoformat(fields["created"])).total_seconds()
    except (ValueError, KeyError, TypeError):
        return None  # corrupt: the writers treat it as stale once its object is older than their lease
