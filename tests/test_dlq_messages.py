"""DLQ decoding: the one reader behind reconciliation, `cidb dlq show` and the alarm notifier."""

from __future__ import annotations

import json

from pipeline.dlq_messages import RECORD_FAILED_ELSEWHERE, decode_message, group_by_error
from pipeline.record import PolicyRecord


def _record(seq: int) -> PolicyRecord:
    return PolicyRecord(
        run_id="run-1",
        seq=seq,
        total=3,
        trace_id=f"t-{seq}",
        account_id="123456789012",
        policy_name=f"p{seq}",
        policy_arn=f"arn:aws:iam::123456789012:policy/p{seq}",
        policy_id=f"ID{seq}",
        version_id="v1",
        aws_managed=False,
        attachment_count=0,
        create_date="",
        update_date="",
        document={"Version": "2012-10-17", "Statement": []},
    )


def _message(mid: str, body: str, receives: int) -> dict:
    return {"MessageId": mid, "Body": body, "Attributes": {"ApproximateReceiveCount": str(receives)}}


def test_a_record_is_decoded_with_its_trace_id_and_our_read_excluded() -> None:
    decoded = decode_message(_message("m-1", _record(7).to_json(), 6), own_receives=1)
    assert (decoded.key, decoded.record.trace_id, decoded.receive_count, decoded.error) == (
        _record(7).key,
        "t-7",
        5,
        None,
    )
    assert decoded.cause == RECORD_FAILED_ELSEWHERE


def test_a_poison_body_names_the_parser_error() -> None:
    decoded = decode_message(_message("m-2", json.dumps({"v": 1}), 5))
    assert decoded.key is None
    assert decoded.error.startswith("message field 'policy' must be an object")


def test_groups_by_error_and_receive_count_largest_first() -> None:
    messages = [
        decode_message(_message("a", "x", 5)),
        decode_message(_message("b", "y", 5)),
        decode_message(_message("c", "z", 3)),
        decode_message(_message("d", _record(1).to_json(), 5)),
    ]
    groups = group_by_error(messages)
    assert groups[0][1:] == (5, 2)
    assert groups[0][0].startswith("message body is not JSON")
    assert sorted(g[1:] for g in groups[1:]) == [(3, 1), (5, 1)]
