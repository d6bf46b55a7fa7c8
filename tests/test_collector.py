"""The collector in IAM mode against moto IAM: few API calls, every policy published once.

IAM calls are counted on the collector's own cached client (``pipeline.aws.client("iam")``)
with a ``before-call`` hook, so the count is exactly what the handler sends.

moto never paginates GetAccountAuthorizationDetails (IsTruncated is always false), so the
Marker path is tested separately on a real moto client whose ``after-call`` hook splits the
response into two pages (the second page only when the request carries the first page's Marker).

moto 5.2 also leaves PolicyName and PolicyId out of GetAccountAuthorizationDetails' policies,
which real IAM always returns (ManagedPolicyDetail). The collector tolerates that (name from the
ARN, empty id), but these tests give it the real IAM shape so they can check names and ids:
``fill_moto_gaps`` adds them to the parsed response from what CreatePolicy returned, and does
nothing once moto returns them itself.
"""

from __future__ import annotations

import json
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from emulated import Deployment, lambda_context

from loadtest.emulator.moto_server import ACCOUNT_ID
from pipeline import aws as pipeline_aws
from pipeline import collector
from pipeline.iam_source import AWS_MANAGED_ARN, iter_policies
from pipeline.layout import expected_keys_key
from pipeline.record import record_key
from pipeline.settings import ConfigError
from pipeline.synthetic import generate_policies

POLICY_COUNT = 1500
CUSTOMER_MANAGED_LIMIT = 6144


@dataclass(frozen=True)
class Created:
    name: str
    policy_id: str
    document: dict[str, Any]


def create_policies(iam: Any, count: int, *, seed: int = 3) -> dict[str, Created]:
    """``count`` synthetic customer-managed policies in moto IAM (oversized documents skipped), by ARN."""
    chosen = []
    for policy in generate_policies(count + count // 5, seed):
        text = json.dumps(policy.document, separators=(",", ":"))
        if len(text) <= CUSTOMER_MANAGED_LIMIT:
            chosen.append((policy, text))
    chosen = chosen[:count]
    assert len(chosen) == count, "test setup: not enough synthetic policies under the customer-managed limit"

    def create(item: tuple[Any, str]) -> tuple[str, Created]:
        policy, text = item
        made = iam.create_policy(PolicyName=policy.name, Path=policy.path, PolicyDocument=text)["Policy"]
        return made["Arn"], Created(made["PolicyName"], made["PolicyId"], json.loads(text))

    with ThreadPoolExecutor(max_workers=12) as pool:
        return dict(pool.map(create, chosen))


def fill_moto_gaps(iam: Any, created: dict[str, Created]) -> Callable[..., None]:
    """Add the PolicyName/PolicyId that real IAM returns and moto omits (see the module docstring)."""

    def fill(parsed: dict[str, Any], **_: Any) -> None:
        for policy in parsed.get("Policies", []):
            if policy["Arn"] in created:
                policy.setdefault("PolicyName", created[policy["Arn"]].name)
                policy.setdefault("PolicyId", created[policy["Arn"]].policy_id)

    iam.meta.events.register("after-call.iam.GetAccountAuthorizationDetails", fill)
    return fill


SINK_SHARDS = 64  # < 100: moto's SNS delivers to at most 100 subscriptions of a topic


@pytest.fixture
def sharded_sink(deployment: Deployment) -> list[str]:
    """The topic's raw SQS delivery, spread over 64 queues by trace_id prefix instead of one queue.

    moto's SQS recomputes queue attributes by scanning every message on each SendMessage and
    ReceiveMessage, so a single 1500-message queue costs about a minute; 64 small queues, a
    couple of seconds. Each queue is subscribed exactly as the provisioned one (raw delivery),
    with a filter policy on the trace_id message attribute that the publisher sets; together the
    filters cover every hex prefix exactly once.
    """
    sns, sqs = deployment.client("sns"), deployment.client("sqs")
    for subscription in sns.list_subscriptions_by_topic(TopicArn=deployment.outputs.topic_arn)["Subscriptions"]:
        sns.unsubscribe(SubscriptionArn=subscription["SubscriptionArn"])
    prefixes = [a + b for a in "0123456789abcdef" for b in "0123456789abcdef"]
    per_queue = len(prefixes) // SINK_SHARDS
    urls = []
    for shard in range(SINK_SHARDS):
        url = sqs.create_queue(QueueName=f"sink-{shard:02d}", Attributes={"VisibilityTimeout": "3600"})["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        policy = {"trace_id": [{"prefix": p} for p in prefixes[shard * per_queue : (shard + 1) * per_queue]]}
        sns.subscribe(
            TopicArn=deployment.outputs.topic_arn,
            Protocol="sqs",
            Endpoint=arn,
            Attributes={"RawMessageDelivery": "true", "FilterPolicy": json.dumps(policy)},
        )
        urls.append(url)
    return urls


def drain(deployment: Deployment, queue_urls: list[str]) -> list[dict[str, Any]]:
    sqs, bodies = deployment.client("sqs"), []
    for url in queue_urls:
        while True:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                break
            bodies += [json.loads(m["Body"]) for m in got]
    return bodies


@pytest.fixture
def collector_env(deployment: Deployment, monkeypatch: pytest.MonkeyPatch) -> Deployment:
    if collector.metrics.namespace is None:  # imported before the Lambda environment was set
        monkeypatch.setattr(collector.metrics, "namespace", deployment.spec.metrics_namespace)
    return deployment


@pytest.fixture
def iam_calls(collector_env: Deployment) -> Iterator[Counter[str]]:
    """Operations the collector's own IAM client sends during the test."""
    calls: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    client = pipeline_aws.client("iam")
    client.meta.events.register("before-call.iam", count)
    yield calls
    client.meta.events.unregister("before-call.iam", count)


def test_iam_mode_reads_1500_policies_in_few_calls_and_publishes_each_once(
    collector_env: Deployment, iam_calls: Counter[str], sharded_sink: list[str]
) -> None:
    deployment = collector_env
    # GIVEN 1500 customer-managed policies in IAM
    created = create_policies(deployment.client("iam"), POLICY_COUNT)
    iam = pipeline_aws.client("iam")
    fill = fill_moto_gaps(iam, created)
    # WHEN the collector runs in IAM mode
    try:
        summary = collector.handler({"source": "iam", "run_id": "run-iam"}, lambda_context())
    finally:
        iam.meta.events.unregister("after-call.iam.GetAccountAuthorizationDetails", fill)
    # THEN it read them with GetAccountAuthorizationDetails only: at most 3 calls, no per-policy GetPolicyVersion
    assert set(iam_calls) == {"GetAccountAuthorizationDetails"}, f"IAM operations called: {dict(iam_calls)}"
    assert iam_calls["GetAccountAuthorizationDetails"] <= 3, f"GetAccountAuthorizationDetails calls: {iam_calls}"
    assert summary["expected"] == POLICY_COUNT and summary["published"] == POLICY_COUNT, summary
    # AND every policy is on the queue exactly once, with its default version's document
    bodies = drain(deployment, sharded_sink)
    arns = Counter(body["policy"]["arn"] for body in bodies)
    assert set(arns) == set(created), f"queued ARNs vs created: {len(set(arns) ^ set(created))} differ"
    assert max(arns.values()) == 1, f"published twice: {[a for a, n in arns.items() if n > 1][:5]}"
    wrong = [b["policy"]["arn"] for b in bodies if b["policy"]["document"] != created[b["policy"]["arn"]].document]
    assert not wrong, f"documents differ from what IAM holds: {wrong[:5]}"
    ids = {b["policy"]["arn"]: b["policy"]["id"] for b in bodies}
    assert all(ids[arn] == c.policy_id for arn, c in created.items()), "policy ids as IAM assigned them"
    # AND the run record expects exactly those keys
    expected = json.loads(
        deployment.client("s3")
        .get_object(Bucket=deployment.outputs.bucket_name, Key=expected_keys_key("run-iam"))["Body"]
        .read()
    )
    assert sorted(expected) == sorted(record_key(ACCOUNT_ID, arn, "v1", "run-iam") for arn in created), "expected keys"
    item = deployment.client("dynamodb").get_item(
        TableName=deployment.outputs.run_table_name, Key={"run_id": {"S": "run-iam"}}
    )["Item"]
    assert item["expected"]["N"] == str(POLICY_COUNT), f"run record expected count: {item}"


def test_iam_pages_are_followed_with_the_marker(deployment: Deployment) -> None:
    # GIVEN 5 policies, and an IAM answering in two pages (page 1: 2 policies, Marker "page-2")
    iam = deployment.client("iam")
    created = create_policies(iam, 5)
    fill_moto_gaps(iam, created)
    markers: list[str | None] = []

    def remember_marker(params: dict[str, Any], **_: Any) -> None:
        markers.append(params.get("Marker"))

    def split_into_pages(parsed: dict[str, Any], **_: Any) -> None:
        assert not parsed.get("IsTruncated"), "moto paginated by itself; this test's premise no longer holds"
        policies = sorted(parsed["Policies"], key=lambda p: p["Arn"])
        if markers[-1] is None:
            parsed.update(Policies=policies[:2], IsTruncated=True, Marker="page-2")
        elif markers[-1] == "page-2":
            parsed.update(Policies=policies[2:], IsTruncated=False)
        else:
            raise AssertionError(f"unexpected Marker {markers[-1]!r}")

    iam.meta.events.register("before-parameter-build.iam.GetAccountAuthorizationDetails", remember_marker)
    iam.meta.events.register("after-call.iam.GetAccountAuthorizationDetails", split_into_pages)
    # WHEN the policies are read
    policies = list(iter_policies(iam))
    # THEN both pages were fetched, the second with page 1's Marker, and every policy yielded once
    assert markers == [None, "page-2"], f"Marker of each GetAccountAuthorizationDetails call: {markers}"
    assert sorted(p.arn for p in policies) == sorted(created), "each policy once across the two pages"
    assert all(p.document == created[p.arn].document for p in policies), "documents from the default version"


def test_aws_managed_policies_are_skipped_unless_asked_for(deployment: Deployment) -> None:
    # GIVEN one customer-managed policy, and IAM also reporting an attached and an unattached AWS-managed one
    # (moto loads no AWS-managed policies by default, so they are added to the response as IAM would list them)
    iam = deployment.client("iam")
    created = create_policies(iam, 1)
    fill_moto_gaps(iam, created)
    filters: list[list[str]] = []
    template = next(iter(created.values()))

    def aws_managed(name: str, attachments: int) -> dict[str, Any]:
        return {
            "PolicyName": name,
            "PolicyId": f"ANPA{name.upper():0<17}"[:21],
            "Arn": f"arn:aws:iam::aws:policy/{name}",
            "AttachmentCount": attachments,
            "PolicyVersionList": [
                {
                    "VersionId": "v3",
                    "IsDefaultVersion": True,
                    "Document": urllib.parse.quote(json.dumps(template.document)),
                }
            ],
        }

    def list_aws_managed_when_filtered(parsed: dict[str, Any], **_: Any) -> None:
        if "AWSManagedPolicy" in filters[-1]:
            parsed["Policies"] += [aws_managed("ReadOnlyAccess", 2), aws_managed("AmazonS3FullAccess", 0)]

    iam.meta.events.register(
        "before-parameter-build.iam.GetAccountAuthorizationDetails",
        lambda params, **_: filters.append(list(params["Filter"])),
    )
    iam.meta.events.register("after-call.iam.GetAccountAuthorizationDetails", list_aws_managed_when_filtered)
    # WHEN read without, then with include_aws_managed
    default = [p.arn for p in iter_policies(iam)]
    including = {p.arn: p for p in iter_policies(iam, include_aws_managed=True)}
    # THEN only the customer-managed one by default; the attached AWS-managed one only when asked for
    assert filters == [["LocalManagedPolicy"], ["LocalManagedPolicy", "AWSManagedPolicy"]], filters
    assert default == list(created), f"customer-managed only: {default}"
    assert set(including) == {*created, "arn:aws:iam::aws:policy/ReadOnlyAccess"}, f"included: {list(including)}"
    assert including["arn:aws:iam::aws:policy/ReadOnlyAccess"].aws_managed is True, "flagged aws_managed"


@pytest.mark.filterwarnings("ignore:No application metrics")
@pytest.mark.parametrize(
    ("arn", "aws_managed"),
    [
        ("arn:aws:iam::aws:policy/ReadOnlyAccess", True),
        ("arn:aws-cn:iam::aws:policy/ReadOnlyAccess", True),
        ("arn:aws-us-gov:iam::aws:policy/service-role/AWSLambdaRole", True),
        (f"arn:aws:iam::{ACCOUNT_ID}:policy/aws/ReadOnly", False),
        (f"arn:aws-cn:iam::{ACCOUNT_ID}:policy/team", False),
    ],
)
def test_aws_managed_policies_are_recognised_in_every_partition(arn: str, aws_managed: bool) -> None:
    assert bool(AWS_MANAGED_ARN.match(arn)) is aws_managed, arn


def test_unknown_source_is_a_config_error_naming_the_field(collector_env: Deployment) -> None:
    with pytest.raises(ConfigError, match="'source'='ldap'"):
        collector.handler({"source": "ldap"}, lambda_context())


@pytest.mark.filterwarnings("ignore:No application metrics")
def test_synthetic_source_without_count_is_a_config_error(collector_env: Deployment) -> None:
    with pytest.raises(ConfigError, match="'count'"):
        collector.handler({"source": "synthetic"}, lambda_context())
