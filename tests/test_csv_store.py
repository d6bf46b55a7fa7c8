"""Fenced, exactly-once CSV part files, and the seed store's lost update, against real moto S3.

Interleavings are deterministic: a botocore ``after-call`` hook on writer A's own client
runs writer B (with a different client) at the exact point where A is "paused". Every
conflict is a real ``412 PreconditionFailed`` from moto's conditional PUT.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from loadtest.emulator.aws_session import AwsSession
from loadtest.emulator.moto_server import ACCOUNT_ID
from loadtest.run.seeding import synthetic_records
from pipeline.csv_store import MAX_WRITE_ATTEMPTS, FencedCsvStore, SeedCsvStore, WriteConflictError
from pipeline.layout import index_key, report_prefix, seed_csv_key
from pipeline.lock import S3Lock
from pipeline.record import CSV_COLUMNS, PolicyRecord, key_digest
from pipeline.settings import LockSettings

BUCKET = "cidb-test-reports"
RUN = "run-csv"
HEADER = ",".join(CSV_COLUMNS)


def make_records(count: int, *, start: int = 1, run_id: str = RUN) -> list[PolicyRecord]:
    """Records exactly as the collector builds them (synthetic generator, real quoting cases)."""
    return synthetic_records(start - 1 + count, 5, run_id=run_id, account_id=ACCOUNT_ID)[start - 1 :]


def keys(records: list[PolicyRecord]) -> list[str]:
    return [r.key for r in records]


class S3Ops:
    """Operations a client sends (name, key), recorded from its own events."""

    def __init__(self, client: Any) -> None:
        self.ops: list[tuple[str, str]] = []
        self.statuses: list[tuple[str, str, int]] = []
        self._keys: dict[int, str] = {}
        client.meta.events.register("before-parameter-build.s3", self._before)
        client.meta.events.register("after-call.s3", self._after)

    def _before(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.ops.append((model.name, params.get("Key", params.get("Prefix", ""))))

    def _after(self, http_response: Any, model: Any, **_: Any) -> None:
        self.statuses.append((model.name, self.ops[-1][1], http_response.status_code))

    def count(self, name: str, key_suffix: str = "") -> int:
        return sum(1 for op, key in self.ops if op == name and key.endswith(key_suffix))


def on_first(client: Any, event: str, action: Callable[[], None], *, times: int = 1) -> list[int]:
    """Run ``action`` after the first ``times`` matching calls; returns a list whose length counts runs."""
    ran: list[int] = []

    def hook(**_: Any) -> None:
        if len(ran) < times:
            ran.append(1)
            action()

    client.meta.events.register(event, hook)
    return ran


def read_parts(s3: Any) -> dict[str, list[str]]:
    """part key -> record keys, checking each part starts with the CSV header."""
    parts = {}
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=report_prefix(ACCOUNT_ID, RUN)).get("Contents", [])
    for obj in sorted(listing, key=lambda o: o["Key"]):
        if not obj["Key"].endswith(".csv"):
            continue
        text = s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read().decode()
        assert text.split("\r\n", 1)[0] == HEADER, f"{obj['Key']} must start with the CSV header"
        parts[obj["Key"]] = [row["record_key"] for row in csv.DictReader(io.StringIO(text))]
    return parts


def all_rows(s3: Any) -> list[str]:
    return [key for part in read_parts(s3).values() for key in part]


def read_index(s3: Any) -> dict[str, Any]:
    return json.loads(s3.get_object(Bucket=BUCKET, Key=index_key(ACCOUNT_ID, RUN))["Body"].read())


def assert_index_matches_parts(s3: Any) -> None:
    index = {p["key"]: p for p in read_index(s3)["parts"]}
    for key, rows in read_parts(s3).items():
        etag = s3.head_object(Bucket=BUCKET, Key=key)["ETag"]
        assert key in index, f"_index.json must describe {key}"
        assert index[key]["etag"] == etag, f"_index.json ETag of {key} must be current"
        assert sorted(index[key]["digests"]) == sorted(key_digest(k) for k in rows), f"digests of {key}"


@pytest.fixture
def s3(aws: AwsSession) -> Any:
    client = aws.client("s3")
    client.create_bucket(Bucket=BUCKET)
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return client


@pytest.fixture
def other_s3(aws: AwsSession, s3: Any) -> Any:
    """A second writer's client: its own connection pool and event hooks."""
    return AwsSession(aws.endpoint_url).client("s3")


def store(client: Any, rows_per_file: int = 500) -> FencedCsvStore:
    return FencedCsvStore(client, BUCKET, ACCOUNT_ID, RUN, rows_per_file)


# --------------------------------------------------------------------------- basic writes


def test_first_write_creates_one_part_and_an_index(s3: Any) -> None:
    # GIVEN an empty run WHEN 5 records are written
    records = make_records(5)
    result = store(s3).write(records)
    # THEN one part holds the header and 5 rows, and the index describes it
    assert result.written == 5 and result.duplicates == 0, result
    assert list(read_parts(s3).values()) == [keys(records)], "part 1 rows, in order"
    assert_index_matches_parts(s3)


def test_rows_over_rows_per_file_split_into_parts_with_a_header_each(s3: Any) -> None:
    # GIVEN rows_per_file 3
    records = make_records(10)
    # WHEN 8 records are written, then 2 more
    store(s3, 3).write(records[:8])
    store(s3, 3).write(records[8:])
    # THEN parts of 3, 3, 3, 1 rows (the last part was topped up first), each with its own header
    parts = read_parts(s3)
    assert [len(rows) for rows in parts.values()] == [3, 3, 3, 1], f"rows per part: {parts}"
    assert [k.rsplit("/", 1)[1] for k in parts] == [f"policies-part{n:05d}.csv" for n in range(1, 5)], list(parts)
    assert all_rows(s3) == keys(records), "every record exactly once, in write order"
    assert_index_matches_parts(s3)


def test_same_record_twice_in_one_write_gives_one_row(s3: Any) -> None:
    # GIVEN a batch holding one record twice (a duplicate SNS/SQS delivery)
    records = make_records(3)
    # WHEN written
    result = store(s3).write([*records, records[1]])
    # THEN one row per record key
    assert (result.written, result.duplicates) == (3, 1), result
    assert all_rows(s3) == keys(records), "the duplicate must not produce a second row"


def test_same_batch_written_twice_gives_one_row_each_and_no_second_put(s3: Any) -> None:
    # GIVEN a batch already written
    records = make_records(4)
    store(s3).write(records)
    ops = S3Ops(s3)
    # WHEN the same batch is written again (a redelivery)
    result = store(s3).write(records)
    # THEN nothing is written at all
    assert (result.written, result.duplicates) == (0, 4), result
    assert ops.count("PutObject") == 0, f"a pure redelivery must not rewrite any object: {ops.ops}"
    assert all_rows(s3) == keys(records), "one row per record"


# --------------------------------------------------------------------------- fencing


@pytest.mark.parametrize(
    "existing",
    [pytest.param(0, id="B-creates-the-first-part"), pytest.param(2, id="B-appends-to-an-existing-part")],
)
def test_interleaved_writer_loses_conditional_put_rereads_and_keeps_both(s3: Any, other_s3: Any, existing: int) -> None:
    # GIVEN `existing` rows already stored
    records = make_records(existing + 6)
    earlier, rows_a, rows_b = records[:existing], records[existing : existing + 3], records[existing + 3 :]
    if earlier:
        store(s3).write(earlier)
    ops_a = S3Ops(s3)
    # AND writer B that writes right after A has listed the parts (A is "paused" with a stale view)
    on_first(s3, "after-call.s3.ListObjectsV2", lambda: store(other_s3).write(rows_b))
    # WHEN A writes
    result = store(s3).write(rows_a)
    # THEN A's first conditional PUT was refused by S3, A re-read and retried once
    part_puts = [status for op, key, status in ops_a.statuses if op == "PutObject" and key.endswith(".csv")]
    assert part_puts == [412, 200], f"A's part PUTs: first refused by S3, then accepted: {ops_a.statuses}"
    assert result.conflicts == 1 and result.written == 3, result
    # AND the part holds everyone's rows exactly once
    assert all_rows(s3) == keys(earlier) + keys(rows_b) + keys(rows_a), "rows of earlier, B, then A, once each"
    assert_index_matches_parts(s3)


def test_writer_whose_lease_expired_while_paused_cannot_overwrite_newer_data(s3: Any, other_s3: Any) -> None:
    # GIVEN writer A holds the run's lock with a 1 s lease and has read the run's state
    short = LockSettings(timeout_seconds=1, max_attempts=1, base_backoff_seconds=0, jitter_factor=0)
    store_a, store_b = store(s3), store(other_s3)
    lock_a = S3Lock(s3, BUCKET, store_a.lock_target, short, owner="reporter/req-a")
    lock_b = S3Lock(other_s3, BUCKET, store_b.lock_target, short, owner="reporter/req-b")
    records = make_records(6)
    rows_a, rows_b = records[:3], records[3:]
    store(s3).write(make_records(1, start=100))  # so A's write is an If-Match append
    taken_over: list[bool] = []

    def pause_past_lease_while_b_writes() -> None:
        time.sleep(2.1)  # A's lease (1 s) expires: S3 timestamps are whole seconds, so its age is then >= 2 s
        with lock_b.held() as handle_b:
            taken_over.append(handle_b.took_over)
            store_b.write(rows_b)

    on_first(s3, "after-call.s3.ListObjectsV2", pause_past_lease_while_b_writes)
    # WHEN A acquires, writes (pausing after its read), and releases
    handle_a = lock_a.acquire()
    result = store_a.write(rows_a)
    released_a = lock_a.release(handle_a)
    # THEN B had taken the stale lock over, A's stale write was refused and redone on top of B's
    assert taken_over == [True], "B must have taken over A's expired lock"
    assert result.conflicts == 1, f"A's write must have lost one conditional PUT: {result}"
    assert all_rows(s3) == [make_records(1, start=100)[0].key, *keys(rows_b), *keys(rows_a)], "B's rows kept, A's once"
    assert released_a is False, "A no longer owns the lock and must not delete anything"


def test_conflicts_on_every_attempt_raise_write_conflict_error(s3: Any, other_s3: Any) -> None:
    # GIVEN a rival writer that commits right after every listing A makes
    rival = iter(make_records(MAX_WRITE_ATTEMPTS, start=50))
    on_first(s3, "after-call.s3.ListObjectsV2", lambda: store(other_s3).write([next(rival)]), times=MAX_WRITE_ATTEMPTS)
    ops = S3Ops(s3)
    rows_a = make_records(3)
    # WHEN A writes
    with pytest.raises(WriteConflictError) as caught:
        store(s3).write(rows_a)
    # THEN A tried MAX_WRITE_ATTEMPTS conditional PUTs, all refused, and wrote nothing
    assert ops.count("PutObject", ".csv") == MAX_WRITE_ATTEMPTS, f"one part PUT per attempt: {ops.ops}"
    assert report_prefix(ACCOUNT_ID, RUN) in str(caught.value), f"error names the run prefix: {caught.value}"
    assert not set(keys(rows_a)) & set(all_rows(s3)), "A's rows must not be half-written"
    assert len(all_rows(s3)) == MAX_WRITE_ATTEMPTS, "every rival row is kept"


def test_conflict_below_the_limit_is_retried_to_success(s3: Any, other_s3: Any) -> None:
    # GIVEN a rival that commits after A's first 4 listings (A may try 5 times)
    rival = make_records(4, start=50)
    it = iter(rival)
    on_first(s3, "after-call.s3.ListObjectsV2", lambda: store(other_s3).write([next(it)]), times=len(rival))
    # WHEN A writes THEN it succeeds on its 5th attempt with every row once
    result = store(s3).write(make_records(2))
    assert result.conflicts == 4, result
    assert sorted(all_rows(s3)) == sorted(keys(rival) + keys(make_records(2))), "rival + A rows, once each"


def test_written_count_is_exact_when_a_conflict_interrupts_a_multi_part_write(s3: Any, other_s3: Any) -> None:
    """A write that commits part N, then loses the PUT of part N+1, must still report its own rows as written.

    Otherwise RecordsWritten under-counts and DuplicatesDropped over-counts (the retry sees the
    rows it committed itself in part N and calls them duplicates).
    """
    # GIVEN rows_per_file 3 and part 1 holding 2 rows
    store(s3, 3).write(make_records(2))
    rows_a = make_records(4, start=10)
    # AND a rival that creates part 2 right after A has topped up part 1
    on_first(s3, "after-call.s3.PutObject", lambda: store(other_s3, 3).write(make_records(1, start=90)))
    # WHEN A writes 4 rows (1 into part 1, 3 into a new part 2 that the rival takes first)
    result = store(s3, 3).write(rows_a)
    # THEN every row is stored once, and A reports 4 written, 0 duplicates
    rows = all_rows(s3)
    assert sorted(rows) == sorted(keys(make_records(2)) + keys(rows_a) + keys(make_records(1, start=90))), rows
    assert len(rows) == len(set(rows)), "no duplicate rows"
    assert (result.written, result.duplicates) == (4, 0), f"A wrote 4 new rows and saw no duplicates: {result}"


def test_new_part_number_follows_the_highest_part_not_the_part_count(s3: Any) -> None:
    """Parts are the truth: with part 2 gone (deleted by hand, or by a lifecycle rule), part 3 is still there.

    Numbering the next part len(parts) + 1 = 3 collides with part 3, whose If-None-Match PUT can
    never succeed, so every later batch of the run would end in the DLQ.
    """
    # GIVEN parts 1, 2, 3 full at 2 rows each, then part 2 deleted
    store(s3, 2).write(make_records(6))
    s3.delete_object(Bucket=BUCKET, Key=sorted(read_parts(s3))[1])
    # WHEN one more record is written
    result = store(s3, 2).write(make_records(1, start=7))
    # THEN it lands in a new part after part 3, and nothing else changes
    assert result.written == 1, result
    parts = read_parts(s3)
    assert [k.rsplit("-part", 1)[1] for k in parts] == ["00001.csv", "00003.csv", "00004.csv"], list(parts)
    assert list(parts.values())[-1] == keys(make_records(1, start=7)), "the new record alone in part 4"


# --------------------------------------------------------------------------- the index is only a cache


def test_lost_index_heals_on_the_next_write_without_duplicates(s3: Any) -> None:
    # GIVEN a run whose index was lost after its parts were committed (crash between the two writes)
    first = make_records(5)
    store(s3, 3).write(first)
    s3.delete_object(Bucket=BUCKET, Key=index_key(ACCOUNT_ID, RUN))
    # WHEN the same records are redelivered together with new ones
    more = make_records(3, start=6)
    result = store(s3, 3).write(first + more)
    # THEN the parts are re-read: old rows are duplicates, new ones appended once, and the index is rebuilt
    assert (result.written, result.duplicates) == (3, 5), result
    assert all_rows(s3) == keys(first + more), "each record exactly once"
    assert_index_matches_parts(s3)


def test_stale_index_heals_on_the_next_write_without_duplicates(s3: Any) -> None:
    # GIVEN an index that lags behind the parts (it misses part 2 and describes part 1 by an old ETag)
    batch1, batch2 = make_records(2), make_records(3, start=3)
    store(s3, 3).write(batch1)
    stale = s3.get_object(Bucket=BUCKET, Key=index_key(ACCOUNT_ID, RUN))["Body"].read()
    store(s3, 3).write(batch2)
    s3.put_object(Bucket=BUCKET, Key=index_key(ACCOUNT_ID, RUN), Body=stale)
    # WHEN batch 2 is redelivered with one new record
    batch3 = make_records(1, start=6)
    result = store(s3, 3).write(batch2 + batch3)
    # THEN no row is duplicated, the new one is appended, and the index is current again
    assert (result.written, result.duplicates) == (1, 3), result
    assert all_rows(s3) == keys(batch1 + batch2 + batch3), "each record exactly once"
    assert_index_matches_parts(s3)


def test_part_holding_a_135_kb_document_can_be_reread(s3: Any) -> None:
    """Real AWS-managed documents reach 135 KB; Python's csv reader refuses fields over 131072 chars by default.

    If the store cannot re-read such a part, every later write to the run fails once the index is stale.
    """
    # GIVEN a part holding a record with a 135,000-character document, and a lost index
    big = make_records(1)[0]
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "k" * 134_900}],
    }
    big = PolicyRecord(**{**big.__dict__, "document": document})
    store(s3).write([big])
    s3.delete_object(Bucket=BUCKET, Key=index_key(ACCOUNT_ID, RUN))
    # WHEN the next record is written (the part must be re-read)
    result = store(s3).write([big, *make_records(1, start=2)])
    # THEN it is appended and the big record is recognised as already there
    assert (result.written, result.duplicates) == (1, 1), result
    (part,) = [p for p in read_index(s3)["parts"]]  # checked without a csv reader of our own
    assert sorted(part["digests"]) == sorted(key_digest(r.key) for r in [big, *make_records(1, start=2)]), part
    text = s3.get_object(Bucket=BUCKET, Key=part["key"])["Body"].read().decode()
    assert text.count(big.key) == 1, "the big record's row exactly once"


# --------------------------------------------------------------------------- the seed's store


def test_seed_store_loses_rows_when_two_writers_interleave(s3: Any, other_s3: Any) -> None:
    """The lost update behind the seed's missing records: read, append, blind overwrite."""
    # GIVEN seed writer A has read the CSV, and seed writer B writes before A puts its copy back
    rows_a, rows_b = make_records(3), make_records(4, start=4)
    seed_a = SeedCsvStore(s3, BUCKET, ACCOUNT_ID, RUN)
    seed_b = SeedCsvStore(other_s3, BUCKET, ACCOUNT_ID, RUN)
    seed_a.write(make_records(1, start=100))
    on_first(s3, "after-call.s3.GetObject", lambda: seed_b.write(rows_b))
    # WHEN A appends to its stale copy and overwrites
    seed_a.write(rows_a)
    # THEN B's rows are gone, although both writers reported success
    text = s3.get_object(Bucket=BUCKET, Key=seed_csv_key(ACCOUNT_ID, RUN))["Body"].read().decode()
    stored = [row["record_key"] for row in csv.DictReader(io.StringIO(text))]
    lost = [k for k in keys(rows_b) if k not in stored]
    assert lost == keys(rows_b), f"the seed store's blind overwrite loses all of B's {len(rows_b)} rows: {stored}"
    assert stored == [make_records(1, start=100)[0].key, *keys(rows_a)], "only the earlier row and A's survive"
