"""The reporter handler end to end: SNS -> real SQS queue -> handler in-process -> S3 parts.

Events are built from real ReceiveMessage results (``loadtest.emulator.esm.to_lambda_record``), and
messages are deleted or left in flight exactly as the event source mapping would, so a
"crash" is simply an invocation whose messages are never deleted.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from emulated import Deployment, lambda_context

from loadtest.emulator.esm import to_lambda_record
from loadtest.emulator.moto_server import ACCOUNT_ID
from loadtest.faults.injection import FaultRule, install_rules
from loadtest.faults.lock_release import LOCK_RELEASE_FAILURES
from loadtest.run.seeding import synthetic_records
from pipeline import aws as pipeline_aws
from pipeline import reporter
from pipeline.compaction import compact
from pipeline.csv_store import MAX_WRITE_ATTEMPTS, FencedCsvStore
from pipeline.layout import index_key, report_prefix, segment_prefix
from pipeline.lock import EndpointFacts, S3Lock
from pipeline.record import CSV_COLUMNS, PolicyRecord, RecordError, key_digest, parse_message
from pipeline.settings import LockSettings, load_settings

RUN = "run-reporter"
HEADER = ",".join(CSV_COLUMNS)


class Crash(BaseException):
    """The Lambda process dying: not an Exception, so no handler code can catch it."""


def make_records(count: int, *, start: int = 1, run_id: str = RUN) -> list[PolicyRecord]:
    """Records exactly as the collector builds them (synthetic generator, real quoting cases)."""
    return synthetic_records(start - 1 + count, 9, run_id=run_id, account_id=ACCOUNT_ID)[start - 1 :]


def keys(records: list[PolicyRecord]) -> list[str]:
    return [r.key for r in records]


@pytest.fixture
def handler(deployment: Deployment, monkeypatch: pytest.MonkeyPatch) -> Callable[[list[dict]], dict]:
    """Invoke the reporter in-process with the SQS event Lambda would build from these messages."""
    if reporter.metrics.namespace is None:  # imported (by conftest) before the Lambda environment was set
        monkeypatch.setattr(reporter.metrics, "namespace", deployment.spec.metrics_namespace)

    def invoke(messages: list[dict[str, Any]]) -> dict[str, Any]:
        records = [to_lambda_record(m, deployment.outputs.queue_arn, deployment.aws.region) for m in messages]
        return reporter.handler({"Records": records}, lambda_context())

    return invoke


@pytest.fixture
def pipeline_hook(deployment: Deployment) -> Iterator[Callable[[str, str, Callable[..., None]], None]]:
    """Register a botocore hook on the handler's own cached client; removed after the test."""
    registered: list[tuple[Any, str, Callable[..., None]]] = []

    def register(service: str, event: str, fn: Callable[..., None]) -> None:
        client = pipeline_aws.client(service)
        client.meta.events.register(event, fn)
        registered.append((client, event, fn))

    yield register
    for client, event, fn in registered:
        client.meta.events.unregister(event, fn)


def publish(deployment: Deployment, bodies: list[str]) -> None:
    """Through the real topic (raw delivery) into the real queue."""
    sns = deployment.client("sns")
    for i in range(0, len(bodies), 10):
        entries = [{"Id": str(n), "Message": body} for n, body in enumerate(bodies[i : i + 10])]
        response = sns.publish_batch(TopicArn=deployment.outputs.topic_arn, PublishBatchRequestEntries=entries)
        assert not response.get("Failed"), response


def publish_records(deployment: Deployment, records: list[PolicyRecord]) -> None:
    publish(deployment, [r.to_json() for r in records])


def receive(deployment: Deployment, count: int) -> list[dict[str, Any]]:
    sqs, messages = deployment.client("sqs"), []
    while len(messages) < count:
        got = sqs.receive_message(
            QueueUrl=deployment.outputs.queue_url,
            MaxNumberOfMessages=min(10, count - len(messages)),
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not got:
            break
        messages += got
    assert len(messages) == count, f"expected {count} messages on the queue, received {len(messages)}"
    return messages


def settle(deployment: Deployment, messages: list[dict[str, Any]], response: dict[str, Any]) -> None:
    """What the event source mapping does after an invocation: delete all but the reported failures."""
    failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    for message in messages:
        if message["MessageId"] not in failed:
            deployment.client("sqs").delete_message(
                QueueUrl=deployment.outputs.queue_url, ReceiptHandle=message["ReceiptHandle"]
            )


def make_visible(deployment: Deployment, messages: list[dict[str, Any]]) -> None:
    """The visibility timeout of in-flight messages runs out, so SQS redelivers them."""
    for message in messages:
        deployment.client("sqs").change_message_visibility(
            QueueUrl=deployment.outputs.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )


def queue_depth(deployment: Deployment) -> int:
    attrs = deployment.client("sqs").get_queue_attributes(
        QueueUrl=deployment.outputs.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def read_parts(deployment: Deployment, run_id: str = RUN) -> dict[str, list[dict[str, str]]]:
    s3, bucket = deployment.client("s3"), deployment.outputs.bucket_name
    parts = {}
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=report_prefix(ACCOUNT_ID, run_id)).get("Contents", [])
    for obj in sorted(listing, key=lambda o: o["Key"]):
        if obj["Key"].endswith(".csv"):
            text = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode()
            assert text.split("\r\n", 1)[0] == HEADER, f"{obj['Key']} must start with the CSV header"
            parts[obj["Key"]] = list(csv.DictReader(io.StringIO(text)))
    return parts


def row_keys(deployment: Deployment, run_id: str = RUN) -> list[str]:
    return [row["record_key"] for rows in read_parts(deployment, run_id).values() for row in rows]


def ids(messages: list[dict[str, Any]]) -> set[str]:
    return {m["MessageId"] for m in messages}


def failed_ids(response: dict[str, Any]) -> set[str]:
    return {f["itemIdentifier"] for f in response["batchItemFailures"]}


# --------------------------------------------------------------------------- happy path and parts


def test_batch_is_written_once_per_record_with_row_content(deployment: Deployment, handler) -> None:
    # GIVEN 25 records on the queue (one ESM batch)
    records = make_records(25)
    publish_records(deployment, records)
    messages = receive(deployment, 25)
    # WHEN the reporter handles the batch
    response = handler(messages)
    # THEN no failures, and one row per record with the record's fields
    assert response == {"batchItemFailures": []}, response
    parts = read_parts(deployment)
    rows = [row for part in parts.values() for row in part]
    assert sorted(r["record_key"] for r in rows) == sorted(keys(records)), "one row per record"
    by_key = {r.key: r for r in records}
    for row in rows:
        record = by_key[row["record_key"]]
        assert row == record.to_row(), f"row of {record.policy_arn} must equal the record's CSV row"


def test_max_rows_per_file_splits_output_into_parts_with_headers(
    deployment: Deployment, handler, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN MAX_ROWS_PER_FILE=3 in the reporter's environment and 8 records
    monkeypatch.setenv("MAX_ROWS_PER_FILE", "3")
    records = make_records(8)
    publish_records(deployment, records)
    # WHEN handled
    response = handler(receive(deployment, 8))
    # THEN 3 parts of 3, 3, 2 rows, each with its own header (checked in read_parts)
    assert response["batchItemFailures"] == [], response
    parts = read_parts(deployment)
    assert [len(rows) for rows in parts.values()] == [3, 3, 2], f"rows per part: {list(parts)}"
    assert sorted(row_keys(deployment)) == sorted(keys(records)), "every record once across the parts"


# --------------------------------------------------------------------------- bad input


def test_malformed_records_get_a_partial_batch_response(deployment: Deployment, handler) -> None:
    # GIVEN 5 valid records, one body that is not JSON and one record missing policy.arn
    records = make_records(5)
    missing_arn = json.loads(make_records(1, start=50)[0].to_json())
    del missing_arn["policy"]["arn"]
    publish(deployment, [r.to_json() for r in records] + ["{not json", json.dumps(missing_arn)])
    messages = receive(deployment, 7)
    bad = {m["MessageId"] for m in messages if m["Body"] == "{not json" or '"arn"' not in m["Body"]}
    assert len(bad) == 2, "test setup: two bad messages"
    # WHEN the batch is handled
    response = handler(messages)
    # THEN exactly the two bad messages are reported, and the 5 good ones are written
    assert failed_ids(response) == bad, f"batchItemFailures must list exactly the bad message ids: {response}"
    assert sorted(row_keys(deployment)) == sorted(keys(records)), "the valid records are written"


def test_malformed_messages_come_back_at_once_and_valid_failures_later(deployment: Deployment, handler) -> None:
    # GIVEN a body that is not JSON and one whose text cannot be written as UTF-8 (a lone surrogate)
    surrogate = json.loads(make_records(1, start=60)[0].to_json())
    surrogate["policy"]["name"] = "\ud800"
    publish(deployment, ["{not json", json.dumps(surrogate)])
    messages = receive(deployment, 2)
    # WHEN the batch is handled
    response = handler(messages)
    # THEN both fail alone, and both are visible again at once (no backoff can mend them): they reach the
    # DLQ after maxReceiveCount quick receives instead of after the whole backoff
    assert failed_ids(response) == {m["MessageId"] for m in messages}
    again = deployment.client("sqs").receive_message(
        QueueUrl=deployment.outputs.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
    )
    assert {m["MessageId"] for m in again.get("Messages", [])} == failed_ids(response)
    assert row_keys(deployment) == [], "nothing was written"


def test_text_that_is_not_valid_utf8_is_a_record_error() -> None:
    body = json.loads(make_records(1)[0].to_json())
    body["policy"]["name"] = "\udcff"
    with pytest.raises(RecordError, match=r"policy\.name holds text that is not valid UTF-8"):
        parse_message(json.dumps(body))


# --------------------------------------------------------------------------- duplicates


def test_same_record_twice_in_a_batch_gives_one_row(deployment: Deployment, handler) -> None:
    # GIVEN a batch where SNS delivered one record twice (two messages, same record)
    records = make_records(4)
    publish_records(deployment, [*records, records[2]])
    messages = receive(deployment, 5)
    # WHEN handled
    response = handler(messages)
    # THEN both copies are acknowledged and there is one row per record
    assert response["batchItemFailures"] == [], "a duplicate is not a failure"
    assert sorted(row_keys(deployment)) == sorted(keys(records)), "the duplicate must not add a row"


def test_same_batch_delivered_twice_gives_one_row_each(deployment: Deployment, handler) -> None:
    # GIVEN a handled batch
    records = make_records(6)
    publish_records(deployment, records)
    messages = receive(deployment, 6)
    first = handler(messages)
    # WHEN the identical event is delivered again
    second = handler(messages)
    # THEN both invocations succeed and every record has one row
    assert first["batchItemFailures"] == [] and second["batchItemFailures"] == [], (first, second)
    assert sorted(row_keys(deployment)) == sorted(keys(records)), "one row per record after a repeated batch"


# --------------------------------------------------------------------------- crashes


def test_crash_after_write_before_delete_neither_duplicates_nor_loses(deployment: Deployment, handler) -> None:
    # GIVEN a batch the reporter wrote, but whose messages were never deleted (the instance died after the write)
    records = make_records(12)
    publish_records(deployment, records)
    crashed = receive(deployment, 12)
    handler(crashed)
    # WHEN the messages become visible again and are redelivered together with new ones
    make_visible(deployment, crashed)
    more = make_records(3, start=13)
    publish_records(deployment, more)
    redelivered = receive(deployment, 15)
    response = handler(redelivered)
    settle(deployment, redelivered, response)
    # THEN they were real redeliveries, every record has exactly one row, and the queue is empty
    receive_counts = sorted(int(m["Attributes"]["ApproximateReceiveCount"]) for m in redelivered)
    assert receive_counts == [1] * 3 + [2] * 12, f"12 redeliveries + 3 first deliveries: {receive_counts}"
    rows = row_keys(deployment)
    assert sorted(rows) == sorted(keys(records + more)), "complete"
    assert len(rows) == len(set(rows)), "unique"
    assert queue_depth(deployment) == 0, "every message was acknowledged"


def test_crash_between_part_write_and_index_write_heals_on_redelivery(
    deployment: Deployment, handler, pipeline_hook
) -> None:
    # GIVEN a run with an index, then an invocation that dies right after committing its part (before the index)
    first = make_records(4)
    publish_records(deployment, first)
    batch = receive(deployment, 4)
    settle(deployment, batch, handler(batch))

    def die_before_index_write(params: dict[str, Any], **_: Any) -> None:
        if params.get("Key", "").endswith("_index.json"):
            raise Crash("instance killed")

    pipeline_hook("s3", "before-parameter-build.s3.PutObject", die_before_index_write)
    second = make_records(5, start=5)
    publish_records(deployment, second)
    crashed = receive(deployment, 5)
    with pytest.raises(Crash):
        handler(crashed)
    s3, bucket = deployment.client("s3"), deployment.outputs.bucket_name
    index = json.loads(s3.get_object(Bucket=bucket, Key=index_key(ACCOUNT_ID, RUN))["Body"].read())
    assert sum(p["rows"] for p in index["parts"]) == 4, "test setup: the index is stale (misses the crashed rows)"
    assert len(row_keys(deployment)) == 9, "test setup: the crashed batch's rows are committed"
    # WHEN the instance is replaced and the crashed batch is redelivered with one new record
    pipeline_aws.client("s3").meta.events.unregister("before-parameter-build.s3.PutObject", die_before_index_write)
    make_visible(deployment, crashed)
    third = make_records(1, start=10)
    publish_records(deployment, third)
    redelivered = receive(deployment, 6)
    response = handler(redelivered)
    # THEN no duplicate rows, nothing lost, and the index describes every row again
    assert response["batchItemFailures"] == [], response
    rows = row_keys(deployment)
    assert sorted(rows) == sorted(keys(first + second + third)) and len(rows) == len(set(rows)), rows
    index = json.loads(s3.get_object(Bucket=bucket, Key=index_key(ACCOUNT_ID, RUN))["Body"].read())
    indexed = sorted(d for p in index["parts"] for d in p["digests"])
    assert indexed == sorted(key_digest(k) for k in rows), "the healed index lists every stored row"


# --------------------------------------------------------------------------- the lock is off the commit path


def segments(deployment: Deployment, run_id: str = RUN) -> list[str]:
    listing = deployment.client("s3").list_objects_v2(
        Bucket=deployment.outputs.bucket_name, Prefix=segment_prefix(ACCOUNT_ID, run_id)
    )
    return [o["Key"] for o in listing.get("Contents", [])]


def flush(deployment: Deployment, run_id: str = RUN, rows_per_file: int = 500) -> None:
    """The run's final compaction, as the last batch or the verifier does it."""
    store = FencedCsvStore(deployment.client("s3"), deployment.outputs.bucket_name, ACCOUNT_ID, run_id, rows_per_file)
    with S3Lock(store.s3, store.bucket, store.lock_target, LockSettings(), owner="test/flush").held():
        compact(store, flush=True)


def test_write_conflicts_in_compaction_leave_the_records_committed_in_their_segment(
    deployment: Deployment, handler, pipeline_hook
) -> None:
    # GIVEN a rival writer that commits a part right after every listing of parts the compaction makes
    bucket, rival_client = deployment.outputs.bucket_name, deployment.client("s3")
    rival = iter(make_records(MAX_WRITE_ATTEMPTS + 5, start=100))

    def rival_commits(params: dict[str, Any] | None = None, **_: Any) -> None:
        FencedCsvStore(rival_client, bucket, ACCOUNT_ID, RUN, 500).write([next(rival)])

    pipeline_hook("s3", "after-call.s3.ListObjectsV2", rival_commits)
    records = make_records(5)
    publish_records(deployment, records)
    messages = receive(deployment, 5)
    # WHEN the reporter commits the batch and its compaction loses every conditional part write
    response = handler(messages)
    # THEN every record is a success: it is committed in its segment, which stays for the next compaction
    assert response["batchItemFailures"] == [], response
    assert not set(keys(records)) & set(row_keys(deployment)), "no row reached a part"
    assert len(segments(deployment)) == 1
    # AND WHEN the contention is gone and the run is flushed THEN they are in the parts exactly once
    pipeline_aws.client("s3").meta.events.unregister("after-call.s3.ListObjectsV2", rival_commits)
    flush(deployment)
    rows = row_keys(deployment)
    assert set(keys(records)) <= set(rows) and len(rows) == len(set(rows)), rows
    assert segments(deployment) == [], "a folded segment is deleted"


def test_a_busy_lock_does_not_hold_up_the_commit(
    deployment: Deployment, handler, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN another invocation holds the run's lock, and the reporter may try twice with no backoff
    monkeypatch.setenv("LOCK_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("LOCK_BASE_BACKOFF_SECONDS", "0")
    bucket = deployment.outputs.bucket_name
    holder = S3Lock(deployment.client("s3"), bucket, index_key(ACCOUNT_ID, RUN), LockSettings(), owner="other/req")
    handle = holder.acquire()
    records = make_records(3)
    publish_records(deployment, records)
    messages = receive(deployment, 3)
    # WHEN the reporter handles the batch
    response = handler(messages)
    # THEN its records are committed (a segment) and succeed; the parts wait for the lock
    assert response["batchItemFailures"] == [], response
    assert row_keys(deployment) == [] and len(segments(deployment)) == 1
    holder.release(handle)
    flush(deployment)
    assert sorted(row_keys(deployment)) == sorted(keys(records))


def test_every_line_logged_while_a_group_is_written_names_its_run(
    deployment: Deployment, handler, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lock lines carry no run_id of their own; trace-run and stale-locks need it on them."""
    # GIVEN run B's lock held by someone else, so the reporter logs "lock busy" while it writes run B
    monkeypatch.setenv("LOCK_MAX_ATTEMPTS", "1")
    bucket, key = deployment.outputs.bucket_name, index_key(ACCOUNT_ID, "run-b")
    S3Lock(deployment.client("s3"), bucket, key, LockSettings(), owner="other/req").acquire()
    publish_records(deployment, make_records(2, run_id="run-a") + make_records(2, start=3, run_id="run-b"))
    messages = receive(deployment, 4)
    printed = io.StringIO()
    stream = reporter.logger.registered_handler.setStream(printed)  # what the function prints, as CloudWatch gets it
    # WHEN the reporter handles a batch of both runs
    try:
        handler(messages)
        reporter.logger.info("after the invocation")
    finally:
        reporter.logger.registered_handler.setStream(stream)
    lines = [json.loads(line) for line in printed.getvalue().splitlines()]
    # THEN every lock line names the run whose group was being written, and no line outside a group keeps it
    lock_lines = [line for line in lines if "lock_event" in line]
    assert lock_lines and {line.get("run_id") for line in lock_lines} <= {"run-a", "run-b"}, lock_lines
    assert any(line["message"] == "lock busy" and line["run_id"] == "run-b" for line in lock_lines), lock_lines
    assert "run_id" not in lines[-1], f"run_id outlived the group loop: {lines[-1]}"


def test_groups_of_different_runs_are_committed_independently(
    deployment: Deployment, handler, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN one batch with records of two runs, and run B's lock held by someone else
    holder = S3Lock(
        deployment.client("s3"),
        deployment.outputs.bucket_name,
        index_key(ACCOUNT_ID, "run-b"),
        LockSettings(),
        owner="other/req",
    )
    holder.acquire()
    run_a, run_b = make_records(3, run_id="run-a"), make_records(2, start=4, run_id="run-b")
    publish_records(deployment, run_a + run_b)
    messages = receive(deployment, 5)
    # WHEN handled, with a single lock attempt so run B's compaction gives up at once
    monkeypatch.setenv("LOCK_MAX_ATTEMPTS", "1")
    response = handler(messages)
    # THEN both groups are committed; run A reaches its parts, run B's segment waits for its lock
    assert response["batchItemFailures"] == [], response
    assert sorted(row_keys(deployment, "run-a")) == sorted(keys(run_a)), "run A written despite run B's lock"
    assert row_keys(deployment, "run-b") == [] and len(segments(deployment, "run-b")) == 1


def test_a_failed_segment_write_returns_the_group_with_a_short_visibility(
    deployment: Deployment, handler, inject, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN S3 refusing the segment write, and a first retry delay of 2 s (tuned: 20 s)
    monkeypatch.setenv("RETRY_BASE_SECONDS", "2")
    inject("s3", FaultRule("s3.PutObject", "SlowDown", 503))
    records = make_records(3)
    publish_records(deployment, records)
    messages = receive(deployment, 3)
    # WHEN the reporter handles the batch
    started = time.monotonic()
    response = handler(messages)
    # THEN the group is returned, and comes back after the short first retry delay (2 s), not the 5430 s timeout
    assert failed_ids(response) == ids(messages), response
    assert queue_depth(deployment) == 3
    back = receive_within(deployment, 3, seconds=10)
    waited = time.monotonic() - started
    assert ids(back) == ids(messages) and 1.5 <= waited < 10, f"came back after {waited:.1f} s"


def receive_within(deployment: Deployment, count: int, *, seconds: float) -> list[dict[str, Any]]:
    sqs, messages, deadline = deployment.client("sqs"), [], time.monotonic() + seconds
    while len(messages) < count and time.monotonic() < deadline:
        messages += sqs.receive_message(
            QueueUrl=deployment.outputs.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=["All"]
        ).get("Messages", [])
    return messages


def test_retry_delay_grows_with_each_receive_up_to_the_cap() -> None:
    settings = load_settings(
        {"CIDB_BUCKET": "b-bucket", "CIDB_RUN_TABLE": "runs", "RETRY_BASE_SECONDS": "2", "RETRY_MAX_SECONDS": "20"},
        need_bucket=True,
        need_topic=False,
    )
    assert [reporter.retry_delay_seconds(settings, n) for n in (1, 2, 3, 4, 5)] == [2, 4, 8, 16, 20]


# --------------------------------------------------------------------------- after the commit point


@pytest.fixture
def inject(deployment: Deployment) -> Iterator[Callable[[str, FaultRule], None]]:
    """Fail calls of the handler's own cached client with an API error, between the handler and the endpoint."""
    installed: list[Any] = []

    def install(service: str, rule: FaultRule) -> None:
        installed.extend(install_rules(pipeline_aws.client(service).meta.events, [rule]))

    yield install
    for injector in installed:
        injector.remove()
    EndpointFacts.conditional_delete = True


@pytest.mark.parametrize(
    "rule",
    [
        LOCK_RELEASE_FAILURES["AccessDenied"],
        LOCK_RELEASE_FAILURES["503"],
        LOCK_RELEASE_FAILURES["412"],
        LOCK_RELEASE_FAILURES["501"],
        FaultRule("s3.PutObject", "AccessDenied", 403, key_suffix="_index.json"),
        FaultRule("s3.PutObject", "SlowDown", 503, key_suffix="_index.json"),
    ],
    ids=["release-403", "release-503", "release-412", "release-501", "index-403", "index-503"],
)
def test_a_failure_after_the_commit_never_returns_committed_records(
    deployment: Deployment, handler, inject, rule: FaultRule
) -> None:
    # GIVEN the lock release or the index write fails after the part write committed
    inject("s3", rule)
    records = make_records(4)
    publish_records(deployment, records)
    messages = receive(deployment, 4)
    # WHEN the reporter handles the batch
    response = handler(messages)
    # THEN every record is a success (its message is deleted) and written once
    assert response["batchItemFailures"] == [], f"{rule.operation} {rule.code} must not fail committed records"
    assert sorted(row_keys(deployment)) == sorted(keys(records))


def test_a_failed_run_record_update_never_returns_committed_records(deployment: Deployment, handler, inject) -> None:
    inject("dynamodb", FaultRule("dynamodb.UpdateItem", "AccessDeniedException", 400))
    records = make_records(3)
    publish_records(deployment, records)
    response = handler(receive(deployment, 3))
    assert response["batchItemFailures"] == [], "the run record's count is telemetry; the rows are committed"
    assert sorted(row_keys(deployment)) == sorted(keys(records))


def test_a_compaction_that_stops_part_way_keeps_the_segment_and_finishes_later(
    deployment: Deployment, handler, inject, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN parts of 3 rows, and S3 refusing the second part of a 5-record flush
    monkeypatch.setenv("MAX_ROWS_PER_FILE", "3")
    inject("s3", FaultRule("s3.PutObject", "SlowDown", 503, key_suffix="-part00002.csv"))
    records = make_records(5)
    publish_records(deployment, records)
    # WHEN handled
    response = handler(receive(deployment, 5))
    # THEN all five are committed; three reached part 1 and the segment stays for the rest
    assert response["batchItemFailures"] == [], response
    assert len(row_keys(deployment)) == 3 and len(segments(deployment)) == 1
    # AND the next flush, with S3 healthy again, writes the other two once and deletes the segment
    flush(deployment, rows_per_file=3)
    assert sorted(row_keys(deployment)) == sorted(keys(records))
    assert segments(deployment) == []
