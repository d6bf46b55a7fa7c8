"""Read policies from IAM with GetAccountAuthorizationDetails.

One call returns up to 1000 policies with every version's document, so 1500 policies
take two calls instead of 1500 GetPolicyVersion calls.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterator
from typing import Any

from pipeline.record import CollectedPolicy

MAX_ITEMS = 1000
# AWS-managed policies live in the "aws" account of every partition (aws, aws-cn, aws-us-gov).
AWS_MANAGED_ARN = re.compile(r"^arn:aws(-[a-z-]+)?:iam::aws:policy/")


def _document(raw: Any) -> dict[str, Any]:
    """boto3 normally decodes policy documents; decode the URL-encoded form if it did not."""
    if isinstance(raw, dict):
        return raw
    return json.loads(urllib.parse.unquote(raw))


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value or "")


def iter_policies(iam: Any, *, include_aws_managed: bool = False) -> Iterator[dict[str, Any]]:
    """Customer-managed policies, plus attached AWS-managed ones when asked for.

    Yields dicts with name, arn, id, version_id, aws_managed, attachment_count, create_date,
    update_date and document (the default version's).
    """
    filters = ["LocalManagedPolicy"] + (["AWSManagedPolicy"] if include_aws_managed else [])
    kwargs: dict[str, Any] = {"Filter": filters, "MaxItems": MAX_ITEMS}
    while True:
        page = iam.get_account_authorization_details(**kwargs)
        for policy in page.get("Policies", []):
            aws_managed = bool(AWS_MANAGED_ARN.match(policy["Arn"]))
            if aws_managed and (not include_aws_managed or policy.get("AttachmentCount", 0) == 0):
                continue
            default = next((v for v in policy.get("PolicyVersionList", []) if v.get("IsDefaultVersion")), None)
            if default is None:
                raise ValueError(f"IAM returned policy {policy['Arn']} without a default version document")
            yield CollectedPolicy(
                # The ARN ends with the name; some emulators omit PolicyName and PolicyId.
                name=policy.get("PolicyName") or policy["Arn"].rsplit("/", 1)[-1],
                arn=policy["Arn"],
                id=policy.get("PolicyId", ""),
                version_id=default["VersionId"],
                aws_managed=aws_managed,
                attachment_count=int(policy.get("AttachmentCount", 0)),
                create_date=_iso(policy.get("CreateDate")),
                update_date=_iso(policy.get("UpdateDate")),
                document=_document(default["Document"]),
            )
        if not page.get("IsTruncated"):
            return
        kwargs["Marker"] = page["Marker"]
