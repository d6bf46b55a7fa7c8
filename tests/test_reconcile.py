"""Reconciliation counts, each tested with a case that has some.

GIVEN expected keys, CSV parts and DLQ messages WHEN reconciled THEN every record is counted
in exactly one place: written, DLQ only, written-and-DLQ, queued, in flight, or lost.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.reconcile import QueueContents, Reconciliation, keys_of_bodies, reconcile
from pipeline.csv_store import rows_to_csv


def _part(path: Path, keys: list[str]) -> Path:
    path.write_text(rows_to_csv([{"record_key": k} for k in keys], header=True))
    return path


@pytest.fixture
def mixed(tmp_path: Path) -> Reconciliation:
    expected = [f"k{i}" for i in range(11)]
    parts = [
        _part(tmp_path / "p1.csv", ["k0", "k1", "k2", "k3"]),
        _part(tmp_path / "p2.csv", ["k3", "k4", "k5", "stray"]),  # k3 twice, one key nobody expected
    ]
    poison = {
        "message_id": "m-1",
        "receive_count": 5,
        "error": "message body is not JSON",
        "first_bytes": '{"v": 1, "run_id": ',
    }
    dlq = QueueContents(["k5", "k6", "k7", "k7"], [poison])  # k5 is written too; k7 dead-lettered twice
    return reconcile(expected, parts, dlq, queued_keys=["k8", "k1"], in_flight_keys=["k10", "k0"])


def test_written_rows_and_unique_rows(mixed: Reconciliation) -> None:
    assert (mixed.rows_written, mixed.unique_rows, mixed.output_files) == (8, 7, 2)


def test_duplicates_count_every_extra_row(mixed: Reconciliation) -> None:
    assert (mixed.duplicates, mixed.duplicate_keys) == (1, ["k3"])


def test_unexpected_rows_are_counted(mixed: Reconciliation) -> None:
    assert mixed.unexpected == 1


def test_written_and_dlq_is_its_own_category(mixed: Reconciliation) -> None:
    assert (mixed.written_and_dlq, mixed.written_and_dlq_keys) == (1, ["k5"])
    assert "k5" not in mixed.dlq_keys and "k5" not in mixed.missing_keys


def test_dlq_counts_messages_not_written_plus_unparseable(mixed: Reconciliation) -> None:
    assert mixed.dlq == 3 + 1, "k6, k7 twice, and one unparseable message"
    assert mixed.dlq_keys == ["k6", "k7"]


def test_records_still_queued_are_not_lost(mixed: Reconciliation) -> None:
    assert (mixed.queued, mixed.queued_keys) == (1, ["k8"]), "k1 is written already; only k8 is waiting"


def test_records_in_flight_at_the_end_are_not_lost(mixed: Reconciliation) -> None:
    assert (mixed.in_flight, mixed.in_flight_keys) == (1, ["k10"]), "k0 is written already; only k10 is in flight"


def test_lost_is_expected_minus_written_dlq_queued_and_in_flight(mixed: Reconciliation) -> None:
    assert (mixed.lost, mixed.missing_keys) == (1, ["k9"])


def test_unparseable_dlq_messages_are_named(mixed: Reconciliation) -> None:
    [poison] = mixed.dlq_unparseable_messages
    assert (poison["message_id"], poison["receive_count"], poison["first_bytes"]) == ("m-1", 5, '{"v": 1, "run_id": ')


def test_keys_of_in_flight_bodies_split_records_from_poison() -> None:
    contents = keys_of_bodies({"m-1": "not json"})
    assert (contents.keys, [m["message_id"] for m in contents.unparseable]) == ([], ["m-1"])


def test_a_clean_run_has_zero_of_every_failure_count(tmp_path: Path) -> None:
    clean = reconcile(["a", "b"], [_part(tmp_path / "p.csv", ["a", "b"])], QueueContents())
    failures = (
        clean.lost,
        clean.duplicates,
        clean.dlq,
        clean.written_and_dlq,
        clean.unexpected,
        clean.queued,
        clean.in_flight,
    )
    assert failures == (0, 0, 0, 0, 0, 0, 0)


def test_a_damaged_message_that_names_an_expected_record_counts_as_that_records_dlq_entry(tmp_path: Path) -> None:
    damaged = {"message_id": "m-1", "error": "wrong type", "claimed_key": "b"}
    stranger = {"message_id": "m-2", "error": "wrong type", "claimed_key": "not-expected"}
    result = reconcile(["a", "b"], [_part(tmp_path / "p.csv", ["a"])], QueueContents([], [damaged, stranger]))
    assert (result.lost, result.dlq_keys, result.dlq, result.dlq_unparseable) == (0, ["b"], 2, 1)
    assert [m["message_id"] for m in result.dlq_unparseable_messages] == ["m-2"]
