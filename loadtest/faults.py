"""Faults the load test can inject, to rehearse what on-call will see."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pipeline.layout import index_key, lock_key

CRASHED_OWNER = "loadtest/injected-crashed-writer"


def plant_stale_lock(s3: Any, bucket: str, account_id: str, run_id: str) -> str:
    """Leave the run's lock held by a writer that will never release it, as a crashed reporter would."""
    key = lock_key(index_key(account_id, run_id))
    now = datetime.now(UTC).isoformat()
    body = {"id": "injected", "owner": CRASHED_OWNER, "created": now, "expires": now, "operation": "write-csv"}
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(body).encode(), IfNoneMatch="*")
    return key
