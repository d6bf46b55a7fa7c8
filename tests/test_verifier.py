"""The verifier reconciles a run against what S3 really holds.

Each test runs the real pipeline in-process: the collector (synthetic source) records the run
and publishes to the real topic, the reporter handles what the real queue delivers, and the
verifier reads the CSV parts back. Its verdict is checked in its response, in the run table,
and in the EMF metrics it prints (RunShortfall drives the data-loss alarm).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from emulated import Deployment, lambda_context

from loadtest.emulator.esm import to_lambda_record
from loadtest.emulator.moto_server import ACCOUNT_ID
from loadtest.faults.injection import FaultRule, install_rules
from pipeline import aws as pipeline_aws
from pipeline import collector, reporter, run_store, verifier
from pipeline.layout import report_prefix
from pipeline.record import PolicyRecord

RUN = "run-verify"


@pytest.fixture
def pipeline(deployment: Deployment, monkeypatch: pytest.MonkeyPatch) -> Deployment:
    for module in (collector, reporter, verifier):
        if module.metrics.namespace is None:  # imported before the Lambda environment was set
            monkeypatch.setattr(module.metrics, "namespace", deployment.spec.metrics_namespace)
    return deployment


def collect(count: int, run_id: str = RUN) -> None:
    collector.handler({"source": "synthetic", "count": count, "seed": 4, "run_id": run_id}, lambda_context())


def receive(deployment: Deployment, count: int) -> list[dict[str, Any]]:
    sqs, messages = deployment.client("sqs"), []
    while len(messages) < count:
        got = sqs.receive_message(
            QueueUrl=deployment.outputs.queue_url, MaxNumberOfMessages=min(10, count - len(messages))
        ).get("Messages", [])
        if not got:
            break
        messages += got
    assert len(messages) == count, f"expected {count} messages, got {len(messages)}"
    return messages


def report(deployment: Deployment, messages: list[dict[str, Any]]) -> None:
    event = {"Records": [to_lambda_record(m, deployment.outputs.queue_arn, deployment.aws.region) for m in messages]}
    response = reporter.handler(event, lambda_context())
    assert response["batchItemFailures"] == [], response


def verify(run_id: str = RUN, **event: Any) -> dict[str, Any]:
    return verifier.handler({"run_id": run_id, "force": True, **event}, lambda_context())


def status(deployment: Deployment, run_id: str = RUN) -> dict[str, Any]:
    return deployment.client("dynamodb").get_item(
        TableName=deployment.outputs.run_table_name, Key={"run_id": {"S": run_id}}
    )["Item"]


def emf(out: str, name: str) -> list[float]:
    values: list[float] = []
    for line in out.splitlines():
        try:
            blob = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(blob, dict) and "_aws" in blob and name in blob:
            values += blob[name] if isinstance(blob[name], list) else [blob[name]]
    return values


def parts(deployment: Deployment, run_id: str = RUN) -> list[str]:
    listing = deployment.client("s3").list_objects_v2(
        Bucket=deployment.outputs.bucket_name, Prefix=report_prefix(ACCOUNT_ID, run_id)
    )
    return sorted(o["Key"] for o in listing.get("Contents", []) if o["Key"].endswith(".csv"))


def test_complete_run_has_zero_shortfall(pipeline: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a run of 12 records, all delivered and written
    collect(12)
    report(pipeline, receive(pipeline, 12))
    capsys.readouterr()
    # WHEN the verifier reconciles it
    outcome = verify()["verified"][0]
    # THEN nothing is missing, the run is marked complete, and RunShortfall is 0
    assert (outcome["expected"], outcome["written"], outcome["missing"]) == (12, 12, 0), outcome
    assert status(pipeline)["status"]["S"] == run_store.STATUS_COMPLETE, "run record status"
    out = capsys.readouterr().out
    assert emf(out, "RunShortfall") == [0], "RunShortfall metric"
    assert emf(out, "RunWritten") == [12] and emf(out, "RunExpected") == [12], "RunWritten / RunExpected metrics"


def test_deleted_part_gives_a_shortfall_of_its_rows(
    pipeline: Deployment, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a complete run in parts of 5 rows, and then part 2 is deleted
    monkeypatch.setenv("MAX_ROWS_PER_FILE", "5")
    collect(12)
    report(pipeline, receive(pipeline, 12))
    assert len(parts(pipeline)) == 3, "test setup: parts of 5, 5, 2 rows"
    s3, bucket = pipeline.client("s3"), pipeline.outputs.bucket_name
    lost_text = s3.get_object(Bucket=bucket, Key=parts(pipeline)[1])["Body"].read().decode()
    s3.delete_object(Bucket=bucket, Key=parts(pipeline)[1])
    capsys.readouterr()
    # WHEN the verifier reconciles it
    outcome = verify()["verified"][0]
    # THEN the shortfall equals the rows of the deleted part, the run is short, and RunShortfall says so
    assert (outcome["written"], outcome["missing"]) == (7, 5), outcome
    assert all(key in lost_text for key in outcome["missing_sample"]), "the missing keys are the deleted part's"
    assert status(pipeline)["status"]["S"] == run_store.STATUS_SHORT, "run record status"
    assert status(pipeline)["verified_missing"]["N"] == "5", "verified_missing in the run record"
    assert emf(capsys.readouterr().out, "RunShortfall") == [5], "RunShortfall metric"


def test_records_never_written_are_missing_until_they_arrive(pipeline: Deployment) -> None:
    # GIVEN a run of 12 where only 8 records were written (4 still in the queue or the DLQ)
    collect(12)
    messages = receive(pipeline, 12)
    report(pipeline, messages[:8])
    # WHEN verified THEN 4 are missing and the run is short
    first = verify()["verified"][0]
    assert (first["written"], first["missing"]) == (8, 4), first
    assert status(pipeline)["status"]["S"] == run_store.STATUS_SHORT, "short while records are outstanding"
    # AND WHEN the other 4 are written (e.g. after a DLQ redrive) and the run is re-checked
    report(pipeline, messages[8:])
    again = verify()["verified"][0]
    # THEN the run is complete
    assert (again["written"], again["missing"]) == (12, 0), again
    assert status(pipeline)["status"]["S"] == run_store.STATUS_COMPLETE, "complete after the redrive"


def test_duplicate_rows_do_not_hide_a_missing_record(pipeline: Deployment) -> None:
    # GIVEN 3 of 4 records written, and a copy of one row pasted into an extra CSV (4 rows in total)
    collect(4)
    messages = receive(pipeline, 4)
    report(pipeline, messages[:3])
    verify()  # the verifier flushes the run's segments into parts before it checks the run
    s3, bucket = pipeline.client("s3"), pipeline.outputs.bucket_name
    text = s3.get_object(Bucket=bucket, Key=parts(pipeline)[0])["Body"].read().decode()
    header, first_row = text.split("\r\n")[:2]
    s3.put_object(Bucket=bucket, Key=f"{report_prefix(ACCOUNT_ID, RUN)}copy.csv", Body=f"{header}\r\n{first_row}\r\n")
    # WHEN verified THEN the row count is not taken for completeness: one is missing, one duplicated
    outcome = verify()["verified"][0]
    assert (outcome["written"], outcome["missing"], outcome["duplicates"]) == (3, 1, 1), outcome


def test_scheduled_run_waits_for_the_grace_period(pipeline: Deployment, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a complete run that has just started
    collect(3)
    report(pipeline, receive(pipeline, 3))
    # WHEN the schedule fires within the grace period THEN the run is not judged yet
    assert verifier.handler({}, lambda_context())["verified"] == [], "a young run must not be verified"
    # WHEN the grace period has passed THEN it is verified once, and not again after it is complete
    monkeypatch.setenv("RUN_GRACE_SECONDS", "0")
    assert [v["run_id"] for v in verifier.handler({}, lambda_context())["verified"]] == [RUN], "verified once"
    assert verifier.handler({}, lambda_context())["verified"] == [], "a complete run is not re-verified"


@pytest.mark.filterwarnings("ignore:No application metrics")
def test_unknown_run_id_is_named(pipeline: Deployment) -> None:
    with pytest.raises(ValueError, match="'no-such-run'"):
        verify("no-such-run")


def test_run_holding_a_135_kb_policy_document_is_verified(pipeline: Deployment) -> None:
    """Real AWS-managed documents reach 135 KB (see ARCHITECTURE.md); the synthetic giants too.

    Python's csv module refuses fields over 131072 characters unless csv.field_size_limit is
    raised, so reading such a part back must not fail.
    """
    # GIVEN a run whose one record has a 135,000-character document, written by the reporter
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/" + "k" * 134_900}],
    }
    record = PolicyRecord(
        run_id=RUN,
        seq=1,
        total=1,
        trace_id="trace-big",
        account_id=ACCOUNT_ID,
        policy_name="big",
        policy_arn=f"arn:aws:iam::{ACCOUNT_ID}:policy/big",
        policy_id="ANPABIGBIGBIGBIGBIGBI",
        version_id="v1",
        aws_managed=True,
        attachment_count=1,
        create_date="",
        update_date="",
        document=document,
    )
    run_store.start_run(
        pipeline.client("dynamodb"),
        pipeline.client("s3"),
        table=pipeline.outputs.run_table_name,
        bucket=pipeline.outputs.bucket_name,
        run_id=RUN,
        account_id=ACCOUNT_ID,
        source="iam",
        keys=[record.key],
    )
    pipeline.client("sns").publish(TopicArn=pipeline.outputs.topic_arn, Message=record.to_json())
    report(pipeline, receive(pipeline, 1))
    # WHEN verified THEN the record is found
    outcome = verify()["verified"][0]
    assert (outcome["written"], outcome["missing"]) == (1, 0), outcome


def test_a_failed_flush_still_lets_the_run_be_checked(pipeline: Deployment) -> None:
    # GIVEN 3 of 3 records committed in segments, and S3 refusing every part write of the verifier's flush
    collect(3)
    messages = receive(pipeline, 3)
    s3 = pipeline_aws.client("s3")
    [injector] = install_rules(
        s3.meta.events, [FaultRule("s3.PutObject", "SlowDown", 503, key_suffix="-part00001.csv")]
    )
    try:
        report(pipeline, messages[:2])  # not the last batch: no flush yet
        # WHEN the verifier runs
        outcome = verify()["verified"][0]
    finally:
        injector.remove()
    # THEN the check still runs and reports what is not in the parts, instead of the invocation failing
    assert (outcome["written"], outcome["missing"]) == (0, 3), outcome


def test_an_expected_key_list_changed_after_the_collector_wrote_it_is_refused(pipeline: Deployment) -> None:
    # GIVEN a run whose expected-keys object in S3 lost one key after the collector recorded the run
    collect(3)
    run = run_store.get_run(pipeline.client("dynamodb"), table=pipeline.outputs.run_table_name, run_id=RUN)
    s3, bucket = pipeline.client("s3"), pipeline.outputs.bucket_name
    keys = json.loads(s3.get_object(Bucket=bucket, Key=run.expected_keys_key)["Body"].read())
    s3.put_object(Bucket=bucket, Key=run.expected_keys_key, Body=json.dumps(keys[1:]).encode())
    # WHEN verified THEN it refuses to judge the run against a list that is not the recorded one
    with pytest.raises(RuntimeError, match="keys_digest"):
        verify()
