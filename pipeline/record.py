"""The policy record: what travels on SNS/SQS and what becomes one CSV row.

A record's key (account + policy ARN + version + run) is stable across redeliveries,
which is what makes exactly-once output rows possible on an at-least-once queue.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

MESSAGE_VERSION = 1

CSV_COLUMNS = (
    "record_key",
    "run_id",
    "seq",
    "account_id",
    "policy_name",
    "policy_arn",
    "policy_id",
    "version_id",
    "aws_managed",
    "attachment_count",
    "create_date",
    "update_date",
    "statement_count",
    "action_count",
    "has_condition",
    "document",
    "trace_id",
)


class RecordError(ValueError):
    """A message body that is not a valid policy record."""


@dataclass(frozen=True)
class CollectedPolicy:
    """One policy as a source yields it (IAM, or the synthetic generator), before it joins a run."""

    name: str
    arn: str
    id: str
    version_id: str
    aws_managed: bool
    attachment_count: int
    create_date: str
    update_date: str
    document: dict[str, Any]


@dataclass(frozen=True)
class PolicyRecord:
    run_id: str
    seq: int
    total: int
    trace_id: str
    account_id: str
    policy_name: str
    policy_arn: str
    policy_id: str
    version_id: str
    aws_managed: bool
    attachment_count: int
    create_date: str
    update_date: str
    document: dict[str, Any] | None
    document_ref: str | None = None

    @property
    def key(self) -> str:
        return record_key(self.account_id, self.policy_arn, self.version_id, self.run_id)

    def to_message(self) -> dict[str, Any]:
        return {
            "v": MESSAGE_VERSION,
            "run_id": self.run_id,
            "seq": self.seq,
            "total": self.total,
            "trace_id": self.trace_id,
            "account_id": self.account_id,
            "policy": {
                "name": self.policy_name,
                "arn": self.policy_arn,
                "id": self.policy_id,
                "version_id": self.version_id,
                "aws_managed": self.aws_managed,
                "attachment_count": self.attachment_count,
                "create_date": self.create_date,
                "update_date": self.update_date,
                "document": self.document,
                "document_ref": self.document_ref,
            },
        }

    def to_json(self) -> str:
        return json.dumps(self.to_message(), separators=(",", ":"), sort_keys=True)

    def to_row(self) -> dict[str, str]:
        doc = self.document or {}
        statements = doc.get("Statement", [])
        if isinstance(statements, dict):
            statements = [statements]
        actions = 0
        for st in statements:
            value = st.get("Action", st.get("NotAction", []))
            actions += 1 if isinstance(value, str) else len(value)
        return {
            "record_key": self.key,
            "run_id": self.run_id,
            "seq": str(self.seq),
            "account_id": self.account_id,
            "policy_name": self.policy_name,
            "policy_arn": self.policy_arn,
            "policy_id": self.policy_id,
            "version_id": self.version_id,
            "aws_managed": "true" if self.aws_managed else "false",
            "attachment_count": str(self.attachment_count),
            "create_date": self.create_date,
            "update_date": self.update_date,
            "statement_count": str(len(statements)),
            "action_count": str(actions),
            "has_condition": "true" if any("Condition" in st for st in statements) else "false",
            "document": json.dumps(doc, separators=(",", ":"), sort_keys=True),
            "trace_id": self.trace_id,
        }


def record_key(account_id: str, policy_arn: str, version_id: str, run_id: str) -> str:
    return f"{account_id}|{policy_arn}|{version_id}|{run_id}"


def key_digest(key: str) -> str:
    """Short, fixed-size form of a record key for indexes."""
    return hashlib.sha256(key.encode()).hexdigest()[:20]


def keys_digest(keys: list[str]) -> str:
    """Order-independent digest of a run's key set, stored in the run record."""
    h = hashlib.sha256()
    for key in sorted(keys):
        h.update(key.encode())
        h.update(b"\n")
    return h.hexdigest()


@dataclass(frozen=True)
class RecordClaim:
    """Which record an invalid body was meant to be, when it still says so (key fields intact)."""

    key: str
    run_id: str
    trace_id: str | None
    seq: int | None


def claim_of(body: str) -> RecordClaim | None:
    """The record an invalid body names, so that a corrupted record in the DLQ is found by its key."""
    try:
        msg = json.loads(body)
    except ValueError:
        return None
    policy = msg.get("policy") if isinstance(msg, dict) else None
    if not isinstance(policy, dict):
        return None
    account_id, arn, version_id, run_id = (
        msg.get("account_id"),
        policy.get("arn"),
        policy.get("version_id"),
        msg.get("run_id"),
    )
    if not all(isinstance(part, str) and part for part in (account_id, arn, version_id, run_id)):
        return None
    trace_id, seq = msg.get("trace_id"), msg.get("seq")
    if _first_text_not_utf8([account_id, arn, version_id, run_id, trace_id]) is not None:
        return None  # a key that cannot be written or logged as UTF-8 names no record
    return RecordClaim(
        record_key(account_id, arn, version_id, run_id),
        run_id,
        trace_id if isinstance(trace_id, str) else None,
        seq if isinstance(seq, int) and not isinstance(seq, bool) else None,
    )


_REQUIRED = ("run_id", "seq", "total", "trace_id", "account_id", "policy")
_REQUIRED_POLICY = ("name", "arn", "version_id")


def _first_text_not_utf8(value: Any, path: str = "") -> str | None:
    """The dotted path of the first key or string that cannot be encoded as UTF-8, or None."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path or "(body)"
        return None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        where = f"{path}.{key}" if path else str(key)
        found = _first_text_not_utf8(key, where) if isinstance(key, str) else None
        found = found or _first_text_not_utf8(item, where)
        if found:
            return found
    return None


def parse_message(body: str) -> PolicyRecord:
    """Parse an SQS body; a bad one names the field that is wrong."""
    try:
        msg = json.loads(body)
    except json.JSONDecodeError as exc:
        raise RecordError(f"message body is not JSON: {exc.msg} at position {exc.pos}") from None
    if not isinstance(msg, dict):
        raise RecordError("message body must be a JSON object")
    field = _first_text_not_utf8(msg)
    if field is not None:  # a JSON escape such as \ud800 parses into text that no CSV part can hold
        raise RecordError(f"message field {field} holds text that is not valid UTF-8 (a lone surrogate)")
    if msg.get("v") != MESSAGE_VERSION:
        raise RecordError(f"message version {msg.get('v')!r} is not supported (expected {MESSAGE_VERSION})")
    missing = [f for f in _REQUIRED if f not in msg]
    policy = msg.get("policy")
    if not isinstance(policy, dict):
        raise RecordError(f"message field 'policy' must be an object; missing fields: {missing}")
    missing += [f"policy.{f}" for f in _REQUIRED_POLICY if not policy.get(f)]
    if missing:
        raise RecordError(f"message is missing required fields: {', '.join(missing)}")
    document = policy.get("document")
    ref = policy.get("document_ref")
    if document is None and not ref:
        raise RecordError("message has neither policy.document nor policy.document_ref")
    if document is not None and not isinstance(document, dict):
        raise RecordError("message field policy.document must be a JSON object")
    try:
        return PolicyRecord(
            run_id=str(msg["run_id"]),
            seq=int(msg["seq"]),
            total=int(msg["total"]),
            trace_id=str(msg["trace_id"]),
            account_id=str(msg["account_id"]),
            policy_name=str(policy["name"]),
            policy_arn=str(policy["arn"]),
            policy_id=str(policy["id"]),
            version_id=str(policy["version_id"]),
            aws_managed=bool(policy.get("aws_managed", False)),
            attachment_count=int(policy.get("attachment_count", 0)),
            create_date=str(policy.get("create_date", "")),
            update_date=str(policy.get("update_date", "")),
            document=document,
            document_ref=ref,
        )
    except (TypeError, ValueError) as exc:
        raise RecordError(f"message has a field of the wrong type: {exc}") from None
