"""The synthetic policy generator: determinism, shape, and the spread of real policies."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import subprocess
import sys
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from pipeline.collection import build_records, synthetic_policies
from pipeline.record import CSV_COLUMNS
from pipeline.synthetic import SYNTHETIC_PATH, SyntheticPolicy, generate_policies, synthetic_arn

SAMPLE = 2000
ROOT = Path(__file__).resolve().parents[1]


def _minified(document: dict) -> str:
    return json.dumps(document, separators=(",", ":"))


def _action_count(statement: dict) -> int:
    value = statement.get("Action", statement.get("NotAction", []))
    return 1 if isinstance(value, str) else len(value)


def _digest(policies: list[SyntheticPolicy]) -> str:
    return hashlib.sha256(json.dumps([asdict(p) for p in policies], sort_keys=True).encode()).hexdigest()


@pytest.fixture(scope="module")
def policies() -> list[SyntheticPolicy]:
    return generate_policies(SAMPLE, seed=0)


@pytest.fixture(scope="module")
def stats(policies: list[SyntheticPolicy]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "size": [len(_minified(p.document)) for p in policies],
            "statements": [len(p.document["Statement"]) for p in policies],
            "actions": [sum(_action_count(s) for s in p.document["Statement"]) for p in policies],
        }
    )


# ------------------------------------------------------------------ determinism


def test_same_count_and_seed_give_identical_policies():
    assert generate_policies(200, seed=5) == generate_policies(200, seed=5)


def test_a_longer_list_extends_a_shorter_one():
    assert generate_policies(300, seed=5)[:40] == generate_policies(40, seed=5)


def test_different_seeds_give_different_policies():
    assert generate_policies(20, seed=1) != generate_policies(20, seed=2)


def test_output_does_not_depend_on_the_hash_seed():
    # GIVEN another interpreter with a different PYTHONHASHSEED
    code = (
        "import hashlib, json; from dataclasses import asdict; from pipeline.synthetic import generate_policies; "
        "print(hashlib.sha256(json.dumps([asdict(p) for p in generate_policies(50, seed=3)], "
        "sort_keys=True).encode()).hexdigest())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    # WHEN it generates the same policies
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    # THEN they are byte-for-byte the ones generated here
    assert out.stdout.strip() == _digest(generate_policies(50, seed=3))


def test_zero_policies_is_an_empty_list():
    assert generate_policies(0) == []


@pytest.mark.parametrize("count", [-1, 1.5, "10", True])
def test_a_bad_count_is_named_in_the_error(count):
    with pytest.raises(ValueError, match="count must be a non-negative integer"):
        generate_policies(count)


# ------------------------------------------------------------------ metadata


def test_names_and_ids_are_unique_and_well_formed(policies):
    names = [p.name for p in policies]
    ids = [p.policy_id for p in policies]
    assert len(set(names)) == len(names)
    assert len(set(ids)) == len(ids)
    for p in policies:
        assert re.fullmatch(r"cidb-synth-\d{6}-[a-z0-9]+-[a-z]+", p.name), f"policy name {p.name!r} is malformed"
        assert len(p.name) <= 128, f"policy {p.name} is longer than IAM's 128 characters"
        assert re.fullmatch(r"ANPA[A-Z0-9]{17}", p.policy_id), f"policy {p.name} has id {p.policy_id!r}"
        assert p.path == SYNTHETIC_PATH
        assert p.version_id in {"v1", "v2", "v3", "v4", "v5"}, f"policy {p.name} has version {p.version_id!r}"
        assert p.attachment_count >= 0


def test_dates_are_iso_utc_and_updates_follow_creation(policies):
    for p in policies:
        created = datetime.strptime(p.create_date, "%Y-%m-%dT%H:%M:%SZ")
        updated = datetime.strptime(p.update_date, "%Y-%m-%dT%H:%M:%SZ")
        assert updated >= created, f"policy {p.name} was updated before it was created"
        if p.version_id == "v1":
            assert updated == created, f"policy {p.name} has one version but two dates"


def test_arn_is_account_path_and_name(policies):
    p = policies[0]
    assert synthetic_arn("123456789012", p) == f"arn:aws:iam::123456789012:policy/cidb/synthetic/{p.name}"


@pytest.mark.parametrize("account", ["12345", "12345678901a", ""])
def test_arn_rejects_a_bad_account_id(policies, account):
    with pytest.raises(ValueError, match="12-digit AWS account id"):
        synthetic_arn(account, policies[0])


# ------------------------------------------------------------------ document shape


def test_every_document_is_a_valid_policy(policies):
    for p in policies:
        doc = json.loads(_minified(p.document))
        assert doc["Version"] == "2012-10-17", f"policy {p.name} has no Version"
        assert isinstance(doc["Statement"], list) and doc["Statement"], f"policy {p.name} has no statements"
        sids = [s["Sid"] for s in doc["Statement"] if "Sid" in s]
        assert len(set(sids)) == len(sids), f"policy {p.name} repeats a Sid"
        for s in doc["Statement"]:
            assert s["Effect"] in {"Allow", "Deny"}, f"policy {p.name} has Effect {s['Effect']!r}"
            assert ("Action" in s) != ("NotAction" in s), f"policy {p.name} needs exactly one of Action/NotAction"
            assert _action_count(s) >= 1, f"policy {p.name} has a statement without actions"
            assert "Resource" in s, f"policy {p.name} has a statement without Resource"
            if "Sid" in s:
                assert s["Sid"].isascii() and s["Sid"].isalnum(), f"policy {p.name} has Sid {s['Sid']!r}"
            for op, clause in s.get("Condition", {}).items():
                assert isinstance(clause, dict) and clause, f"policy {p.name} has an empty {op} condition"


def test_actions_look_like_service_prefix_and_name(policies):
    pattern = re.compile(r"[a-z0-9-]+:[A-Za-z*]+")
    for p in policies[:300]:
        for s in p.document["Statement"]:
            value = s.get("Action", s.get("NotAction"))
            for action in [value] if isinstance(value, str) else value:
                assert pattern.fullmatch(action), f"policy {p.name} has action {action!r}"


def test_about_forty_percent_of_statements_carry_a_condition(policies):
    statements = [s for p in policies for s in p.document["Statement"]]
    share = sum("Condition" in s for s in statements) / len(statements)
    assert 0.30 <= share <= 0.50, f"condition share {share:.2f}"


def test_some_statements_use_not_action_and_resource_star(policies):
    statements = [s for p in policies for s in p.document["Statement"]]
    assert any("NotAction" in s for s in statements)
    star = sum(s["Resource"] == "*" for s in statements) / len(statements)
    assert 0.3 <= star <= 0.8, f"share of Resource '*' is {star:.2f}"


def test_many_services_appear(policies):
    prefixes = {
        action.split(":")[0]
        for p in policies
        for s in p.document["Statement"]
        for action in ([s["Action"]] if isinstance(s.get("Action"), str) else s.get("Action", []))
    }
    assert len(prefixes) >= 20, sorted(prefixes)


# ------------------------------------------------------------------ the spread of real policies


def test_document_size_follows_real_policies(stats):
    q = stats["size"].quantile([0.5, 0.9, 0.99])
    assert 400 <= q[0.5] <= 1000, f"median size {q[0.5]:.0f} B"
    assert 2500 <= q[0.9] <= 6000, f"p90 size {q[0.9]:.0f} B"
    assert 8000 <= q[0.99] <= 30000, f"p99 size {q[0.99]:.0f} B"
    assert stats["size"].max() > 30_000, "no giant policy (> 30 KB) in the sample"
    assert stats["size"].max() <= 140_000, f"largest policy is {stats['size'].max()} B"
    assert (stats["size"] > 6144).any(), "nothing exceeds the customer-managed 6,144-character limit"


def test_statements_per_document_follow_real_policies(stats):
    q = stats["statements"].quantile([0.5, 0.9])
    assert 1 <= q[0.5] <= 3, f"median statements {q[0.5]}"
    assert 7 <= q[0.9] <= 16, f"p90 statements {q[0.9]}"
    assert stats["statements"].max() <= 162


def test_actions_per_document_follow_real_policies(stats):
    q = stats["actions"].quantile([0.5, 0.9])
    assert 6 <= q[0.5] <= 16, f"median actions {q[0.5]}"
    assert 35 <= q[0.9] <= 80, f"p90 actions {q[0.9]}"


# ------------------------------------------------------------------ CSV quoting


def test_some_documents_exercise_csv_quoting(policies):
    docs = [_minified(p.document) for p in policies]
    assert any('\\"' in d for d in docs), "no double quote inside a string value"
    assert any("\\n" in d for d in docs), "no newline inside a string value"
    assert any("\\u" in d for d in docs), "no non-ASCII text"
    assert any(re.search(r'"[^"]*,[^"]*"', d.replace('\\"', "")) for d in docs), "no comma inside a string value"


def test_awkward_documents_survive_a_csv_round_trip():
    # GIVEN the policies whose documents carry quotes, newlines or non-ASCII text, as the collector builds them
    collected = synthetic_policies(SAMPLE, 0, "123456789012")
    awkward = [p for p in collected if re.search(r'\\"|\\n|\\u', _minified(p.document))]
    assert awkward
    records = build_records(awkward, run_id="run-1", account_id="123456789012")
    # WHEN they are written as CSV rows and read back
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    writer.writerows(r.to_row() for r in records)
    rows = list(csv.DictReader(io.StringIO(buffer.getvalue())))
    # THEN every document comes back unchanged
    assert [json.loads(row["document"]) for row in rows] == [p.document for p in awkward]
