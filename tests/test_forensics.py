"""Loss forensics: every expected record missing from the output gets exactly one cause, with its evidence.

The explanations run against a real moto server (S3 versions, publish results) with evidence
built the way the pipeline leaves it; the load-test cases run whole runs. The seed run's lost
updates are checked against S3 itself in ``test_ops.py``, where the emulator outlives the run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from loadtest.faults.injection import FaultRule, install_rules
from loadtest.run.job import run_loadtest
from loadtest.run.options import LoadTestOptions
from loadtest.run.seeding import synthetic_records
from ops.forensics import Cause, RunEvidence, explain
from ops.forensics.explain import NO_PUBLISH_RESULTS
from ops.forensics.log_evidence import REJECTED_MESSAGE, LogEvidence
from pipeline.csv_store import rows_to_csv
from pipeline.dlq_messages import decode_message
from pipeline.layout import seed_csv_key
from pipeline.publish_results import write_publish_results
from pipeline.publisher import PublishResult
from pipeline.record import PolicyRecord, claim_of
from pipeline.reporter import WRITE_FAILED
from pipeline.writer_metadata import NOTHING_READ, WriterStamp

ACCOUNT, RUN = "123456789012", "run-forensics"


@pytest.fixture
def records() -> list[PolicyRecord]:
    return synthetic_records(6, 11, run_id=RUN, account_id=ACCOUNT)


def evidence(deployment: Any, records: list[PolicyRecord], **extra: Any) -> RunEvidence:
    return RunEvidence(
        run_id=RUN,
        account_id=ACCOUNT,
        expected=[r.key for r in records],
        s3=deployment.client("s3"),
        bucket=deployment.outputs.bucket_name,
        dlq=extra.pop("dlq", []),
        **extra,
    )


def published(deployment: Any, records: list[PolicyRecord], given_up: dict[str, str] | None = None) -> None:
    result = PublishResult(published=len(records) - len(given_up or {}), given_up=list(given_up or {}))
    result.reasons.update(given_up or {})
    write_publish_results(deployment.client("s3"), deployment.outputs.bucket_name, RUN, len(records), result)


def put_version(deployment: Any, body: str, stamp: WriterStamp | None) -> str:
    response = deployment.client("s3").put_object(
        Bucket=deployment.outputs.bucket_name,
        Key=seed_csv_key(ACCOUNT, RUN),
        Body=body.encode(),
        Metadata=stamp.to_metadata() if stamp else {},
    )
    return response["VersionId"]


def csv_of(records: list[PolicyRecord], *, header: bool = True) -> str:
    return rows_to_csv([r.to_row() for r in records], header=header)


def test_a_lost_update_is_named_with_the_version_that_held_it_and_the_writer_that_dropped_it(
    deployment: Any, records: list[PolicyRecord]
) -> None:
    # GIVEN writers A and B that both read the CSV before it existed, and C that appended to B's version
    r1, r2, r3 = records[:3]
    v1 = put_version(deployment, csv_of([r1]), WriterStamp("reporter/A", NOTHING_READ, 0, 1000, 1001))
    v2 = put_version(deployment, csv_of([r2]), WriterStamp("reporter/B", NOTHING_READ, 0, 1000, 1002))
    base = csv_of([r2])
    put_version(deployment, base + csv_of([r3], header=False), WriterStamp("reporter/C", v2, len(base), 1003, 1004))
    published(deployment, records[:3])
    # WHEN forensics explains the one record missing from the output
    found = explain([r1.key], evidence(deployment, records[:3]))
    # THEN it was overwritten: held in A's version, gone from B's, which had read nothing
    [record] = found.explained
    assert (record.cause, record.seq, found.lost, found.versions_listed) == (Cause.OVERWRITTEN, 1, 1, 3)
    held, dropped = record.evidence["held_in"], record.evidence["dropped_by"]
    assert (held["version_id"], held["writer"]) == (v1, "reporter/A")
    assert (dropped["version_id"], dropped["writer"], dropped["read_version"]) == (v2, "reporter/B", NOTHING_READ)
    assert "reporter/B" in record.detail and "before it existed" in record.detail
    # AND the timeline has B's write dropping A's version, and A's row lost
    cycles = {c.writer: c for c in found.writers}
    assert cycles["reporter/B"].dropped_versions == (v1,) and cycles["reporter/A"].rows_lost == 1
    assert "reporter/C" not in cycles, "C lost nothing and dropped nothing"


def test_a_version_without_a_stamp_is_read_whole(deployment: Any, records: list[PolicyRecord]) -> None:
    r1, r2 = records[:2]
    put_version(deployment, csv_of([r1, r2]), None)
    put_version(deployment, csv_of([r2]), None)
    published(deployment, records[:2])
    [record] = explain([r1.key], evidence(deployment, records[:2])).explained
    assert record.cause == Cause.OVERWRITTEN and record.evidence["dropped_by"]["writer"] is None


def test_never_published_records_name_the_collectors_reason_or_its_missing_results(
    deployment: Any, records: list[PolicyRecord]
) -> None:
    # GIVEN no publish results at all: the collector never finished
    found = explain([records[0].key], evidence(deployment, records))
    assert [(r.cause, r.detail) for r in found.explained] == [(Cause.NEVER_PUBLISHED, NO_PUBLISH_RESULTS)]
    # GIVEN results naming seq 2 as given up
    published(deployment, records, {"2": "InvalidParameter: too big (attempt 1)"})
    found = explain([records[1].key, records[2].key], evidence(deployment, records))
    causes = {r.seq: (r.cause, r.detail) for r in found.explained}
    assert causes[2] == (Cause.NEVER_PUBLISHED, "the collector gave up: InvalidParameter: too big (attempt 1)")
    # AND a published record found nowhere is unknown: a hole the suite must never see
    assert causes[3][0] == Cause.UNKNOWN and found.lost == 2


def test_a_rejection_in_the_logs_names_the_reason(deployment: Any, records: list[PolicyRecord]) -> None:
    published(deployment, records)
    line = {"message": REJECTED_MESSAGE, "trace_id": records[3].trace_id, "reason": "account not in scope"}
    found = explain([records[3].key], evidence(deployment, records, logs=lambda: [line]))
    [record] = found.explained
    assert record.cause == Cause.REJECTED and "account not in scope" in record.detail
    assert found.log_lines_read == 1


def test_a_record_in_the_dlq_gets_its_receive_count_and_the_reporters_last_error(
    deployment: Any, records: list[PolicyRecord]
) -> None:
    record = records[4]
    message = decode_message(
        {"MessageId": "m-9", "Body": record.to_json(), "Attributes": {"ApproximateReceiveCount": "5"}}
    )
    failure = {
        "level": "ERROR",
        "message": WRITE_FAILED,
        "trace_ids": [record.trace_id],
        "exception": "Traceback ...\nbotocore.exceptions.ClientError: SlowDown",
        "function_request_id": "req-7",
        "timestamp": "2026-12-01 10:00:00,000+0000",
    }
    found = explain([record.key], evidence(deployment, records, dlq=[message], logs=lambda: [failure]))
    [explained] = found.explained
    assert (explained.cause, explained.evidence["receive_count"], found.lost) == (Cause.DLQ, 5, 0)
    assert "ClientError: SlowDown" in explained.detail and "req-7" in explained.detail

    # AND without the log group, the DLQ evidence still stands and says where the error is
    def denied() -> list[dict[str, Any]]:
        raise PermissionError("AccessDeniedException: logs:FilterLogEvents")

    found = explain([record.key], evidence(deployment, records, dlq=[message], logs=denied))
    assert found.explained[0].cause == Cause.DLQ and not found.logs_available and "AccessDenied" in found.logs_error


def test_queued_in_flight_and_committed_records_are_not_lost_and_list_no_versions(
    deployment: Any, records: list[PolicyRecord]
) -> None:
    keys = [r.key for r in records]
    found = explain(keys[:3], evidence(deployment, records, queued=[keys[0]], in_flight=[keys[1]], committed=[keys[2]]))
    assert [r.cause for r in found.explained] == [Cause.QUEUED, Cause.IN_FLIGHT, Cause.COMMITTED]
    assert (found.lost, found.versions_listed) == (0, 0)


def test_log_evidence_finds_the_failure_of_the_invocation_that_last_received_a_record() -> None:
    received = {"message": "record received", "trace_id": "t1", "function_request_id": "r1", "timestamp": "1"}
    timeout = {"level": "ERROR", "message": "Task timed out", "function_request_id": "r1", "timestamp": "2"}
    assert LogEvidence([received, timeout]).last_failure("t1") == "Task timed out [request r1, 2]"
    assert "timed out or was killed" in (LogEvidence([received]).last_failure("t1") or "")
    assert LogEvidence([]).last_failure("t1") is None


def test_a_run_cut_off_with_messages_in_flight_names_them_in_flight_not_lost(tmp_path: Path) -> None:
    # GIVEN a run whose first segment write exhausts its retries (the records go back to the queue for the
    # reporter's 20 s retry delay), cut off by a 12 s deadline that does not wait for them to come back
    options = LoadTestOptions(
        policies=40, faults=("s3-conflict",), deadline_seconds=12, settle_seconds=0, idle_seconds=1, out=tmp_path
    )
    summary = run_loadtest(options).summary
    forensics = summary["forensics"]
    # THEN the records still invisible are in flight, not lost, and every record is accounted for
    assert summary["timed_out"] and forensics["by_cause"]["in-flight"] > 0, forensics["by_cause"]
    assert (summary["lost"], forensics["lost"], forensics["by_cause"]["unknown"]) == (0, 0, 0)
    accounted = summary["unique_rows"] + sum(forensics["by_cause"].values())
    assert accounted == 40, forensics["by_cause"]
    assert json.loads((tmp_path / "summary.json").read_text())["forensics"]["by_cause"] == forensics["by_cause"]


def test_evidence_that_aws_refuses_is_named_and_proves_nothing(deployment: Any, records: list[PolicyRecord]) -> None:
    # GIVEN an operator who may not list object versions
    s3 = deployment.client("s3")
    install_rules(s3.meta.events, [FaultRule("s3.ListObjectVersions", "AccessDenied", 403)])
    published(deployment, records)
    # WHEN a missing record needs them
    found = explain([records[0].key], evidence(deployment, records))
    # THEN forensics still answers, names what it could not read, and claims no cause it cannot prove
    [record] = found.explained
    assert record.cause == Cause.UNKNOWN and "could not be read" in record.detail
    assert len(found.unreadable) == 1 and "AccessDenied" in found.unreadable[0]


def test_a_damaged_body_whose_key_is_not_utf8_names_no_record() -> None:
    body = json.dumps(
        {"run_id": RUN, "account_id": ACCOUNT, "trace_id": "\ud800", "policy": {"arn": "a", "version_id": "v"}}
    )
    assert claim_of(body) is None
    assert claim_of(body.replace("\\ud800", "t-1")) is not None
