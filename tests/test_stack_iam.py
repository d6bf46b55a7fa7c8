"""IAM: no wildcards, no "*" resource without a reason, and each role gets exactly its calls.

The walker reads every document the stack creates (role trust and inline policies, queue
policy, bucket policy, key policy), so a policy added later is checked without a new test.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi_mocks
import pytest
from pulumi_mocks import Deployment, Resource, deploy

from loadtest.emulator.roles import function_policies
from ops.target import spec_outputs

# Actions allowed on Resource "*": the API has no resource-level permissions.
STAR_RESOURCE_EXCEPTIONS = {
    "iam:GetAccountAuthorizationDetails": "IAM has no resource-level permissions for this account-wide read",
    "xray:PutTraceSegments": "X-Ray has no resource-level permissions",
    "xray:PutTelemetryRecords": "X-Ray has no resource-level permissions",
}
KEY_POLICY = ("aws:kms/key:Key", "policy")  # in a key policy, Resource "*" means the key itself
OPERATORS = [
    f"arn:aws:iam::{pulumi_mocks.ACCOUNT}:role/cidb-operator",
    f"arn:aws:iam::{pulumi_mocks.ACCOUNT}:user/load-tester",
]


@pytest.fixture(scope="module")
def tuned() -> Deployment:
    return deploy()


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _narrow_resource(resource: str) -> bool:
    """A concrete ARN, or one whose only wildcard selects S3 objects under a prefix or a log group's streams."""
    if "*" not in resource and "?" not in resource:
        return True
    head, star = resource[:-1], resource[-1]
    is_s3_objects = resource.startswith("arn:aws:s3:::") and resource.endswith("/*")
    is_log_streams = ":log-group:" in resource and resource.endswith(":*")
    return star == "*" and "*" not in head and "?" not in head and (is_s3_objects or is_log_streams)


def wildcard_problems(resource: Resource, prop: str, document: dict[str, Any]) -> list[str]:
    problems = []
    for index, statement in enumerate(_list(document["Statement"])):
        where = f"{resource.urn} {prop} statement {statement.get('Sid', index)!r}"
        if statement["Effect"] != "Allow":
            continue  # a Deny only takes access away; a broad one is the strict direction
        problems += [f"{where}: {key} inverts the match" for key in ("NotAction", "NotResource") if key in statement]
        actions = _list(statement.get("Action", []))
        problems += [f"{where}: wildcard action {a!r}" for a in actions if "*" in a or "?" in a]
        principal = statement.get("Principal")
        if principal == "*" or (isinstance(principal, dict) and "*" in _list(principal.get("AWS", []))):
            problems.append(f"{where}: allows any principal")
        for arn in _list(statement.get("Resource", [])):
            if arn == "*":
                if (resource.type, prop) == KEY_POLICY:
                    continue
                problems += [
                    f"{where}: {a!r} on Resource '*' is not an allowed exception"
                    for a in actions
                    if a not in STAR_RESOURCE_EXCEPTIONS
                ]
            elif not _narrow_resource(arn):
                problems.append(f"{where}: wildcard resource {arn!r}")
    return problems


def grants(document: dict[str, Any]) -> dict[str, set[str]]:
    """Action -> resources an Allow document grants."""
    out: dict[str, set[str]] = {}
    for statement in _list(document["Statement"]):
        for action in _list(statement["Action"]):
            out.setdefault(action, set()).update(_list(statement["Resource"]))
    return out


def test_walker_sees_every_kind_of_policy(tuned: Deployment) -> None:
    seen = {(r.type, prop) for r, prop, _ in tuned.policy_documents()}
    expected = {
        ("aws:iam/role:Role", "assumeRolePolicy"),
        ("aws:iam/rolePolicy:RolePolicy", "policy"),
        ("aws:sqs/queuePolicy:QueuePolicy", "policy"),
        ("aws:s3/bucketPolicy:BucketPolicy", "policy"),
        KEY_POLICY,
    }
    assert expected <= seen, f"the walker missed policy kinds {expected - seen}; it found {seen}"
    role_policies = [r.urn for r, _, _ in tuned.policy_documents() if r.type == "aws:iam/rolePolicy:RolePolicy"]
    assert len(role_policies) == 3, f"expected one inline policy per function, found {role_policies}"


def test_no_policy_has_a_wildcard_action_or_unexplained_star_resource(tuned: Deployment) -> None:
    problems = [p for r, prop, doc in tuned.policy_documents() for p in wildcard_problems(r, prop, doc)]
    assert not problems, "over-broad IAM:\n  " + "\n  ".join(problems)


def _role_grants(deployment: Deployment, key: str) -> tuple[Resource, dict[str, set[str]]]:
    policy = deployment.one("aws:iam/rolePolicy:RolePolicy", f"-{key}-policy")
    return policy, grants(deployment.document(policy))


def _expected(deployment: Deployment, key: str) -> dict[str, set[str]]:
    o = deployment.outputs
    bucket = f"arn:aws:s3:::{o['bucket_name']}"
    table = deployment.one("aws:dynamodb/table:Table").state["arn"]
    key_arn = deployment.one("aws:kms/key:Key").state["arn"]
    log_streams = deployment.one("aws:cloudwatch/logGroup:LogGroup", f"-{key}-logs").state["arn"] + ":*"
    # Segments in, parts and locks out: what every compacting function needs (pipeline.compaction).
    compaction = {
        "s3:GetObject": {f"{bucket}/reports/*", f"{bucket}/segments/*"},
        "s3:PutObject": {f"{bucket}/reports/*", f"{bucket}/segments/*"},
        "s3:PutObjectTagging": {f"{bucket}/reports/*"},
        "s3:DeleteObject": {f"{bucket}/reports/*", f"{bucket}/segments/*"},
    }
    per_function = {
        "collector": {
            "iam:GetAccountAuthorizationDetails": {"*"},
            "sns:Publish": {o["topic_arn"]},
            "kms:GenerateDataKey": {key_arn},
            "kms:Decrypt": {key_arn},
            "dynamodb:PutItem": {table},
            "s3:PutObject": {f"{bucket}/oversize/*", f"{bucket}/runs/*"},
        },
        "reporter": {
            "sqs:ReceiveMessage": {o["queue_arn"]},
            "sqs:DeleteMessage": {o["queue_arn"]},
            "sqs:GetQueueAttributes": {o["queue_arn"]},
            "sqs:ChangeMessageVisibility": {o["queue_arn"]},  # a failed message's short visibility
            "sqs:GetQueueUrl": {o["queue_arn"]},
            **compaction,
            "s3:GetObject": {*compaction["s3:GetObject"], f"{bucket}/oversize/*"},
            "s3:ListBucket": {bucket},
            "dynamodb:UpdateItem": {table},
        },
        "verifier": {
            "dynamodb:Scan": {table},
            "dynamodb:GetItem": {table},
            "dynamodb:UpdateItem": {table},
            **compaction,  # the flush before each check
            "s3:GetObject": {*compaction["s3:GetObject"], f"{bucket}/runs/*"},
            "s3:ListBucket": {bucket},
        },
    }
    common = {
        "logs:CreateLogStream": {log_streams},
        "logs:PutLogEvents": {log_streams},
        "xray:PutTraceSegments": {"*"},
        "xray:PutTelemetryRecords": {"*"},
    }
    return {**per_function[key], **common}


@pytest.mark.parametrize("key", ["collector", "reporter", "verifier"])
def test_each_role_gets_exactly_the_calls_its_handler_makes(tuned: Deployment, key: str) -> None:
    policy, granted = _role_grants(tuned, key)
    expected = _expected(tuned, key)
    extra = {a: sorted(r) for a, r in granted.items() if expected.get(a) != r}
    missing = sorted(set(expected) - set(granted))
    assert granted == expected, (
        f"{policy.urn}: differs from the handler's calls; extra/changed {extra}, missing {missing}"
    )


def test_each_role_is_assumable_by_lambda_only(tuned: Deployment) -> None:
    for role in tuned.of_type("aws:iam/role:Role"):
        principals = [s["Principal"] for s in tuned.document(role)["Statement"]]
        assert principals == [{"Service": "lambda.amazonaws.com"}], f"{role.urn} trust policy allows {principals}"


def test_untraced_functions_get_no_xray_permissions() -> None:
    deployment = deploy({"tracing": "false"})
    for key in ("collector", "reporter", "verifier"):
        policy, granted = _role_grants(deployment, key)
        assert not [a for a in granted if a.startswith("xray:")], f"{policy.urn} grants X-Ray without tracing"


def test_queue_accepts_messages_only_from_this_topic(tuned: Deployment) -> None:
    policy = tuned.one("aws:sqs/queuePolicy:QueuePolicy", "-queue-policy")
    [statement] = tuned.document(policy)["Statement"]
    assert statement["Principal"] == {"Service": "sns.amazonaws.com"}, policy.urn
    assert statement["Action"] == ["sqs:SendMessage"], policy.urn
    assert statement["Resource"] == [tuned.outputs["queue_arn"]], policy.urn
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": tuned.outputs["topic_arn"]}}, (
        f"{policy.urn} must limit delivery to this topic"
    )


def test_dlq_accepts_the_subscriptions_redrive_only_from_this_topic(tuned: Deployment) -> None:
    """GIVEN the subscription redrives to the DLQ WHEN SNS sends there THEN the DLQ policy allows this topic only."""
    policy = tuned.one("aws:sqs/queuePolicy:QueuePolicy", "-dlq-policy")
    assert policy.state["queueUrl"] == tuned.outputs["dlq_url"], policy.urn
    [statement] = tuned.document(policy)["Statement"]
    assert statement["Principal"] == {"Service": "sns.amazonaws.com"}, policy.urn
    assert (statement["Action"], statement["Resource"]) == (["sqs:SendMessage"], [tuned.outputs["dlq_arn"]]), policy.urn
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": tuned.outputs["topic_arn"]}}, (
        f"{policy.urn} must limit redrive to this topic"
    )


def test_subscription_redrives_undeliverable_messages_to_the_dlq(tuned: Deployment) -> None:
    subscription = tuned.one("aws:sns/topicSubscription:TopicSubscription")
    assert json.loads(subscription.state["redrivePolicy"]) == {"deadLetterTargetArn": tuned.outputs["dlq_arn"]}, (
        f"{subscription.urn}: a message SNS cannot deliver must reach the DLQ, not vanish"
    )
    assert subscription.state["endpoint"] == tuned.outputs["queue_arn"], subscription.urn


def test_topic_key_is_rotated_and_usable_only_for_this_topic(tuned: Deployment) -> None:
    key = tuned.one("aws:kms/key:Key")
    topic = tuned.one("aws:sns/topic:Topic")
    assert key.state["enableKeyRotation"] is True, f"{key.urn} must rotate"
    assert topic.state["kmsMasterKeyId"] == key.state["arn"], f"{topic.urn} must be encrypted with {key.urn}"
    by_sid = {s["Sid"]: s for s in tuned.document(key)["Statement"]}
    assert by_sid["AccountAdministersKey"]["Principal"] == {"AWS": f"arn:aws:iam::{pulumi_mocks.ACCOUNT}:root"}, (
        f"{key.urn}: the account must administer the key"
    )
    collector_role = tuned.one("aws:iam/role:Role", "-collector-role").state["arn"]
    for sid, principal in (
        ("SnsUsesKeyForTopic", {"Service": "sns.amazonaws.com"}),
        ("CollectorPublishesToTopic", {"AWS": collector_role}),
    ):
        statement = by_sid[sid]
        assert statement["Principal"] == principal, f"{key.urn} {sid}"
        assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"], f"{key.urn} {sid}"
        assert statement["Condition"] == {
            "StringEquals": {"kms:EncryptionContext:aws:sns:topicArn": tuned.outputs["topic_arn"]}
        }, f"{key.urn} {sid} must be limited to this topic"


@pytest.fixture(scope="module")
def with_operators() -> Deployment:
    return deploy({"loadTestPrincipalArns": json.dumps(OPERATORS)})


def test_load_test_principals_may_use_the_topic_key_for_this_topic_only(with_operators: Deployment) -> None:
    key = with_operators.one("aws:kms/key:Key")
    [statement] = [s for s in with_operators.document(key)["Statement"] if s["Sid"] == "LoadTestPublishesToTopic"]
    assert statement["Principal"] == {"AWS": OPERATORS}, f"{key.urn} must name cidb:loadTestPrincipalArns"
    assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"], (
        f"{key.urn}: load-test principals may only encrypt for and decrypt from the topic"
    )
    assert statement["Condition"] == {
        "StringEquals": {"kms:EncryptionContext:aws:sns:topicArn": with_operators.outputs["topic_arn"]}
    }, f"{key.urn}: the load-test statement must be limited to this topic"


def test_key_policy_names_no_load_test_principal_unless_configured(tuned: Deployment) -> None:
    key = tuned.one("aws:kms/key:Key")
    sids = [s["Sid"] for s in tuned.document(key)["Statement"]]
    assert "LoadTestPublishesToTopic" not in sids, f"{key.urn}: unset cidb:loadTestPrincipalArns must add nothing"


def test_policies_stay_narrow_with_load_test_principals(with_operators: Deployment) -> None:
    problems = [p for r, prop, doc in with_operators.policy_documents() for p in wildcard_problems(r, prop, doc)]
    assert not problems, "over-broad IAM with cidb:loadTestPrincipalArns set:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("key", ["collector", "reporter", "verifier"])
def test_the_emulator_provisions_each_role_with_the_stacks_own_statements(tuned: Deployment, key: str) -> None:
    # GIVEN the documents the emulator builds for the same spec (ARNs differ: moto names resources its own way)
    spec = tuned.pipeline.spec
    emulated = function_policies(spec, spec_outputs(spec), pulumi_mocks.ACCOUNT)[key]
    # THEN every statement has the same Sid and actions, in the same order
    policy = tuned.one("aws:iam/rolePolicy:RolePolicy", f"-{key}-policy")
    deployed = [(s["Sid"], s["Action"]) for s in tuned.document(policy)["Statement"]]
    assert deployed == [(s["Sid"], s["Action"]) for s in emulated["Statement"]], (
        f"{policy.urn}: the emulator's {key} role differs from the deployed one"
    )
