"""From collected policies to a run's records: numbering, trace ids, and the synthetic source.

Shared by the collector handler and the load test, which must build exactly the records the
collector publishes to know which keys a run should produce.
"""

from __future__ import annotations

import hashlib

from pipeline.record import CollectedPolicy, PolicyRecord
from pipeline.synthetic import generate_policies, synthetic_arn


def trace_id(run_id: str, seq: int) -> str:
    return hashlib.sha256(f"{run_id}:{seq}".encode()).hexdigest()[:32]


def synthetic_policies(count: int, seed: int, account_id: str) -> list[CollectedPolicy]:
    """Synthetic policies, as :func:`pipeline.iam_source.iter_policies` yields IAM ones."""
    return [
        CollectedPolicy(
            name=p.name,
            arn=synthetic_arn(account_id, p),
            id=p.policy_id,
            version_id=p.version_id,
            aws_managed=False,
            attachment_count=p.attachment_count,
            create_date=p.create_date,
            update_date=p.update_date,
            document=p.document,
        )
        for p in generate_policies(count, seed)
    ]


def build_records(policies: list[CollectedPolicy], *, run_id: str, account_id: str) -> list[PolicyRecord]:
    total = len(policies)
    return [
        PolicyRecord(
            run_id=run_id,
            seq=seq,
            total=total,
            trace_id=trace_id(run_id, seq),
            account_id=account_id,
            policy_name=p.name,
            policy_arn=p.arn,
            policy_id=p.id,
            version_id=p.version_id,
            aws_managed=p.aws_managed,
            attachment_count=p.attachment_count,
            create_date=p.create_date,
            update_date=p.update_date,
            document=p.document,
        )
        for seq, p in enumerate(policies, start=1)
    ]
