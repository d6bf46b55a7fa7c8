"""Publishing to SNS: partial failures re-published, batch limits kept, oversize records offloaded.

SNS faults are injected on a real boto3 client talking to moto: a ``before-parameter-build``
hook removes some entries from the request (so SNS really never receives them) and an
``after-call`` hook reports them in ``Failed``, as SNS does when it fails individual entries.
Every record's fate is then checked where it matters: in the real SQS queue.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from emulated import Deployment, lambda_context

from loadtest.emulator.esm import to_lambda_record
from loadtest.emulator.moto_server import ACCOUNT_ID
from pipeline import aws as pipeline_aws
from pipeline import collector, reporter
from pipeline.layout import OVERSIZE_PREFIX, report_prefix
from pipeline.publisher import BatchPublisher, PublishIncomplete
from pipeline.record import PolicyRecord
from pipeline.spec import SNS_BATCH_ENTRIES, SNS_MESSAGE_LIMIT_BYTES

KIB = 1024


def make_record(seq: int, *, document_bytes: int = 0, run_id: str = "run-pub") -> PolicyRecord:
    """A record whose minified document is about ``document_bytes`` long (small when 0)."""
    resource = "arn:aws:s3:::cidb-bucket/" + "k" * max(0, document_bytes - 120)
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [resource]}],
    }
    return PolicyRecord(
        run_id=run_id,
        seq=seq,
        total=0,
        trace_id=f"trace-{seq}",
        account_id=ACCOUNT_ID,
        policy_name=f"policy-{seq}",
        policy_arn=f"arn:aws:iam::{ACCOUNT_ID}:policy/test/policy-{seq}",
        policy_id=f"ANPA{seq:017d}",
        version_id="v1",
        aws_managed=False,
        attachment_count=0,
        create_date="2024-01-01T00:00:00+00:00",
        update_date="2024-01-01T00:00:00+00:00",
        document=document,
    )


def sns_bytes(entry: dict[str, Any]) -> int:
    """What SNS counts toward its 256 KiB limits, computed here independently of the publisher."""
    size = len(entry["Message"].encode("utf-8"))
    for name, attr in entry.get("MessageAttributes", {}).items():
        size += len(name.encode()) + len(attr["DataType"].encode()) + len(attr.get("StringValue", "").encode())
    return size


class PublishCalls:
    """Every PublishBatch request a client sends (after any fault hook), in order."""

    def __init__(self, client: Any) -> None:
        self.requests: list[list[dict[str, Any]]] = []
        client.meta.events.register("before-call.sns.PublishBatch", self._record)
        self._client = client

    def _record(self, params: dict[str, Any], **_: Any) -> None:
        body = params["body"]  # the serialized query-protocol request that goes on the wire
        entries: dict[str, dict[str, Any]] = {}
        for field, value in body.items():
            if field.startswith("PublishBatchRequestEntries.member."):
                number, rest = field.removeprefix("PublishBatchRequestEntries.member.").split(".", 1)
                entries.setdefault(number, {"MessageAttributes": {}})
                if rest in ("Id", "Message"):
                    entries[number][rest] = value
                elif rest.startswith("MessageAttributes.entry."):
                    n, part = rest.removeprefix("MessageAttributes.entry.").split(".", 1)
                    attr = entries[number]["MessageAttributes"].setdefault(n, {})
                    attr[part] = value
        for entry in entries.values():
            entry["MessageAttributes"] = {
                a["Name"]: {"DataType": a["Value.DataType"], "StringValue": a["Value.StringValue"]}
                for a in entry["MessageAttributes"].values()
            }
        self.requests.append(list(entries.values()))

    def ids(self, call: int) -> list[str]:
        return [e["Id"] for e in self.requests[call]]

    def close(self) -> None:
        self._client.meta.events.unregister("before-call.sns.PublishBatch", self._record)


class FailEntries:
    """SNS fault: on chosen calls, the chosen entries are not published and come back in ``Failed``."""

    def __init__(self, client: Any, choose: Callable[[int, list[dict[str, Any]]], list[str]], sender_fault: bool):
        self.calls, self.failed_ids = 0, []
        self._choose, self._sender_fault, self._pending = choose, sender_fault, []
        self._client = client
        client.meta.events.register("before-parameter-build.sns.PublishBatch", self._drop)
        client.meta.events.register("after-call.sns.PublishBatch", self._report)

    def _drop(self, params: dict[str, Any], **_: Any) -> None:
        self.calls += 1
        entries = params["PublishBatchRequestEntries"]
        self._pending = self._choose(self.calls, entries)
        self.failed_ids += self._pending
        params["PublishBatchRequestEntries"] = [e for e in entries if e["Id"] not in self._pending]

    def _report(self, parsed: dict[str, Any], **_: Any) -> None:
        parsed["Failed"] = [
            {"Id": i, "Code": "InternalError", "Message": "simulated", "SenderFault": self._sender_fault}
            for i in self._pending
        ]

    def close(self) -> None:
        self._client.meta.events.unregister("before-parameter-build.sns.PublishBatch", self._drop)
        self._client.meta.events.unregister("after-call.sns.PublishBatch", self._report)


def drain(deployment: Deployment) -> list[dict[str, Any]]:
    """Every message on the queue (left in flight; the queue's visibility timeout is long)."""
    sqs, messages = deployment.client("sqs"), []
    while True:
        got = sqs.receive_message(
            QueueUrl=deployment.outputs.queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not got:
            return messages
        messages += got


def message_seqs(messages: list[dict[str, Any]]) -> list[int]:
    return sorted(json.loads(m["Body"])["seq"] for m in messages)


def emf_total(out: str, name: str) -> float:
    """Sum of a metric over the EMF blobs a handler printed."""
    total = 0.0
    for line in out.splitlines():
        try:
            blob = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(blob, dict) and "_aws" in blob and name in blob:
            value = blob[name]
            total += sum(value) if isinstance(value, list) else value
    return total


@pytest.fixture
def handlers(deployment: Deployment, monkeypatch: pytest.MonkeyPatch) -> Deployment:
    for module in (collector, reporter):
        if module.metrics.namespace is None:  # imported before the Lambda environment was set
            monkeypatch.setattr(module.metrics, "namespace", deployment.spec.metrics_namespace)
    return deployment


@pytest.fixture
def pipeline_sns(deployment: Deployment) -> Iterator[list[Any]]:
    """Hooks put on the collector's own SNS client; closed after the test."""
    hooks: list[Any] = []
    yield hooks
    for hook in hooks:
        hook.close()


# --------------------------------------------------------------------------- partial failures


def test_failed_entries_are_republished_and_arrive_exactly_once(
    handlers: Deployment, pipeline_sns: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN SNS fails 3 entries (SenderFault false) of the first PublishBatch call
    sns = pipeline_aws.client("sns")
    fault = FailEntries(sns, lambda call, entries: [e["Id"] for e in entries[:3]] if call == 1 else [], False)
    calls = PublishCalls(sns)
    pipeline_sns += [fault, calls]
    # WHEN the collector publishes a synthetic run of 30
    summary = collector.handler({"source": "synthetic", "count": 30, "seed": 7, "run_id": "run-pub"}, lambda_context())
    # THEN exactly those 3 were published again in a later call, and every record is in SQS exactly once
    assert len(fault.failed_ids) == 3, "test setup: 3 entries failed"
    assert sorted(calls.ids(-1)) == sorted(fault.failed_ids), (
        f"the last call re-publishes the failed ids: {calls.ids(-1)}"
    )
    assert message_seqs(drain(handlers)) == list(range(1, 31)), "each of the 30 records exactly once"
    assert summary["republished"] == 3 and summary["given_up"] == 0, summary
    out = capsys.readouterr().out
    assert emf_total(out, "PublishRetries") == 3, "PublishRetries metric counts the re-published entries"
    assert emf_total(out, "PublishFailedEntries") == 3, "PublishFailedEntries metric counts the SNS failures"


def test_sender_fault_entries_are_given_up_and_the_collector_raises(
    handlers: Deployment, pipeline_sns: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN SNS rejects 2 entries of the first call as the sender's fault (not retryable)
    sns = pipeline_aws.client("sns")
    fault = FailEntries(sns, lambda call, entries: [e["Id"] for e in entries[:2]] if call == 1 else [], True)
    calls = PublishCalls(sns)
    pipeline_sns += [fault, calls]
    # WHEN the collector publishes 30 records
    with pytest.raises(PublishIncomplete) as caught:
        collector.handler({"source": "synthetic", "count": 30, "seed": 7, "run_id": "run-pub"}, lambda_context())
    # THEN it raises naming the count, did not retry them, and the other 28 are in SQS once each
    assert "2 of 30 records could not be published" in str(caught.value), str(caught.value)
    retried = [i for request in calls.requests[1:] for i in (e["Id"] for e in request) if i in fault.failed_ids]
    assert retried == [], f"sender-fault entries must not be re-published: {retried}"
    seqs = message_seqs(drain(handlers))
    assert seqs == sorted(set(range(1, 31)) - {int(i) for i in fault.failed_ids}), "the other 28, once each"
    assert emf_total(capsys.readouterr().out, "PublishGivenUp") == 2, "PublishGivenUp metric"


def test_entries_failing_every_round_are_given_up_after_max_attempts(deployment: Deployment) -> None:
    # GIVEN SNS fails entry 2 (retryable) on every call, and a publisher allowed 3 rounds
    sns = deployment.client("sns")
    fault = FailEntries(sns, lambda call, entries: [e["Id"] for e in entries if e["Id"] == "2"], False)
    sleeps: list[float] = []
    publisher = BatchPublisher(sns, deployment.outputs.topic_arn, max_attempts=3, sleep=sleeps.append)
    # WHEN 5 records are published
    result = publisher.publish([make_record(seq) for seq in range(1, 6)])
    # THEN entry 2 was tried 3 times with a backoff between rounds, then given up; the rest arrived once
    assert fault.calls == 3 and result.calls == 3, f"one call per round: {fault.calls}"
    assert len(sleeps) == 2 and all(0 <= s <= 20 for s in sleeps), f"a bounded backoff between rounds: {sleeps}"
    assert result.given_up == ["2"] and result.republished == 2, result
    assert message_seqs(drain(deployment)) == [1, 3, 4, 5], "record 2 never reached SQS; the others once"


# --------------------------------------------------------------------------- limits


def test_batches_never_exceed_10_entries_or_256_kib(deployment: Deployment) -> None:
    # GIVEN 25 small records and 8 records of about 90 KiB (three of them fill a batch's 256 KiB)
    records = [make_record(seq) for seq in range(1, 26)] + [
        make_record(seq, document_bytes=90 * KIB) for seq in range(26, 34)
    ]
    sns = deployment.client("sns")
    calls = PublishCalls(sns)
    # WHEN published
    result = BatchPublisher(sns, deployment.outputs.topic_arn).publish(records)
    # THEN no request held more than 10 entries or more than 256 KiB, and the size limit did split batches
    for n, request in enumerate(calls.requests, start=1):
        assert len(request) <= SNS_BATCH_ENTRIES, f"PublishBatch call {n} had {len(request)} entries"
        total = sum(sns_bytes(e) for e in request)
        assert total <= SNS_MESSAGE_LIMIT_BYTES, f"PublishBatch call {n} carried {total} bytes > 256 KiB"
    assert len(calls.requests) > -(-len(records) // SNS_BATCH_ENTRIES), "the 256 KiB limit must have cut batches"
    assert result.published == len(records) and not result.given_up, result
    # AND every record arrived exactly once
    assert message_seqs(drain(deployment)) == list(range(1, 34)), "each record once"


def test_oversize_record_is_offloaded_and_the_reporter_restores_its_document(
    handlers: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a record whose message would be about 300 KiB, next to two ordinary ones
    deployment = handlers
    big = make_record(2, document_bytes=300 * KIB)
    records = [make_record(1), big, make_record(3)]
    s3, bucket = deployment.client("s3"), deployment.outputs.bucket_name
    # WHEN published with an offload bucket
    publisher = BatchPublisher(deployment.client("sns"), deployment.outputs.topic_arn, s3=s3, bucket=bucket)
    result = publisher.publish(records)
    # THEN its document went to S3 under oversize/ and the message carries only a reference
    assert result.offloaded == 1 and result.published == 3, result
    offloaded = s3.list_objects_v2(Bucket=bucket, Prefix=OVERSIZE_PREFIX).get("Contents", [])
    assert len(offloaded) == 1, f"one object under {OVERSIZE_PREFIX}: {offloaded}"
    stored = json.loads(s3.get_object(Bucket=bucket, Key=offloaded[0]["Key"])["Body"].read())
    assert stored == big.document, "the offloaded object is the record's document"
    messages = drain(deployment)
    body = json.loads(next(m["Body"] for m in messages if json.loads(m["Body"])["seq"] == 2))
    assert body["policy"]["document"] is None and body["policy"]["document_ref"] == offloaded[0]["Key"], body
    assert all(len(m["Body"].encode()) <= SNS_MESSAGE_LIMIT_BYTES for m in messages), "every message fits SQS"
    # AND WHEN the reporter handles the messages
    event = {"Records": [to_lambda_record(m, deployment.outputs.queue_arn, deployment.aws.region) for m in messages]}
    response = reporter.handler(event, lambda_context())
    # THEN the CSV row holds the full document, read back from S3
    assert response["batchItemFailures"] == [], response
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=report_prefix(ACCOUNT_ID, "run-pub"))["Contents"]
    text = "".join(
        s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read().decode() for o in listing if o["Key"].endswith(".csv")
    )
    # (compared as CSV text: Python's csv reader refuses fields over 128 KiB, see test_verifier)
    quoted_document = '"' + big.to_row()["document"].replace('"', '""') + '"'
    assert text.count(big.key) == 1, "one row for the oversize record"
    assert quoted_document in text, "the oversize record's row carries its whole document"
    assert all(r.key in text for r in records), "all three records written"
