"""The latency profiles that ``cidb loadtest --latency`` names: ``none`` (today's emulator) and ``aws``.

Every figure of ``aws`` comes from a public source, cited in docs/latency.md with the rule that
turned it into a p50 and a p99; none is fitted to a result of this project.
"""

from __future__ import annotations

from dataclasses import dataclass

from loadtest.latency.delays import DEFAULT_KEY, LatencyProfile, Percentiles
from loadtest.latency.scaling import SQS_STANDARD, PollerScaling

# docs/latency.md, "S3 reads": AWS's "tens of milliseconds" median for small requests, and the
# 100-200 ms first-byte figure for the tail.
S3_READ = Percentiles(30, 200)
# docs/latency.md, "S3 writes": boto3 PutObject from Lambda to S3 in the same region, 60-133 ms.
S3_WRITE = Percentiles(89, 133)
# docs/latency.md, "SQS": 16 ms to send a message; an end-to-end p99 of 105 ms.
SQS = Percentiles(16, 105)
# docs/latency.md, "SNS": publish to delivery, p50 73 ms, p99 225 ms (it includes the delivery to
# the queue, which moto makes inside the call).
SNS = Percentiles(73, 225)
# docs/latency.md, "DynamoDB": single-digit milliseconds, with SQS's p99/p50 ratio for the tail.
DYNAMODB = Percentiles(5, 33)
# docs/latency.md, "IAM": a control plane in us-east-1 only; a cross-region call, 500-550 ms.
IAM = Percentiles(524, 550)
# docs/latency.md, "Cold starts": Python on Lambda with an AWS SDK, p50 ~300 ms, p99 ~700 ms.
PYTHON_COLD_START = Percentiles(300, 700)

AWS_DELAYS = LatencyProfile(
    "aws",
    {
        "s3": S3_READ,  # GetObject, HeadObject, ListObjectsV2, ListObjectVersions, and any other S3 call
        **dict.fromkeys(("s3.PutObject", "s3.DeleteObject", "s3.DeleteObjects", "s3.CopyObject"), S3_WRITE),
        "sqs": SQS,
        "sns": SNS,
        "dynamodb": DYNAMODB,
        "iam": IAM,
        DEFAULT_KEY: SQS,  # any other regional API call (STS, CloudWatch, Logs)
    },
    PYTHON_COLD_START,
)


@dataclass(frozen=True)
class Profile:
    """What ``--latency`` selects: call and cold-start delays, and how SQS pollers scale (None: as today)."""

    name: str
    delays: LatencyProfile | None = None
    scaling: PollerScaling | None = None


PROFILES = {"none": Profile("none"), "aws": Profile("aws", AWS_DELAYS, SQS_STANDARD)}
