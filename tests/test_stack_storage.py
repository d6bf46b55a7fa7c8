"""S3 and DynamoDB security: every setting of the reports bucket and the run table."""

from __future__ import annotations

import pulumi_mocks
import pytest
from pulumi_mocks import Deployment, deploy

from pipeline import layout
from stack.storage import BUCKET_PREFIX_MAX, oversize_retention_days


@pytest.fixture(scope="module")
def tuned() -> Deployment:
    return deploy()


def _on_bucket(deployment: Deployment, typ: str) -> pulumi_mocks.Resource:
    resource = deployment.one(typ)
    bucket = deployment.one("aws:s3/bucket:Bucket")
    assert resource.state["bucket"] == bucket.state["bucket"], f"{resource.urn} must configure {bucket.urn}"
    return resource


def test_bucket_is_named_from_the_spec_and_not_force_destroyed(tuned: Deployment) -> None:
    bucket = tuned.one("aws:s3/bucket:Bucket")
    prefix = f"{tuned.settings.spec.bucket_name}-"
    assert bucket.state["bucketPrefix"] == prefix, f"{bucket.urn} bucket prefix"
    assert len(prefix) <= BUCKET_PREFIX_MAX, f"{bucket.urn} prefix too long for S3"
    assert bucket.state["forceDestroy"] is False, f"{bucket.urn}: destroy must not delete reports"


def test_all_four_public_access_blocks_are_on(tuned: Deployment) -> None:
    block = _on_bucket(tuned, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"):
        assert block.state[flag] is True, f"{block.urn} {flag}"


def test_bucket_owner_owns_every_object(tuned: Deployment) -> None:
    ownership = _on_bucket(tuned, "aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    assert ownership.state["rule"] == {"objectOwnership": "BucketOwnerEnforced"}, f"{ownership.urn} must disable ACLs"


def test_bucket_encrypts_by_default(tuned: Deployment) -> None:
    encryption = _on_bucket(
        tuned, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    )
    [rule] = encryption.state["rules"]
    algorithm = rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"]
    assert algorithm in ("AES256", "aws:kms"), f"{encryption.urn} default encryption is {algorithm!r}"


def test_bucket_denies_requests_without_tls(tuned: Deployment) -> None:
    policy = _on_bucket(tuned, "aws:s3/bucketPolicy:BucketPolicy")
    bucket_arn = tuned.one("aws:s3/bucket:Bucket").state["arn"]
    [statement] = tuned.document(policy)["Statement"]
    assert statement["Effect"] == "Deny", policy.urn
    assert statement["Principal"] == "*" and statement["Action"] == ["s3:*"], f"{policy.urn} must deny everyone"
    assert sorted(statement["Resource"]) == [bucket_arn, f"{bucket_arn}/*"], f"{policy.urn} must cover every object"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}, f"{policy.urn} TLS condition"


def test_bucket_is_versioned(tuned: Deployment) -> None:
    versioning = _on_bucket(tuned, "aws:s3/bucketVersioning:BucketVersioning")
    assert versioning.state["versioningConfiguration"] == {"status": "Enabled"}, f"{versioning.urn} versioning"


def _rules(deployment: Deployment) -> dict[str, dict]:
    lifecycle = _on_bucket(deployment, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    rules = {rule["id"]: rule for rule in lifecycle.state["rules"]}
    assert all(rule["status"] == "Enabled" for rule in rules.values()), f"{lifecycle.urn} has a disabled rule"
    return rules


def test_noncurrent_versions_and_orphaned_delete_markers_expire(tuned: Deployment) -> None:
    rule = _rules(tuned)["expire-noncurrent-versions"]
    assert rule["filter"] == {}, "the noncurrent-version rule must cover the whole bucket"
    assert rule["noncurrentVersionExpiration"]["noncurrentDays"] == 30, "noncurrent versions expire after 30 days"
    assert rule["expiration"] == {"expiredObjectDeleteMarker": True}, "released locks leave delete markers to clean"


def test_oversize_payloads_expire_after_every_message_that_can_reference_them(tuned: Deployment) -> None:
    rule = _rules(tuned)["expire-oversize-payloads"]
    queue = tuned.settings.spec.queue
    outlives = (queue.retention_seconds + queue.dlq_retention_seconds) / 86400
    assert rule["filter"] == {"prefix": layout.OVERSIZE_PREFIX}, "oversize rule scope"
    assert rule["expiration"]["days"] == oversize_retention_days(tuned.settings.spec) > outlives, "oversize expiry"


def test_incomplete_multipart_uploads_are_aborted(tuned: Deployment) -> None:
    rule = _rules(tuned)["abort-incomplete-multipart-uploads"]
    assert rule["filter"] == {}, "multipart rule must cover the whole bucket"
    assert rule["abortIncompleteMultipartUpload"]["daysAfterInitiation"] >= 1, "multipart abort"


def test_leftover_lock_objects_expire(tuned: Deployment) -> None:
    rule = _rules(tuned)["expire-leftover-locks"]
    assert rule["filter"] == {"tag": {"key": layout.LOCK_TAG_KEY, "value": layout.LOCK_TAG_VALUE}}, "lock rule scope"
    assert rule["expiration"]["days"] >= 1, "a lock lives for seconds; leftovers expire within days"


def test_no_lifecycle_rule_expires_current_reports(tuned: Deployment) -> None:
    lock_tag = {"key": layout.LOCK_TAG_KEY, "value": layout.LOCK_TAG_VALUE}
    for rule_id, rule in _rules(tuned).items():
        days = rule.get("expiration", {}).get("days")
        scope = rule["filter"].get("prefix", "")
        only_locks = rule["filter"].get("tag") == lock_tag
        assert days is None or only_locks or (scope and not layout.REPORTS_PREFIX.startswith(scope)), (
            f"lifecycle rule {rule_id!r} would expire current objects under {layout.REPORTS_PREFIX}"
        )


def test_no_lifecycle_rule_expires_current_segments(tuned: Deployment) -> None:
    """A current segment holds committed records not yet compacted: expiring it would lose them."""
    for rule_id, rule in _rules(tuned).items():
        expiration = rule.get("expiration", {})
        scope = rule["filter"].get("prefix", "")
        reaches_segments = not rule["filter"].get("tag") and layout.SEGMENTS_PREFIX.startswith(scope)
        assert not (reaches_segments and expiration.get("days")), f"lifecycle rule {rule_id!r} would expire segments"


def test_folded_segments_old_versions_go_after_a_day(tuned: Deployment) -> None:
    rule = _rules(tuned)["expire-folded-segments"]
    assert rule["filter"] == {"prefix": layout.SEGMENTS_PREFIX}, rule
    assert rule["noncurrentVersionExpiration"]["noncurrentDays"] == 1, rule
    assert "expiration" not in rule or not rule["expiration"].get("days"), "current segments never expire"


def test_run_table_is_on_demand_encrypted_and_recoverable(tuned: Deployment) -> None:
    table = tuned.one("aws:dynamodb/table:Table")
    assert table.state["name"] == tuned.settings.spec.run_table_name, table.urn
    assert table.state["hashKey"] == "run_id", table.urn
    assert table.state["attributes"] == [{"name": "run_id", "type": "S"}], table.urn
    assert table.state["billingMode"] == "PAY_PER_REQUEST", table.urn
    assert table.state["serverSideEncryption"] == {"enabled": True}, f"{table.urn} encryption"
    assert table.state["pointInTimeRecovery"] == {"enabled": True}, f"{table.urn} point-in-time recovery"
