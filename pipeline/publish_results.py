"""What the collector published and what it gave up on, kept beside the run's expected keys.

Loss forensics reads it to tell a record that never left the collector (``never-published``)
from one lost downstream. It is written once, when the collector finishes publishing, so a
collector that crashed or timed out leaves none, and that absence is evidence too.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from pipeline.aws import error_code
from pipeline.layout import publish_results_key
from pipeline.lock import MISSING_CODES
from pipeline.publisher import PublishResult


@dataclass(frozen=True)
class PublishResults:
    run_id: str
    expected: int
    published: int
    given_up: dict[int, str]  # seq -> why its last publish attempt failed
    finished_at: float


def write_publish_results(s3: Any, bucket: str, run_id: str, expected: int, result: PublishResult) -> None:
    body = {
        "run_id": run_id,
        "expected": expected,
        "published": result.published,
        "given_up": [{"seq": int(i), "reason": result.reasons.get(i, "not recorded")} for i in result.given_up],
        "finished_at": round(time.time(), 3),
    }
    s3.put_object(
        Bucket=bucket, Key=publish_results_key(run_id), Body=json.dumps(body).encode(), ContentType="application/json"
    )


def read_publish_results(s3: Any, bucket: str, run_id: str) -> PublishResults | None:
    """The collector's results, or None if it never wrote them (it did not finish)."""
    try:
        raw = s3.get_object(Bucket=bucket, Key=publish_results_key(run_id))["Body"].read()
    except ClientError as exc:
        if error_code(exc) in MISSING_CODES:
            return None
        raise
    body = json.loads(raw)
    return PublishResults(
        run_id=body["run_id"],
        expected=int(body["expected"]),
        published=int(body["published"]),
        given_up={int(g["seq"]): str(g["reason"]) for g in body["given_up"]},
        finished_at=float(body["finished_at"]),
    )
