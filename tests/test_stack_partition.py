"""Partitions: every ARN the stack writes takes its partition from the provider, not "arn:aws:".

GIVEN the mocks answer getPartition with "aws-cn" (and build their ARNs with it), WHEN the
program runs, THEN no policy document and no other input names the commercial partition, so the
same program deploys to AWS China and AWS GovCloud (US).
"""

from __future__ import annotations

import json

import pulumi_mocks
import pytest
from nested import strings
from pulumi_mocks import Deployment, deploy

PARTITION = "aws-cn"
COMMERCIAL = "arn:aws:"
OPERATOR = f"arn:{PARTITION}:iam::{pulumi_mocks.ACCOUNT}:role/cidb-operator"
FUNCTION = "aws:lambda/function:Function"


@pytest.fixture(scope="module")
def china() -> Deployment:
    return deploy({"loadTestPrincipalArns": json.dumps([OPERATOR])}, partition=PARTITION)


def test_no_policy_document_names_the_commercial_partition(china: Deployment) -> None:
    documents = [(r, prop, json.dumps(doc)) for r, prop, doc in china.policy_documents()]
    assert any(f"arn:{PARTITION}:" in text for _, _, text in documents), "the mocks did not switch the partition"
    problems = [f"{r.urn} {prop}" for r, prop, text in documents if COMMERCIAL in text]
    assert not problems, f"policy documents that hard-code {COMMERCIAL!r} in {PARTITION}:\n  " + "\n  ".join(problems)


def test_no_input_names_the_commercial_partition(china: Deployment) -> None:
    problems = [
        f"{resource.urn} {where}: {text!r}"
        for resource in china.resources
        for prop, value in resource.state.items()
        if not (resource.type == FUNCTION and prop == "layers")  # stack/layers.py: see the next test
        for where, text in strings(value, prop)
        if COMMERCIAL in text
    ]
    assert not problems, f"inputs that hard-code {COMMERCIAL!r} in {PARTITION}:\n  " + "\n  ".join(problems)


def test_layers_follow_the_partition(china: Deployment) -> None:
    """The functions use the stack's own dependency layer, never a public layer ARN from another partition."""
    for function in china.of_type(FUNCTION):
        layers = function.state.get("layers", [])
        assert not [arn for arn in layers if arn.startswith(COMMERCIAL)], f"{function.urn} layers {layers}"
