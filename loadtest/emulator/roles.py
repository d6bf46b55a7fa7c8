"""The functions' roles in the emulator, with exactly the inline policies the Pulumi program attaches.

moto enforces identity policies once the ``INITIAL_NO_AUTH_ACTION_COUNT`` unauthenticated calls
it allows are spent (:class:`loadtest.emulator.moto_server.MotoServer` with ``iam=True``). The
harness spends them on an admin user of its own, then creates one role per function from
:func:`iam_policies.function_statements` and :func:`iam_policies.function_policy`, with the ARNs
the emulator gave the deployment's resources. A function instance, like a Lambda sandbox, gets
credentials from ``sts:AssumeRole`` on its role when it starts.

Example::

    admin = admin_credentials(moto.endpoint_url, "us-east-1")
    roles = provision_roles(AwsSession(moto.endpoint_url, credentials=admin), spec, outputs)
    roles.credentials("reporter", "instance-1")  # AWS_ACCESS_KEY_ID, ... of an assumed-role session
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import boto3

import iam_policies
from iam_policies import Document
from ops.outputs import StackOutputs
from pipeline.spec import DeploymentSpec

HARNESS_USER = "cidb-loadtest-harness"
# CreateUser, PutUserPolicy and CreateAccessKey: the harness's admin user is all moto lets through unsigned.
FREE_CALLS = 3
FUNCTION_KEYS = ("collector", "reporter", "verifier")  # the order of DeploymentSpec.functions


class RoleError(ValueError):
    """A requested change to a role's policy does not fit the policy."""


def admin_credentials(endpoint_url: str, region: str) -> dict[str, str]:
    """Spend the emulator's free calls on the harness's admin user; its access key signs set-up and reconciliation."""
    iam = boto3.client(
        "iam", endpoint_url=endpoint_url, region_name=region, aws_access_key_id="bootstrap", aws_secret_access_key="-"
    )
    iam.create_user(UserName=HARNESS_USER)
    admin = iam_policies.document(iam_policies.allow("HarnessAdministers", ["*"], ["*"]))
    iam.put_user_policy(UserName=HARNESS_USER, PolicyName="admin", PolicyDocument=json.dumps(admin))
    key = iam.create_access_key(UserName=HARNESS_USER)["AccessKey"]
    return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}


def emulator_trust_policy(harness_arn: str) -> Document:
    """Lambda's trust policy with the harness beside the service, since the harness plays Lambda when it assumes.

    One statement with both principals: moto 5.2 answers AssumeRole with HTTP 500 when a trust
    statement names only a Service.
    """
    (statement,) = iam_policies.lambda_trust_policy()["Statement"]
    return iam_policies.document({**statement, "Principal": {**statement["Principal"], "AWS": harness_arn}})


def function_policies(spec: DeploymentSpec, outputs: StackOutputs, account_id: str) -> dict[str, Document]:
    """Each function's inline policy as the stack attaches it, with the emulator's ARNs."""
    region = outputs.region
    statements = iam_policies.function_statements(
        topic_arn=outputs.topic_arn,
        # The emulator's topic is not encrypted: no KMS call is made, the statement is kept as deployed.
        key_arn=f"arn:aws:kms:{region}:{account_id}:key/{spec.topic_name}",
        queue_arn=outputs.queue_arn,
        table_arn=f"arn:aws:dynamodb:{region}:{account_id}:table/{outputs.run_table_name}",
        bucket_arn=f"arn:aws:s3:::{outputs.bucket_name}",
    )
    return {
        key: iam_policies.function_policy(
            statements[key],
            log_stream_arn=f"arn:aws:logs:{region}:{account_id}:log-group:{fn.log_group}:*",
            tracing=spec.tracing,
        )
        for key, fn in zip(FUNCTION_KEYS, spec.functions, strict=True)
    }


def revoke(policies: dict[str, Document], revoked: Sequence[str]) -> dict[str, Document]:
    """The policies without each ``FUNCTION:ACTION`` in ``revoked`` (a role that lacks a grant, for tests)."""
    out = json.loads(json.dumps(policies))
    for item in revoked:
        key, _, action = item.partition(":")
        if key not in out:
            raise RoleError(f"--revoke {item!r}: the function must be one of {FUNCTION_KEYS}")
        statements = out[key]["Statement"]
        if not any(action in s["Action"] for s in statements):
            raise RoleError(f"--revoke {item!r}: the {key}'s policy does not grant {action}")
        for s in statements:
            s["Action"] = [a for a in s["Action"] if a != action]
        out[key]["Statement"] = [s for s in statements if s["Action"]]
    return out


@dataclass(frozen=True)
class FunctionRoles:
    """The three roles, and assumed-role credentials for whoever acts as one of them."""

    sts: Any
    arns: dict[str, str]
    policies: dict[str, Document]

    def credentials(self, key: str, session_name: str) -> dict[str, str]:
        """A fresh assumed-role session for ``key``'s role, as Lambda gives each sandbox."""
        c = self.sts.assume_role(RoleArn=self.arns[key], RoleSessionName=session_name)["Credentials"]
        return {
            "AWS_ACCESS_KEY_ID": c["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": c["SecretAccessKey"],
            "AWS_SESSION_TOKEN": c["SessionToken"],
        }


def provision_roles(
    session: Any, spec: DeploymentSpec, outputs: StackOutputs, *, revoked: Sequence[str] = ()
) -> FunctionRoles:
    """Create each function's role with its policy; ``session`` must be the harness's admin."""
    iam = session.client("iam")
    harness_arn = iam.get_user(UserName=HARNESS_USER)["User"]["Arn"]
    account_id = harness_arn.split(":")[4]
    policies = revoke(function_policies(spec, outputs, account_id), revoked)
    arns = {}
    for key, fn in zip(FUNCTION_KEYS, spec.functions, strict=True):
        role = iam.create_role(
            RoleName=f"{fn.name}-role", AssumeRolePolicyDocument=json.dumps(emulator_trust_policy(harness_arn))
        )
        iam.put_role_policy(
            RoleName=f"{fn.name}-role", PolicyName=f"{fn.name}-policy", PolicyDocument=json.dumps(policies[key])
        )
        arns[key] = role["Role"]["Arn"]
    return FunctionRoles(session.client("sts"), arns, policies)
