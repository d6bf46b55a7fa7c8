"""Where results live: the reports bucket and the DynamoDB run table.

The bucket is private, TLS-only, encrypted, versioned and owner-enforced. Its lifecycle
rules scope to the prefixes in :mod:`pipeline.layout`, the same ones the IAM policies use.
"""

from __future__ import annotations

import math

import pulumi
import pulumi_aws as aws

import iam_policies as iam
from pipeline import layout
from pipeline.spec import DeploymentSpec

BUCKET_PREFIX_MAX = 37  # S3's limit for bucket_prefix; the provider appends a 26-character suffix
RUN_TABLE_HASH_KEY = "run_id"  # the key pipeline.run_store reads and writes
NONCURRENT_VERSION_DAYS = 30
FOLDED_SEGMENT_DAYS = 1
ABORT_MULTIPART_DAYS = 1
LEFTOVER_LOCK_DAYS = 1
_DAY_SECONDS = 24 * 3600


def bucket_prefix(spec: DeploymentSpec) -> str:
    return f"{spec.bucket_name}-"


def oversize_retention_days(spec: DeploymentSpec) -> int:
    """An offloaded payload must outlive every message that points to it, even one redriven from the DLQ."""
    return math.ceil((spec.queue.retention_seconds + spec.queue.dlq_retention_seconds) / _DAY_SECONDS) + 1


def lifecycle_rules(spec: DeploymentSpec) -> list[aws.s3.BucketLifecycleConfigurationRuleArgsDict]:
    # Lock objects (reports/.../<key>.lock) are tagged, because lifecycle filters cannot match a
    # key suffix and a rule on reports/ would also expire the CSV parts. A lock left by a crashed
    # reporter is taken over by the next writer once stale; one whose run never gets another
    # write expires here. Released and taken-over locks leave noncurrent versions and delete
    # markers, which the first rule removes.
    return [
        {
            "id": "expire-noncurrent-versions",
            "status": "Enabled",
            "filter": {},
            "noncurrent_version_expiration": {"noncurrent_days": NONCURRENT_VERSION_DAYS},
            "expiration": {"expired_object_delete_marker": True},
        },
        {
            # A folded segment is deleted (a delete marker over a noncurrent version); its rows live on
            # in a part, so its old version need not be kept for the whole-bucket 30 days. Current
            # segments (not yet folded) are never expired.
            "id": "expire-folded-segments",
            "status": "Enabled",
            "filter": {"prefix": layout.SEGMENTS_PREFIX},
            "noncurrent_version_expiration": {"noncurrent_days": FOLDED_SEGMENT_DAYS},
        },
        {
            "id": "expire-oversize-payloads",
            "status": "Enabled",
            "filter": {"prefix": layout.OVERSIZE_PREFIX},
            "expiration": {"days": oversize_retention_days(spec)},
        },
        {
            "id": "expire-leftover-locks",
            "status": "Enabled",
            "filter": {"tag": {"key": layout.LOCK_TAG_KEY, "value": layout.LOCK_TAG_VALUE}},
            "expiration": {"days": LEFTOVER_LOCK_DAYS},
        },
        {
            "id": "abort-incomplete-multipart-uploads",
            "status": "Enabled",
            "filter": {},
            "abort_incomplete_multipart_upload": {"days_after_initiation": ABORT_MULTIPART_DAYS},
        },
    ]


class Storage(pulumi.ComponentResource):
    """The reports bucket with its security settings, and the run table."""

    bucket: aws.s3.Bucket
    run_table: aws.dynamodb.Table

    def __init__(self, name: str, spec: DeploymentSpec, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("cidb:stack:Storage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # force_destroy stays off: reports are the product, so `pulumi destroy` refuses a bucket
        # that still holds them (docs/deploy.md shows how to empty it first).
        self.bucket = aws.s3.Bucket(
            f"{name}-bucket", bucket_prefix=bucket_prefix(spec), force_destroy=False, opts=child
        )
        bucket_id = self.bucket.id
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership", bucket=bucket_id, rule={"object_ownership": "BucketOwnerEnforced"}, opts=child
        )
        public_access = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=bucket_id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket_id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}],
            opts=child,
        )
        versioning = aws.s3.BucketVersioning(
            f"{name}-versioning", bucket=bucket_id, versioning_configuration={"status": "Enabled"}, opts=child
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket_id,
            rules=lifecycle_rules(spec),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )
        aws.s3.BucketPolicy(
            f"{name}-tls-only",
            bucket=bucket_id,
            policy=pulumi.Output.json_dumps(iam.tls_only_bucket_policy(self.bucket.arn)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access]),
        )
        self.run_table = aws.dynamodb.Table(
            f"{name}-runs",
            name=spec.run_table_name,
            billing_mode="PAY_PER_REQUEST",
            hash_key=RUN_TABLE_HASH_KEY,
            attributes=[{"name": RUN_TABLE_HASH_KEY, "type": "S"}],
            server_side_encryption={"enabled": True},
            point_in_time_recovery={"enabled": True},
            opts=child,
        )
        self.register_outputs({"bucket_name": self.bucket.bucket, "run_table_name": self.run_table.name})
