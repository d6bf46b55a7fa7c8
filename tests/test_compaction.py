"""Compaction of segments into parts, against a real moto S3.

GIVEN segments committed by reporters WHEN a fill compaction or a flush runs THEN parts are
written whole (a fill leaves the short remainder for later), every record reaches the parts
once, and a segment is deleted only when all of its records are in parts.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from loadtest.emulator.aws_session import AwsSession
from loadtest.emulator.moto_server import ACCOUNT_ID
from loadtest.run.seeding import synthetic_records
from pipeline.compaction import compact, pending_segments
from pipeline.csv_store import FencedCsvStore, csv_record_keys
from pipeline.layout import report_prefix
from pipeline.segments import write_segment

BUCKET, RUN, ROWS = "cidb-test-compaction", "run-compaction", 5


@pytest.fixture
def s3(aws: AwsSession) -> Any:
    client = aws.client("s3")
    client.create_bucket(Bucket=BUCKET)
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return client


def store(s3: Any) -> FencedCsvStore:
    return FencedCsvStore(s3, BUCKET, ACCOUNT_ID, RUN, ROWS)


def parts(s3: Any) -> dict[str, list[str]]:
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=report_prefix(ACCOUNT_ID, RUN)).get("Contents", [])
    return {
        o["Key"]: csv_record_keys(s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read().decode())
        for o in listing
        if o["Key"].endswith(".csv")
    }


def commit_three_segments_of_four(s3: Any) -> list[str]:
    records = synthetic_records(12, 3, run_id=RUN, account_id=ACCOUNT_ID)
    for i in range(0, 12, 4):
        write_segment(s3, BUCKET, ACCOUNT_ID, RUN, records[i : i + 4])
        time.sleep(1.1)  # LastModified has 1 s granularity: keep the segments' order
    return [r.key for r in records]


def test_a_fill_writes_whole_parts_and_keeps_the_segment_it_only_partly_folded(s3: Any) -> None:
    # GIVEN 12 records in three segments of 4, and parts of 5 rows
    keys = commit_three_segments_of_four(s3)
    segments = pending_segments(s3, BUCKET, ACCOUNT_ID, RUN)
    # WHEN a fill compaction runs
    result = compact(store(s3), flush=False)
    # THEN it writes two whole parts (10 rows) and no short third one
    written = parts(s3)
    assert sorted(len(rows) for rows in written.values()) == [5, 5], written
    assert result.written == 10
    # AND only the two segments whose records are all in parts are deleted; the third keeps records 11 and 12
    assert pending_segments(s3, BUCKET, ACCOUNT_ID, RUN) == segments[2:], "a partly folded segment must stay"
    # WHEN the run is flushed THEN the rest lands once, and no segment is left
    compact(store(s3), flush=True)
    rows = [k for part in parts(s3).values() for k in part]
    assert sorted(rows) == sorted(keys) and len(rows) == len(set(rows))
    assert pending_segments(s3, BUCKET, ACCOUNT_ID, RUN) == []


def test_a_record_in_two_segments_becomes_one_row(s3: Any) -> None:
    records = synthetic_records(4, 5, run_id=RUN, account_id=ACCOUNT_ID)
    write_segment(s3, BUCKET, ACCOUNT_ID, RUN, records[:3])
    write_segment(s3, BUCKET, ACCOUNT_ID, RUN, records[2:])  # record 3 delivered twice, in another batch
    compact(store(s3), flush=True)
    rows = [k for part in parts(s3).values() for k in part]
    assert sorted(rows) == sorted(r.key for r in records), rows


def test_the_same_group_delivered_again_writes_no_second_segment(s3: Any) -> None:
    records = synthetic_records(3, 5, run_id=RUN, account_id=ACCOUNT_ID)
    first = write_segment(s3, BUCKET, ACCOUNT_ID, RUN, records)
    again = write_segment(s3, BUCKET, ACCOUNT_ID, RUN, list(reversed(records)))
    assert (first.written, again.written, again.key) == (3, 0, first.key)
    assert len(pending_segments(s3, BUCKET, ACCOUNT_ID, RUN)) == 1
