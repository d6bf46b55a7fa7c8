"""Run records in DynamoDB: what each run should produce, for reconciliation.

The collector writes the record before it publishes anything, so a run that dies half-way
is still known and its shortfall still detected. The full key list goes to S3 (it can
exceed DynamoDB's 400 KB item limit); the item keeps the count and a digest.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from pipeline.layout import expected_keys_key
from pipeline.record import keys_digest

STATUS_OPEN = "open"
STATUS_COMPLETE = "complete"
STATUS_SHORT = "short"
# On-call gave up on a run that can never complete (``cidb runs close``): the verifier stops
# checking it, so its data-loss alarm clears; the reason stays in the record.
STATUS_CLOSED = "closed"
DONE_STATUSES = (STATUS_COMPLETE, STATUS_CLOSED)


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    account_id: str
    source: str
    expected: int
    keys_digest: str
    expected_keys_key: str
    created_at: float
    status: str = STATUS_OPEN
    reported_written: int = 0  # the reporters' own count; never trusted by verification
    verified_written: int | None = None
    verified_missing: int | None = None
    verified_at: float | None = None
    closed_reason: str | None = None


def start_run(
    dynamodb: Any, s3: Any, *, table: str, bucket: str, run_id: str, account_id: str, source: str, keys: list[str]
) -> RunRecord:
    record = RunRecord(
        run_id=run_id,
        account_id=account_id,
        source=source,
        expected=len(keys),
        keys_digest=keys_digest(keys),
        expected_keys_key=expected_keys_key(run_id),
        created_at=time.time(),
    )
    s3.put_object(
        Bucket=bucket,
        Key=record.expected_keys_key,
        # In seq order: the position of a key gives its seq, and so its trace id, to `cidb verify`.
        Body=json.dumps(keys).encode(),
        ContentType="application/json",
    )
    dynamodb.put_item(
        TableName=table,
        Item={
            "run_id": {"S": run_id},
            "account_id": {"S": account_id},
            "source": {"S": source},
            "expected": {"N": str(record.expected)},
            "keys_digest": {"S": record.keys_digest},
            "expected_keys_key": {"S": record.expected_keys_key},
            "created_at": {"N": f"{record.created_at:.3f}"},
            "status": {"S": STATUS_OPEN},
        },
    )
    return record


@dataclass(frozen=True)
class RunProgress:
    """The reporters' own counts: they decide when to compact; verification never trusts them."""

    committed: int  # records committed in segments (a redelivered record may count twice)
    compacted: int  # records folded into parts
    expected: int | None  # None: the run has no record (compact eagerly)

    @property
    def pending(self) -> int:
        return self.committed - self.compacted

    def crossed(self, added: int, every: int) -> bool:
        """True if adding ``added`` took the committed count past a multiple of ``every``."""
        return (self.committed - added) // every < self.committed // every


def _progress(item: dict[str, Any]) -> RunProgress:
    def number(name: str) -> int:
        return int(item.get(name, {}).get("N", 0))

    return RunProgress(number("reported_written"), number("reported_compacted"), number("expected") or None)


def add_written(dynamodb: Any, *, table: str, run_id: str, count: int) -> RunProgress:
    """Count records committed by a reporter; one call that also returns the run's progress.

    Only an existing run record is updated: an ADD on a missing item would create a stub
    without the fields the verifier reads. A run without a record has no expected count.
    """
    try:
        response = dynamodb.update_item(
            TableName=table,
            Key={"run_id": {"S": run_id}},
            UpdateExpression="ADD reported_written :n",
            ConditionExpression="attribute_exists(run_id)",
            ExpressionAttributeValues={":n": {"N": str(count)}},
            ReturnValues="ALL_NEW",
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        return RunProgress(committed=count, compacted=0, expected=None)
    return _progress(response.get("Attributes", {}))


def add_compacted(dynamodb: Any, *, table: str, run_id: str, count: int) -> None:
    if not count:
        return
    try:
        dynamodb.update_item(
            TableName=table,
            Key={"run_id": {"S": run_id}},
            UpdateExpression="ADD reported_compacted :n",
            ConditionExpression="attribute_exists(run_id)",
            ExpressionAttributeValues={":n": {"N": str(count)}},
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise


def _from_item(item: dict[str, Any]) -> RunRecord:
    def number(name: str) -> float | None:
        return float(item[name]["N"]) if name in item else None

    verified_written, verified_missing = number("verified_written"), number("verified_missing")
    return RunRecord(
        run_id=item["run_id"]["S"],
        account_id=item["account_id"]["S"],
        source=item["source"]["S"],
        expected=int(item["expected"]["N"]),
        keys_digest=item["keys_digest"]["S"],
        expected_keys_key=item["expected_keys_key"]["S"],
        created_at=float(item["created_at"]["N"]),
        status=item.get("status", {}).get("S", STATUS_OPEN),
        reported_written=int(number("reported_written") or 0),
        verified_written=int(verified_written) if verified_written is not None else None,
        verified_missing=int(verified_missing) if verified_missing is not None else None,
        verified_at=number("verified_at"),
        closed_reason=item.get("closed_reason", {}).get("S"),
    )


def get_run(dynamodb: Any, *, table: str, run_id: str) -> RunRecord | None:
    item = dynamodb.get_item(TableName=table, Key={"run_id": {"S": run_id}}, ConsistentRead=True).get("Item")
    return _from_item(item) if item else None


def unverified_runs(dynamodb: Any, *, table: str) -> list[RunRecord]:
    """Runs not yet found complete nor closed by on-call; a small table, so a filtered scan is enough."""
    return _scan(
        dynamodb,
        TableName=table,
        FilterExpression="NOT #s IN (:done, :closed)",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":done": {"S": STATUS_COMPLETE}, ":closed": {"S": STATUS_CLOSED}},
    )


def all_runs(dynamodb: Any, *, table: str) -> list[RunRecord]:
    """Every run, newest first."""
    return sorted(_scan(dynamodb, TableName=table), key=lambda r: r.created_at, reverse=True)


def _scan(dynamodb: Any, **request: Any) -> list[RunRecord]:
    runs, kwargs = [], {}
    while True:
        page = dynamodb.scan(**request, **kwargs)
        runs += [_from_item(i) for i in page.get("Items", [])]
        if "LastEvaluatedKey" not in page:
            return runs
        kwargs = {"ExclusiveStartKey": page["LastEvaluatedKey"]}


def close_run(dynamodb: Any, *, table: str, run_id: str, reason: str, closed_by: str) -> None:
    """Record on-call's decision that a run will never complete; only an existing, unfinished run."""
    dynamodb.update_item(
        TableName=table,
        Key={"run_id": {"S": run_id}},
        UpdateExpression="SET #s = :closed, closed_reason = :r, closed_by = :by, closed_at = :t",
        ConditionExpression="attribute_exists(run_id) AND #s <> :done",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={
            ":closed": {"S": STATUS_CLOSED},
            ":done": {"S": STATUS_COMPLETE},
            ":r": {"S": reason},
            ":by": {"S": closed_by},
            ":t": {"N": f"{time.time():.3f}"},
        },
    )


def mark_verified(dynamodb: Any, *, table: str, run_id: str, written: int, missing: int) -> None:
    dynamodb.update_item(
        TableName=table,
        Key={"run_id": {"S": run_id}},
        UpdateExpression="SET #s = :s, verified_written = :w, verified_missing = :m, verified_at = :t",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={
            ":s": {"S": STATUS_COMPLETE if missing == 0 else STATUS_SHORT},
            ":w": {"N": str(written)},
            ":m": {"N": str(missing)},
            ":t": {"N": f"{time.time():.3f}"},
        },
    )
