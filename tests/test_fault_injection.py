"""The fault layer itself, against the real emulator: each action does what the fault table says.

Also the harness holes that faults exposed: the event source mapping checks the ``Failed`` list of
its batch calls, and what it could not settle is reported as in flight, never as lost.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.config import Config
from emulated import Deployment

from loadtest.emulator.apicalls import ApiCallCounter
from loadtest.emulator.esm import EventSourceMapping, MappingSettings
from loadtest.emulator.moto_server import ACCOUNT_ID
from loadtest.faults import FAULTS
from loadtest.faults.catalog import alarm_matches
from loadtest.faults.injection import Budget, FaultRule, injected_counts, install_rules
from loadtest.faults.rehearsal import UnknownFault, parse_fault_names
from loadtest.run.seeding import synthetic_records
from loadtest.run.tail import reconcile_run
from pipeline.dlq_messages import decode_message

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
FAULT_SECTION = README.split("## Fault rehearsal", 1)[1].split("\n## ", 1)[0]


def test_a_limited_rule_fires_that_often_across_every_process(tmp_path: Path) -> None:
    # GIVEN a budget of 2 shared by two "processes" (two Budget objects on one directory)
    first, second = Budget(tmp_path), Budget(tmp_path)
    # WHEN both claim 3 times THEN only 2 claims succeed in all, and the token files count them
    claims = [budget.claim("crash#0", 2) for budget in (first, second, first, second, first, second)]
    assert claims.count(True) == 2
    assert injected_counts(tmp_path) == {"crash": 2}


def test_an_http_fault_is_retried_by_the_sdk(deployment: Deployment) -> None:
    # GIVEN S3 answering 503 SlowDown to the first try of each PutObject
    s3 = deployment.aws._session.client(
        "s3", endpoint_url=deployment.aws.endpoint_url, config=Config(retries={"mode": "standard", "max_attempts": 3})
    )
    [rule] = install_rules(s3.meta.events, [FaultRule("s3.PutObject", "SlowDown", 503, action="http", attempt=1)])
    # WHEN a PutObject is made THEN it succeeds on botocore's retry, and the retry is visible in its metadata
    response = s3.put_object(Bucket=deployment.outputs.bucket_name, Key="k", Body=b"x")
    assert response["ResponseMetadata"]["RetryAttempts"] == 1 and rule.injected == 1


def test_an_error_fault_is_not_retried(deployment: Deployment) -> None:
    s3 = deployment.client("s3")
    [rule] = install_rules(s3.meta.events, [FaultRule("s3.GetObject", "AccessDenied", 403)])
    with pytest.raises(s3.exceptions.ClientError, match="AccessDenied"):
        s3.get_object(Bucket=deployment.outputs.bucket_name, Key="anything")
    rule.remove()


def test_failed_entries_are_reported_and_never_published(deployment: Deployment) -> None:
    # GIVEN every 3rd PublishBatch entry held back as a partial failure
    sns, sqs = deployment.client("sns"), deployment.client("sqs")
    rule = FaultRule("sns.PublishBatch", "InternalError", action="fail-entries", every=3)
    install_rules(sns.meta.events, [rule])
    entries = [{"Id": str(n), "Message": f"m{n}"} for n in range(9)]
    # WHEN a batch of 9 is published
    response = sns.publish_batch(TopicArn=deployment.outputs.topic_arn, PublishBatchRequestEntries=entries)
    # THEN 3 are in Failed and exactly the other 6 reach the queue
    assert sorted(f["Id"] for f in response["Failed"]) == ["2", "5", "8"]
    assert len(response["Successful"]) == 6
    got = sqs.receive_message(QueueUrl=deployment.outputs.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    assert sorted(m["Body"] for m in got["Messages"]) == sorted(f"m{n}" for n in range(9) if n % 3 != 2)


def test_a_skewed_clock_moves_time_and_datetime_but_not_the_monotonic_clock() -> None:
    code = (
        "import time, datetime, json, sys; sys.path.insert(0, 'loadtest/faults'); import injection;"
        "t0, d0, m0 = time.time(), datetime.datetime.now(datetime.UTC), time.monotonic();"
        "injection.skew_clock(420);"
        "print(json.dumps([time.time() - t0, (datetime.datetime.now(datetime.UTC) - d0).total_seconds(),"
        " time.monotonic() - m0]))"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True).stdout
    wall, dt, mono = json.loads(out)
    assert 419 < wall < 425 and 419 < dt < 425 and mono < 5, (wall, dt, mono)


def test_fault_names_parse_with_commas_all_and_errors() -> None:
    assert parse_fault_names(["poison,clock-skew"]) == ("clock-skew", "poison")
    assert parse_fault_names(["all"]) == tuple(FAULTS)
    with pytest.raises(UnknownFault, match="no-such-fault"):
        parse_fault_names(["no-such-fault"])


def test_alarm_names_match_without_prefix_or_severity() -> None:
    assert alarm_matches("reporter-errors", "cidb-loadtest-reporter-errors-critical")
    assert not alarm_matches("errors", "cidb-loadtest-reporter-errors-critical-x")
    assert not alarm_matches("reporter-errors", "cidb-loadtest-verifier-errors-warning")


def test_every_fault_is_in_the_readme_table_with_its_alarms() -> None:
    for fault in FAULTS.values():
        [line] = [row for row in FAULT_SECTION.splitlines() if row.startswith(f"| `{fault.name}` |")]
        for alarm in fault.alarms:
            assert alarm in line, f"README fault table: {fault.name} must name the alarm {alarm}"


def test_messages_sqs_refuses_to_settle_are_in_flight_not_lost(deployment: Deployment, tmp_path: Path) -> None:
    # GIVEN a record whose message the mapping cannot delete (SQS answers Failed for its receipt handle)
    [record] = synthetic_records(1, 3, run_id="run-unsettled", account_id=ACCOUNT_ID)
    esm = EventSourceMapping(
        deployment.client("sqs"),
        ApiCallCounter(),
        queue_url=deployment.outputs.queue_url,
        queue_arn=deployment.outputs.queue_arn,
        function=None,
        settings=MappingSettings(batch_size=10, window_seconds=0, max_concurrency=1, report_batch_item_failures=True),
    )
    stale = {"MessageId": "m-1", "ReceiptHandle": "not-a-receipt-handle", "Body": record.to_json()}
    # WHEN the mapping deletes it
    esm._delete([stale])
    # THEN the Failed entry is kept, with its body, and reconciliation calls the record in flight, not lost
    assert [f["message_id"] for f in esm.state.batch_failures] == ["m-1"], esm.state.batch_failures
    tail = reconcile_run(
        deployment.client("s3"),
        deployment.client("sqs"),
        deployment.outputs,
        account_id=ACCOUNT_ID,
        run_id="run-unsettled",
        expected_keys=[record.key],
        out_dir=tmp_path,
        consumers_stopped=True,
        timed_out=False,
        unsettled_bodies={mid: u["body"] for mid, u in esm.state.unsettled.items()},
    )
    reconciliation = tail.reconciliation
    assert (reconciliation.lost, reconciliation.in_flight, reconciliation.in_flight_keys) == (0, 1, [record.key])
    # AND forensics names its cause in-flight, not a loss, without reading the output's versions
    assert [(e.key, e.cause) for e in tail.forensics.explained] == [(record.key, "in-flight")]
    assert (tail.forensics.lost, tail.forensics.versions_listed) == (0, 0)


def test_corrupted_entries_keep_their_key_fields_and_fail_validation(deployment: Deployment) -> None:
    # GIVEN every 2nd PublishBatch entry damaged in transit
    sns, sqs = deployment.client("sns"), deployment.client("sqs")
    install_rules(sns.meta.events, [FaultRule("sns.PublishBatch", action="corrupt-entries", every=2, limit=1)])
    records = synthetic_records(4, 3, run_id="run-damaged", account_id=ACCOUNT_ID)
    entries = [{"Id": str(r.seq), "Message": r.to_json()} for r in records]
    # WHEN the batch is published
    response = sns.publish_batch(TopicArn=deployment.outputs.topic_arn, PublishBatchRequestEntries=entries)
    # THEN all four are delivered, and exactly one (the 2nd; the limit stops the 4th) no longer parses
    assert len(response["Successful"]) == 4 and not response.get("Failed")
    got = sqs.receive_message(QueueUrl=deployment.outputs.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    decoded = [decode_message(m) for m in got["Messages"]]
    damaged = [d for d in decoded if d.record is None]
    assert len(damaged) == 1 and "wrong type" in (damaged[0].error or "")
    assert damaged[0].claim is not None and damaged[0].claim.key == records[1].key
