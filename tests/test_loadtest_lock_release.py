"""A failed lock release, injected on every release, through the real handlers on the emulator.

GIVEN the reporter's lock releases fail with 412, 503, 501 or AccessDenied (injected between the
handler and the emulator by a botocore hook, not in pipeline/) WHEN a load test runs THEN no
committed record comes back, nothing is both written and in the DLQ, the failures are counted
and alarmed, and the lock is free again within the lease.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from loadtest.emulator.aws_session import AwsSession
from loadtest.emulator.moto_server import ACCOUNT_ID, MotoServer
from loadtest.faults.lock_release import LOCK_RELEASE_FAILURES
from loadtest.run.job import LoadTestResult, run_loadtest
from loadtest.run.options import LoadTestOptions
from pipeline.layout import index_key, lock_key

POLICIES, LEASE_S = 60, 3
TOMBSTONED = ("503", "501", "AccessDenied")  # the delete fails, the conditional tombstone overwrite works


@dataclass
class ReleaseRun:
    code: str
    result: LoadTestResult
    final_lock: dict | None

    @property
    def summary(self) -> dict:
        return self.result.summary


@pytest.fixture(scope="module", params=list(LOCK_RELEASE_FAILURES))
def release_run(request: pytest.FixtureRequest, moto_server: MotoServer, tmp_path_factory) -> ReleaseRun:
    code = request.param
    result = run_loadtest(
        LoadTestOptions(
            policies=POLICIES,
            endpoint_url=moto_server.endpoint_url,
            fail_lock_release=code,
            # Parts of 10 rows: a compaction (and so a lock release) every 10 records, not only the final flush.
            overrides={
                "lock.timeout_seconds": LEASE_S,
                "queue.batch_size": 10,
                "queue.batching_window_seconds": 1,
                "output.rows_per_file": 10,
            },
            idle_seconds=2,
            out=tmp_path_factory.mktemp(f"release-{code}"),
        )
    )
    s3 = AwsSession(moto_server.endpoint_url).client("s3")
    key = lock_key(index_key(ACCOUNT_ID, result.summary["run_id"]))
    listed = s3.list_objects_v2(Bucket=result.spec.bucket_name, Prefix=key).get("KeyCount", 0)
    body = json.loads(s3.get_object(Bucket=result.spec.bucket_name, Key=key)["Body"].read()) if listed else None
    return ReleaseRun(code, result, body)


def test_every_record_ends_in_the_output_exactly_once(release_run: ReleaseRun) -> None:
    s = release_run.summary
    assert (s["lost"], s["duplicates"], s["dlq"], s["written_and_dlq"]) == (0, 0, 0, 0), s["missing_keys"]
    assert s["unique_rows"] == POLICIES and release_run.result.ok, release_run.result.problems


def test_no_message_of_a_committed_group_comes_back(release_run: ReleaseRun) -> None:
    invocations = pd.read_csv(release_run.result.report_dir / "invocations.csv")
    assert invocations["failures"].sum() == 0, "a failed release returned committed messages to the queue"
    assert set(invocations["outcome"]) == {"ok"}, invocations["outcome"].value_counts().to_dict()
    assert release_run.summary["duplicates"] == 0


def test_the_failed_releases_are_counted_and_alarmed(release_run: ReleaseRun) -> None:
    lock = release_run.summary["lock"]
    if release_run.code == "501":
        # learned once per instance, then released by tombstone without trying the delete again
        assert 1 <= lock["release_failed"] <= release_run.summary["concurrency"], lock
    else:
        assert lock["release_failed"] == lock["acquired"] > 0, f"every release failed and was counted: {lock}"
    fired = release_run.summary["alarms_fired"]
    assert any(name.endswith("lock-release-failed-warning") for name in fired), fired


def test_the_lock_is_free_again_within_the_lease(release_run: ReleaseRun) -> None:
    lock, final = release_run.summary["lock"], release_run.final_lock
    if release_run.code in TOMBSTONED:
        assert lock["stale_broken"] == 0, f"a tombstone frees the lock at once, no writer waits out a lease: {lock}"
        assert final is not None and "released" in final, f"the last release leaves a tombstone: {final}"
    else:  # 412: not ours any more as far as the writer can tell, so the lease frees it
        assert final is not None and "released" not in final, f"a 412 leaves the lock to its lease: {final}"
        ages = _stale_ages(release_run.result.report_dir)
        cap = release_run.result.spec.lock.max_backoff_seconds
        assert len(ages) == lock["stale_broken"], (ages, lock)
        assert all(age <= LEASE_S + cap + 1 for age in ages), f"each lock taken over within lease + one backoff: {ages}"
    assert lock["acquire_failed"] == 0, lock


def _stale_ages(report_dir: Path) -> list[float]:
    """How old each lock was when a writer took it over (S3's clock), from the reporter's log lines."""
    lines = (line for path in (report_dir / "logs").glob("*/*.jsonl") for line in path.open())  # instance logs
    events = (json.loads(line) for line in lines if '"stale_age_s"' in line)
    return [e["stale_age_s"] for e in events]


def test_the_report_names_the_injected_fault(release_run: ReleaseRun) -> None:
    [rule] = release_run.summary["faults_injected"]
    assert rule["operation"] == "s3.DeleteObject" and rule["key_suffix"] == ".lock", rule
