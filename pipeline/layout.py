"""Where the pipeline keeps things in S3; one place so readers and writers agree.

Every object the pipeline writes lives under one of these prefixes, which is also what
the IAM policies and lifecycle rules scope to.
"""

from __future__ import annotations

REPORTS_PREFIX = "reports/"
OVERSIZE_PREFIX = "oversize/"
RUNS_PREFIX = "runs/"
# Immutable per-batch segments, the reporters' commit point, waiting to be compacted into parts.
# Outside reports/ so that nothing reading the output can mistake a segment for a part.
SEGMENTS_PREFIX = "segments/"
LOCK_SUFFIX = ".lock"
# Lock objects carry this tag so a lifecycle rule can expire leftovers: lifecycle filters
# match prefixes, sizes and tags, never a key suffix.
LOCK_TAG_KEY = "cidb-lock"
LOCK_TAG_VALUE = "true"
LOCK_TAGGING = f"{LOCK_TAG_KEY}={LOCK_TAG_VALUE}"


def report_prefix(account_id: str, run_id: str) -> str:
    return f"{REPORTS_PREFIX}{account_id}/{run_id}/"


def part_key(account_id: str, run_id: str, part_no: int) -> str:
    return f"{report_prefix(account_id, run_id)}policies-part{part_no:05d}.csv"


def seed_csv_key(account_id: str, run_id: str) -> str:
    """The seed's single CSV, rewritten by every reporter."""
    return f"{report_prefix(account_id, run_id)}policies.csv"


def index_key(account_id: str, run_id: str) -> str:
    return f"{report_prefix(account_id, run_id)}_index.json"


def segment_prefix(account_id: str, run_id: str) -> str:
    return f"{SEGMENTS_PREFIX}{account_id}/{run_id}/"


def segment_key(account_id: str, run_id: str, content_id: str) -> str:
    return f"{segment_prefix(account_id, run_id)}{content_id}.csv"


def lock_key(target_key: str) -> str:
    return f"{target_key}{LOCK_SUFFIX}"


def oversize_key(run_id: str, seq: int) -> str:
    return f"{OVERSIZE_PREFIX}{run_id}/{seq:07d}.json"


def expected_keys_key(run_id: str) -> str:
    return f"{RUNS_PREFIX}{run_id}/expected-keys.json"


def publish_results_key(run_id: str) -> str:
    """What the collector could not publish, written when it finishes; absent if it never finished."""
    return f"{RUNS_PREFIX}{run_id}/publish-results.json"
