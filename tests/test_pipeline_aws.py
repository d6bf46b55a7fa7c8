"""The handlers' boto3 clients: retries are counted, and each retried attempt is named by its error code."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from emulated import Deployment

from pipeline import aws as pipeline_aws


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


def _slow_down() -> AWSResponse:
    """S3's throttling answer, as the HTTP layer would return it."""
    body = b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>SlowDown</Code><Message>slow</Message></Error>"
    headers = {"Content-Type": "application/xml", "Content-Length": str(len(body))}
    return AWSResponse("https://throttled.invalid/", 503, headers, _Body(body))


@pytest.fixture
def throttled_once(deployment: Deployment) -> Iterator[Any]:
    """The handlers' own S3 client, whose first PutObject attempt gets 503 SlowDown."""
    s3, sent = pipeline_aws.client("s3"), []

    def first_try_throttled(**_: Any) -> AWSResponse | None:
        sent.append(1)
        return _slow_down() if len(sent) == 1 else None

    s3.meta.events.register_first("before-send.s3.PutObject", first_try_throttled)
    pipeline_aws.take_sdk_retries(), pipeline_aws.take_retry_errors()
    yield s3
    s3.meta.events.unregister("before-send.s3.PutObject", first_try_throttled)


def test_a_retried_slowdown_is_named_and_a_final_412_is_not(deployment: Deployment, throttled_once: Any) -> None:
    bucket = deployment.outputs.bucket_name
    # GIVEN a PutObject whose first try is throttled WHEN botocore retries it THEN it succeeds
    throttled_once.put_object(Bucket=bucket, Key="probe", Body=b"1")
    # AND a conditional write that loses (412) is final, not retried
    with pytest.raises(ClientError, match="PreconditionFailed"):
        throttled_once.put_object(Bucket=bucket, Key="probe", Body=b"2", IfNoneMatch="*")
    # THEN the retry is counted and named by its error code; the 412 is neither
    assert pipeline_aws.take_sdk_retries() == 1
    assert pipeline_aws.take_retry_errors() == {("s3", "PutObject", "SlowDown"): 1}
    assert pipeline_aws.take_retry_errors() == {}, "taking empties the count, once per invocation"
