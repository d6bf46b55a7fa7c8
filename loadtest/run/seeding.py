"""Test data for a run: synthetic records, or real policies created in the emulator's IAM."""

from __future__ import annotations

import json
from typing import Any

from pipeline.collection import build_records, synthetic_policies
from pipeline.record import CollectedPolicy, PolicyRecord
from pipeline.synthetic import generate_policies

# IAM's limit for a customer-managed policy document, whitespace excluded.
IAM_DOCUMENT_LIMIT = 6144


def synthetic_records(count: int, seed: int, *, run_id: str, account_id: str) -> list[PolicyRecord]:
    return build_records(synthetic_policies(count, seed, account_id), run_id=run_id, account_id=account_id)


def create_iam_policies(iam: Any, count: int, seed: int) -> list[CollectedPolicy]:
    """Create ``count`` customer-managed policies that IAM accepts, as the collector would collect them."""
    created: list[CollectedPolicy] = []
    candidates = generate_policies(count * 2, seed)
    for policy in candidates:
        document = json.dumps(policy.document, separators=(",", ":"))
        if len(document) > IAM_DOCUMENT_LIMIT:
            continue
        made = iam.create_policy(PolicyName=policy.name, Path=policy.path, PolicyDocument=document)["Policy"]
        created.append(
            CollectedPolicy(
                name=made["PolicyName"],
                arn=made["Arn"],
                id=made["PolicyId"],
                version_id=made["DefaultVersionId"],
                aws_managed=False,
                attachment_count=int(made.get("AttachmentCount", 0)),
                create_date=made["CreateDate"].isoformat(),
                update_date=made["UpdateDate"].isoformat(),
                document=policy.document,
            )
        )
        if len(created) == count:
            return created
    raise ValueError(f"only {len(created)} of {count} synthetic policies fit IAM's {IAM_DOCUMENT_LIMIT}-char limit")
