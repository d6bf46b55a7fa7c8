"""IAM enforced in the embedded emulator: each function signs with its own role, as on Lambda.

GIVEN a moto server started with enforcement and the roles the stack attaches (iam_policies)
WHEN the real handlers run THEN a clean run has no denied call, and a role that lacks a grant
its code needs shows up as counted denials, an alarm and a failed run, never silently.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from loadtest.analysis.summary import problems
from loadtest.emulator.aws_session import AwsSession
from loadtest.emulator.moto_server import REGION, MotoServer
from loadtest.emulator.provision import provision
from loadtest.emulator.roles import FunctionRoles, RoleError, admin_credentials, provision_roles, revoke
from loadtest.run.job import LoadTestResult, run_loadtest
from loadtest.run.local_target import iam_mode
from loadtest.run.options import LoadTestOptions
from pipeline.spec import build_spec

POLICIES = 40
# Parts of 10 rows: a compaction, and so a lock release, every 10 records.
SMALL = {"queue.batch_size": 10, "queue.batching_window_seconds": 1, "output.rows_per_file": 10}


@pytest.fixture(scope="module")
def enforced() -> Iterator[tuple[AwsSession, FunctionRoles, str]]:
    with MotoServer(iam=True) as server:
        spec = build_spec("tuned", environment="iamtest")
        admin = AwsSession(server.endpoint_url, credentials=admin_credentials(server.endpoint_url, REGION))
        outputs = provision(admin, spec)
        yield admin, provision_roles(admin, spec, outputs), spec.bucket_name


def _as(roles: FunctionRoles, key: str, endpoint_url: str) -> AwsSession:
    return AwsSession(endpoint_url, credentials=roles.credentials(key, f"test-{key}"))


def test_a_role_may_write_under_its_prefixes_only(enforced: tuple[AwsSession, FunctionRoles, str]) -> None:
    admin, roles, bucket = enforced
    s3 = _as(roles, "reporter", admin.endpoint_url).client("s3")
    s3.put_object(Bucket=bucket, Key="reports/allowed", Body=b"1")
    with pytest.raises(ClientError) as denied:
        s3.put_object(Bucket=bucket, Key="runs/not-the-reporters", Body=b"1")
    assert denied.value.response["Error"]["Code"] == "AccessDenied"


def test_delete_objects_is_judged_key_by_key_and_a_denial_is_counted(
    enforced: tuple[AwsSession, FunctionRoles, str],
) -> None:
    # IAM authorises DeleteObjects as s3:DeleteObject on each key; moto alone checks the bucket ARN, failing every key.
    admin, roles, bucket = enforced
    for key in ("segments/a", "runs/b"):
        admin.client("s3").put_object(Bucket=bucket, Key=key, Body=b"1")
    reporter = _as(roles, "reporter", admin.endpoint_url)
    s3 = reporter.client("s3")
    assert s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "segments/a"}]}).get("Errors", []) == []
    assert reporter.counter.denied == {}
    errors = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "runs/b"}]}).get("Errors", [])
    assert [e["Code"] for e in errors] == ["AccessDenied"]
    assert reporter.counter.denied == {"s3.DeleteObjects": 1}


def test_unsigned_and_test_credentials_are_refused_once_enforced(
    enforced: tuple[AwsSession, FunctionRoles, str],
) -> None:
    admin, _, bucket = enforced
    with pytest.raises(ClientError) as refused:
        AwsSession(admin.endpoint_url).client("s3").list_objects_v2(Bucket=bucket)
    assert refused.value.response["Error"]["Code"] == "InvalidAccessKeyId"


def test_a_json_protocol_denial_reads_as_access_denied(enforced: tuple[AwsSession, FunctionRoles, str]) -> None:
    # The reporter may UpdateItem the run table, not Scan it; moto's XML error would read as code "403".
    admin, roles, _ = enforced
    table = build_spec("tuned", environment="iamtest").run_table_name
    with pytest.raises(ClientError) as denied:
        _as(roles, "reporter", admin.endpoint_url).client("dynamodb").scan(TableName=table)
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "dynamodb:Scan on resource: arn:aws:dynamodb:" in denied.value.response["Error"]["Message"]


def test_revoking_a_grant_the_policy_lacks_names_it(enforced: tuple[AwsSession, FunctionRoles, str]) -> None:
    _, roles, _ = enforced
    with pytest.raises(RoleError, match=r"reporter:s3:PutBucketPolicy.*does not grant s3:PutBucketPolicy"):
        revoke(roles.policies, ["reporter:s3:PutBucketPolicy"])
    with pytest.raises(RoleError, match="must be one of"):
        revoke(roles.policies, ["notifier:sqs:SendMessage"])


def test_no_iam_and_an_outside_emulator_say_enforcement_is_off() -> None:
    assert iam_mode(LoadTestOptions()) == "enforced"
    assert iam_mode(LoadTestOptions(iam=False)) == "off (--no-iam)"
    assert iam_mode(LoadTestOptions(endpoint_url="http://127.0.0.1:1")).startswith("off (--endpoint-url")
    assert LoadTestOptions(iam=False, revoke=("reporter:s3:DeleteObject",)).problems()


def test_the_emulator_builds_its_roles_without_pulumi() -> None:
    # The policy builders left stack/ (whose __init__ imports Pulumi) so that the load test can use them.
    code = (
        "import sys, iam_policies, loadtest.emulator.roles, loadtest.run.local_target; "
        "sys.exit(any(m.startswith('pulumi') or m == 'stack' for m in sys.modules))"
    )
    root = Path(__file__).resolve().parents[1]
    assert subprocess.run([sys.executable, "-c", code], cwd=root, check=False).returncode == 0, (
        "the emulator's roles imported pulumi or stack/"
    )


def _run(tmp: Path, **options: object) -> LoadTestResult:
    return run_loadtest(LoadTestOptions(policies=POLICIES, overrides=SMALL, idle_seconds=2, out=tmp, **options))


def test_clean_tuned_run_has_no_denied_call(tmp_path: Path) -> None:
    result = _run(tmp_path)
    assert result.summary["iam"] == {"mode": "enforced", "denied": 0, "denied_by_function": {}}
    assert result.ok, result.problems


def test_reporter_without_delete_object_fails_its_lock_releases_loudly(tmp_path: Path) -> None:
    # GIVEN the reporter's role lacks s3:DeleteObject WHEN a run compacts THEN each release is denied and counted
    result = _run(tmp_path, revoke=("reporter:s3:DeleteObject",))
    s = result.summary
    denied = s["iam"]["denied_by_function"]
    assert denied.get("reporter", {}).get("s3.DeleteObject", 0) >= 1, denied
    assert s["lock"]["release_failed"] >= 1, s["lock"]
    assert any(a.endswith("lock-release-failed-warning") for a in s["alarms_fired"]), s["alarms_fired"]
    assert any(p.startswith("IAM denied") and "reporter s3.DeleteObject" in p for p in problems(s)), problems(s)
    assert not result.ok and result.exit_code == 1


def test_collector_without_account_read_fails_with_access_denied(tmp_path: Path) -> None:
    result = _run(tmp_path, source="iam", revoke=("collector:iam:GetAccountAuthorizationDetails",))
    error = result.summary["producer_error"] or ""
    assert "AccessDenied" in error and "iam:GetAccountAuthorizationDetails" in error, error
    assert result.summary["iam"]["denied_by_function"] == {"collector": {"iam.GetAccountAuthorizationDetails": 1}}
    assert result.exit_code == 1
