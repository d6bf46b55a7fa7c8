"""Faults the load test can inject, to rehearse what on-call will see."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from loadtest.faults.injection import FaultRule
from pipeline.layout import LOCK_SUFFIX, index_key, lock_key

CRASHED_OWNER = "loadtest/injected-crashed-writer"

# How each lock-release failure looks to the reporter. 501 fails only the conditional delete, as
# LocalStack does; the others fail every delete of a lock, as a lasting AWS error would.
LOCK_RELEASE_FAILURES: dict[str, FaultRule] = {
    "412": FaultRule("s3.DeleteObject", "PreconditionFailed", 412, key_suffix=LOCK_SUFFIX),
    "503": FaultRule("s3.DeleteObject", "SlowDown", 503, key_suffix=LOCK_SUFFIX),
    "501": FaultRule("s3.DeleteObject", "NotImplemented", 501, key_suffix=LOCK_SUFFIX, when_param="IfMatch"),
    "AccessDenied": FaultRule("s3.DeleteObject", "AccessDenied", 403, key_suffix=LOCK_SUFFIX),
}


def plant_stale_lock(s3: Any, bucket: str, account_id: str, run_id: str) -> str:
    """Leave the run's lock held by a writer that will never release it, as a crashed reporter would."""
    key = lock_key(index_key(account_id, run_id))
    now = datetime.now(UTC).isoformat()
    body = {"id": "injected", "owner": CRASHED_OWNER, "created": now, "expires": now, "operation": "write-csv"}
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(body).encode(), IfNoneMatch="*")
    return key
