"""Deterministic synthetic IAM customer-managed policies for load tests.

Why the distribution matters
----------------------------
A load test that sends one fixed 300-byte policy a thousand times proves little. Real
accounts hold policies whose minified documents range from 100 bytes to over 100 KB,
and the pipeline's limits are reached by that tail:

* message size: ten ordinary policies fit easily in one SNS ``PublishBatch`` call
  (256 KiB for the whole batch), but a single giant policy plus a few p99 ones do not;
* the 6,144-character limit on customer-managed policies is exceeded by a few percent of
  the documents, as it is by AWS-managed ones;
* CSV quoting: some documents carry commas, double quotes, a rare newline and non-ASCII
  text inside string values (condition values, S3 object keys), so the CSV writer and
  any reader must quote and escape correctly.

The generator therefore follows the spread measured on the public archive of AWS managed
policies (minified JSON, 1523 documents, November 2026):

==========================  ======  ======  ======  ========
measure                     median  p90     p99     max
==========================  ======  ======  ======  ========
document size (bytes)       642     3.7 K   13.7 K  135 K
statements per document     2       11              162
actions per document        10      55              4054
==========================  ======  ======  ======  ========

About 40 % of statements carry a ``Condition``, a few use ``NotAction``, and ``Resource``
is often ``"*"``. Statement and action counts are drawn from lognormal distributions
fitted to those quantiles. On top of the lognormal tail, one policy in 500 is a "giant"
whose size is drawn between 30 KB and 135 KB, so that about one policy in 300 exceeds
30 KB. ``tests/test_synthetic.py`` checks the fitted spread.

Every policy ``i`` is drawn from its own ``random.Random(f"{seed}:{i}")`` (string seeds
are hashed with SHA-512, so the result does not depend on ``PYTHONHASHSEED``). The
output is therefore deterministic and prefix-stable: ``generate_policies(n, s)[:k] ==
generate_policies(k, s)``. Only the standard library is used, because this module
ships inside the Lambda zip.

Example::

    >>> import json
    >>> from pipeline.synthetic import generate_policies, synthetic_arn
    >>> policies = generate_policies(1000, seed=7)
    >>> policies[:10] == generate_policies(10, seed=7)
    True
    >>> p = policies[0]
    >>> p.path, p.policy_id.startswith("ANPA"), len(p.policy_id)
    ('/cidb/synthetic/', True, 21)
    >>> synthetic_arn("123456789012", p) == f"arn:aws:iam::123456789012:policy/cidb/synthetic/{p.name}"
    True
    >>> sizes = sorted(len(json.dumps(q.document, separators=(",", ":"))) for q in policies)
    >>> 300 < sizes[500] < 1200
    True
"""

from __future__ import annotations

import json
import math
import random
import re
import string
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["SYNTHETIC_PATH", "SyntheticPolicy", "generate_policies", "synthetic_arn"]

SYNTHETIC_PATH = "/cidb/synthetic/"
NAME_PREFIX = "cidb-synth"
POLICY_VERSION = "2012-10-17"

# Fitted to the measured spread (see the module docstring); tests/test_synthetic.py checks them.
_STATEMENTS_MEDIAN = 1.9
_STATEMENTS_SIGMA = 1.36
_MAX_STATEMENTS = 162
_ACTIONS_MEDIAN = 3.4
_ACTIONS_SIGMA = 0.9
_CONDITION_SHARE = 0.40
_NOT_ACTION_SHARE = 0.025
_GIANT_SHARE = 1 / 500
_GIANT_MIN_BYTES = 30_000
_GIANT_MAX_BYTES = 135_000

_ID_ALPHABET = string.ascii_uppercase + string.digits
_EPOCH_START = datetime(2016, 1, 1, tzinfo=UTC)
_EPOCH_SPAN_S = int((datetime(2025, 6, 30, tzinfo=UTC) - _EPOCH_START).total_seconds())
_LATEST = datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)


@dataclass(frozen=True)
class SyntheticPolicy:
    """One customer-managed policy, shaped like an entry of ``GetAccountAuthorizationDetails``."""

    name: str
    path: str
    policy_id: str
    version_id: str
    create_date: str
    update_date: str
    attachment_count: int
    document: dict


def synthetic_arn(account_id: str, policy: SyntheticPolicy) -> str:
    """The policy's ARN in ``account_id``: ``arn:aws:iam::{account}:policy{path}{name}``."""
    if not (isinstance(account_id, str) and len(account_id) == 12 and account_id.isdigit()):
        raise ValueError(f"account_id must be a 12-digit AWS account id, got {account_id!r}")
    return f"arn:aws:iam::{account_id}:policy{policy.path}{policy.name}"


def generate_policies(count: int, seed: int = 0) -> list[SyntheticPolicy]:
    """``count`` policies; the same ``(count, seed)`` always gives the same list.

    Policy ``i`` depends only on ``(seed, i)``, so a longer list extends a shorter one.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"count must be a non-negative integer, got {count!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    return [_policy(seed, index) for index in range(count)]


# --------------------------------------------------------------------------- vocabulary


@dataclass(frozen=True)
class _Service:
    prefix: str
    read: tuple[str, ...]
    write: tuple[str, ...]
    nouns: tuple[str, ...]
    arns: tuple[str, ...]  # templates: {region} {account} {name} {bucket} {key} {hex} {uuid}


def _t(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_SERVICES: tuple[_Service, ...] = (
    _Service(
        "s3",
        _t(
            "GetObject GetObjectVersion GetObjectTagging GetObjectAcl ListBucket ListBucketVersions "
            "ListAllMyBuckets GetBucketLocation GetBucketPolicy GetBucketAcl GetBucketVersioning "
            "GetEncryptionConfiguration GetLifecycleConfiguration ListMultipartUploadParts GetBucketTagging"
        ),
        _t(
            "PutObject DeleteObject DeleteObjectVersion PutObjectTagging PutObjectAcl AbortMultipartUpload "
            "CreateBucket DeleteBucket PutBucketPolicy PutBucketVersioning PutEncryptionConfiguration "
            "PutLifecycleConfiguration RestoreObject ReplicateObject"
        ),
        _t("Bucket Object ObjectVersion AccessPoint Job StorageLens MultiRegionAccessPoint BucketOwnershipControls"),
        (
            "arn:aws:s3:::{bucket}",
            "arn:aws:s3:::{bucket}/*",
            "arn:aws:s3:::{bucket}/{key}/*",
            "arn:aws:s3:::{bucket}/home/${{aws:username}}/*",
        ),
    ),
    _Service(
        "ec2",
        _t(
            "DescribeInstances DescribeImages DescribeVolumes DescribeSnapshots DescribeSecurityGroups "
            "DescribeSubnets DescribeVpcs DescribeNetworkInterfaces DescribeRouteTables DescribeTags "
            "DescribeAvailabilityZones DescribeKeyPairs DescribeAddresses DescribeLaunchTemplates DescribeRegions"
        ),
        _t(
            "RunInstances StartInstances StopInstances TerminateInstances RebootInstances CreateTags DeleteTags "
            "CreateVolume AttachVolume DetachVolume DeleteVolume CreateSnapshot DeleteSnapshot "
            "AuthorizeSecurityGroupIngress RevokeSecurityGroupIngress CreateNetworkInterface "
            "DeleteNetworkInterface ModifyInstanceAttribute AssociateAddress"
        ),
        _t(
            "Instances Volumes Snapshots SecurityGroups Subnets Vpcs Images KeyPairs Addresses NetworkInterfaces "
            "RouteTables LaunchTemplates NatGateways TransitGateways FlowLogs VpcEndpoints"
        ),
        (
            "arn:aws:ec2:{region}:{account}:instance/i-{hex}",
            "arn:aws:ec2:{region}:{account}:security-group/sg-{hex}",
            "arn:aws:ec2:{region}:{account}:volume/*",
            "arn:aws:ec2:{region}::image/ami-*",
            "arn:aws:ec2:{region}:{account}:subnet/subnet-{hex}",
        ),
    ),
    _Service(
        "iam",
        _t(
            "GetRole GetPolicy GetPolicyVersion ListRoles ListPolicies ListAttachedRolePolicies ListRolePolicies "
            "GetUser ListUsers ListGroups GetAccountAuthorizationDetails ListInstanceProfiles GetInstanceProfile"
        ),
        _t(
            "PassRole CreateRole DeleteRole AttachRolePolicy DetachRolePolicy PutRolePolicy DeleteRolePolicy "
            "CreatePolicyVersion DeletePolicyVersion TagRole UntagRole CreateServiceLinkedRole "
            "UpdateAssumeRolePolicy CreateAccessKey"
        ),
        _t("Role Policy User Group InstanceProfile AccessKey MFADevice SAMLProvider OpenIDConnectProvider"),
        (
            "arn:aws:iam::{account}:role/{name}",
            "arn:aws:iam::{account}:role/service-role/{name}",
            "arn:aws:iam::{account}:policy/{name}",
            "arn:aws:iam::{account}:user/${{aws:username}}",
        ),
    ),
    _Service(
        "sts",
        _t("GetCallerIdentity GetSessionToken DecodeAuthorizationMessage GetAccessKeyInfo"),
        _t("AssumeRole AssumeRoleWithWebIdentity TagSession SetSourceIdentity"),
        _t("Role Session"),
        ("arn:aws:iam::{account}:role/{name}",),
    ),
    _Service(
        "dynamodb",
        _t(
            "GetItem BatchGetItem Query Scan DescribeTable ListTables DescribeStream GetRecords GetShardIterator "
            "ListStreams DescribeTimeToLive ConditionCheckItem DescribeContinuousBackups"
        ),
        _t(
            "PutItem UpdateItem DeleteItem BatchWriteItem CreateTable DeleteTable UpdateTable UpdateTimeToLive "
            "TagResource UntagResource CreateBackup RestoreTableFromBackup"
        ),
        _t("Table Item Backup GlobalTable Stream Export Import ContributorInsights"),
        (
            "arn:aws:dynamodb:{region}:{account}:table/{name}",
            "arn:aws:dynamodb:{region}:{account}:table/{name}/index/*",
            "arn:aws:dynamodb:{region}:{account}:table/{name}/stream/*",
        ),
    ),
    _Service(
        "sqs",
        _t("ReceiveMessage GetQueueAttributes GetQueueUrl ListQueues ListDeadLetterSourceQueues ListQueueTags"),
        _t(
            "SendMessage DeleteMessage ChangeMessageVisibility PurgeQueue CreateQueue DeleteQueue "
            "SetQueueAttributes TagQueue"
        ),
        _t("Queue Message MessageMoveTask"),
        ("arn:aws:sqs:{region}:{account}:{name}", "arn:aws:sqs:{region}:{account}:{name}-dlq"),
    ),
    _Service(
        "sns",
        _t("GetTopicAttributes ListTopics ListSubscriptions ListSubscriptionsByTopic GetSubscriptionAttributes"),
        _t("Publish Subscribe Unsubscribe CreateTopic DeleteTopic SetTopicAttributes TagResource"),
        _t("Topic Subscription PlatformApplication SMSAttributes"),
        ("arn:aws:sns:{region}:{account}:{name}",),
    ),
    _Service(
        "kms",
        _t("Decrypt DescribeKey GetKeyPolicy ListKeys ListAliases GetPublicKey ListGrants GetKeyRotationStatus"),
        _t("Encrypt GenerateDataKey GenerateDataKeyWithoutPlaintext ReEncryptFrom ReEncryptTo CreateGrant RetireGrant"),
        _t("Key Alias Grant KeyPolicy CustomKeyStore"),
        (
            "arn:aws:kms:{region}:{account}:key/{uuid}",
            "arn:aws:kms:{region}:{account}:alias/{name}",
        ),
    ),
    _Service(
        "lambda",
        _t("GetFunction GetFunctionConfiguration ListFunctions ListVersionsByFunction GetPolicy ListAliases"),
        _t(
            "InvokeFunction UpdateFunctionCode UpdateFunctionConfiguration CreateFunction DeleteFunction "
            "PublishVersion CreateEventSourceMapping AddPermission"
        ),
        _t("Function Alias Layer LayerVersion EventSourceMapping FunctionUrlConfig CodeSigningConfig"),
        (
            "arn:aws:lambda:{region}:{account}:function:{name}",
            "arn:aws:lambda:{region}:{account}:function:{name}:*",
        ),
    ),
    _Service(
        "logs",
        _t(
            "DescribeLogGroups DescribeLogStreams GetLogEvents FilterLogEvents StartQuery GetQueryResults "
            "DescribeMetricFilters"
        ),
        _t("CreateLogGroup CreateLogStream PutLogEvents PutRetentionPolicy DeleteLogGroup PutMetricFilter"),
        _t("LogGroup LogStream MetricFilter SubscriptionFilter Destination QueryDefinition"),
        (
            "arn:aws:logs:{region}:{account}:log-group:/aws/lambda/{name}:*",
            "arn:aws:logs:{region}:{account}:log-group:{name}:log-stream:*",
            "arn:aws:logs:*:*:*",
        ),
    ),
    _Service(
        "cloudwatch",
        _t("GetMetricData GetMetricStatistics ListMetrics DescribeAlarms GetDashboard ListDashboards"),
        _t("PutMetricData PutMetricAlarm DeleteAlarms PutDashboard SetAlarmState"),
        _t("Alarm Dashboard Metric MetricStream InsightRule"),
        ("arn:aws:cloudwatch:{region}:{account}:alarm:{name}",),
    ),
    _Service(
        "cloudformation",
        _t("DescribeStacks DescribeStackEvents DescribeStackResources ListStacks GetTemplate ListExports"),
        _t("CreateStack UpdateStack DeleteStack CreateChangeSet ExecuteChangeSet"),
        _t("Stack StackSet ChangeSet StackInstances Type"),
        ("arn:aws:cloudformation:{region}:{account}:stack/{name}/*",),
    ),
    _Service(
        "ecr",
        _t(
            "GetAuthorizationToken BatchGetImage GetDownloadUrlForLayer BatchCheckLayerAvailability "
            "DescribeRepositories DescribeImages ListImages"
        ),
        _t("PutImage InitiateLayerUpload UploadLayerPart CompleteLayerUpload CreateRepository BatchDeleteImage"),
        _t("Repository Image LifecyclePolicy RegistryPolicy PullThroughCacheRule"),
        ("arn:aws:ecr:{region}:{account}:repository/{name}",),
    ),
    _Service(
        "ecs",
        _t("DescribeClusters DescribeServices DescribeTasks DescribeTaskDefinition ListClusters ListTasks"),
        _t("RunTask StopTask UpdateService RegisterTaskDefinition CreateService DeleteService"),
        _t("Cluster Service Task TaskDefinition ContainerInstance CapacityProvider"),
        (
            "arn:aws:ecs:{region}:{account}:cluster/{name}",
            "arn:aws:ecs:{region}:{account}:service/{name}/*",
        ),
    ),
    _Service(
        "rds",
        _t("DescribeDBInstances DescribeDBClusters DescribeDBSnapshots ListTagsForResource DescribeDBSubnetGroups"),
        _t("CreateDBSnapshot StartDBInstance StopDBInstance RebootDBInstance ModifyDBInstance AddTagsToResource"),
        _t("DBInstance DBCluster DBSnapshot DBSubnetGroup DBParameterGroup EventSubscription"),
        ("arn:aws:rds:{region}:{account}:db:{name}", "arn:aws:rds:{region}:{account}:cluster:{name}"),
    ),
    _Service(
        "secretsmanager",
        _t("GetSecretValue DescribeSecret ListSecrets ListSecretVersionIds GetResourcePolicy"),
        _t("PutSecretValue UpdateSecret CreateSecret DeleteSecret RotateSecret TagResource"),
        _t("Secret SecretVersion ResourcePolicy"),
        ("arn:aws:secretsmanager:{region}:{account}:secret:{name}-*",),
    ),
    _Service(
        "ssm",
        _t("GetParameter GetParameters GetParametersByPath DescribeParameters DescribeInstanceInformation"),
        _t("PutParameter DeleteParameter SendCommand StartSession AddTagsToResource"),
        _t("Parameter Document Association MaintenanceWindow PatchBaseline OpsItem"),
        ("arn:aws:ssm:{region}:{account}:parameter/{name}/*", "arn:aws:ssm:{region}:{account}:document/{name}"),
    ),
    _Service(
        "events",
        _t("DescribeRule ListRules ListTargetsByRule DescribeEventBus"),
        _t("PutEvents PutRule PutTargets RemoveTargets DeleteRule EnableRule DisableRule"),
        _t("Rule EventBus Archive Connection ApiDestination"),
        ("arn:aws:events:{region}:{account}:rule/{name}", "arn:aws:events:{region}:{account}:event-bus/default"),
    ),
    _Service(
        "states",
        _t("DescribeStateMachine DescribeExecution ListExecutions ListStateMachines GetExecutionHistory"),
        _t("StartExecution StopExecution CreateStateMachine UpdateStateMachine SendTaskSuccess SendTaskFailure"),
        _t("StateMachine Execution Activity MapRun"),
        ("arn:aws:states:{region}:{account}:stateMachine:{name}",),
    ),
    _Service(
        "kinesis",
        _t("DescribeStream DescribeStreamSummary GetRecords GetShardIterator ListShards ListStreams"),
        _t("PutRecord PutRecords CreateStream DeleteStream IncreaseStreamRetentionPeriod"),
        _t("Stream StreamConsumer Shard"),
        ("arn:aws:kinesis:{region}:{account}:stream/{name}",),
    ),
    _Service(
        "firehose",
        _t("DescribeDeliveryStream ListDeliveryStreams ListTagsForDeliveryStream"),
        _t("PutRecord PutRecordBatch CreateDeliveryStream UpdateDestination"),
        _t("DeliveryStream Destination"),
        ("arn:aws:firehose:{region}:{account}:deliverystream/{name}",),
    ),
    _Service(
        "glue",
        _t("GetDatabase GetDatabases GetTable GetTables GetPartitions GetJob GetJobRuns"),
        _t("CreateTable UpdateTable BatchCreatePartition StartJobRun CreateDatabase DeleteTable"),
        _t("Database Table Partition Job Crawler Connection Trigger Workflow"),
        (
            "arn:aws:glue:{region}:{account}:catalog",
            "arn:aws:glue:{region}:{account}:database/{name}",
            "arn:aws:glue:{region}:{account}:table/{name}/*",
        ),
    ),
    _Service(
        "athena",
        _t("GetQueryExecution GetQueryResults GetWorkGroup ListQueryExecutions ListWorkGroups"),
        _t("StartQueryExecution StopQueryExecution CreateWorkGroup UpdateWorkGroup"),
        _t("WorkGroup NamedQuery DataCatalog PreparedStatement"),
        ("arn:aws:athena:{region}:{account}:workgroup/{name}",),
    ),
    _Service(
        "route53",
        _t("GetHostedZone ListHostedZones ListResourceRecordSets GetChange"),
        _t("ChangeResourceRecordSets CreateHostedZone DeleteHostedZone"),
        _t("HostedZone HealthCheck TrafficPolicy"),
        ("arn:aws:route53:::hostedzone/Z{hex}",),
    ),
    _Service(
        "elasticloadbalancing",
        _t("DescribeLoadBalancers DescribeTargetGroups DescribeTargetHealth DescribeListeners DescribeRules"),
        _t("RegisterTargets DeregisterTargets ModifyListener CreateRule DeleteRule AddTags"),
        _t("LoadBalancer TargetGroup Listener Rule"),
        ("arn:aws:elasticloadbalancing:{region}:{account}:loadbalancer/app/{name}/*",),
    ),
    _Service(
        "autoscaling",
        _t("DescribeAutoScalingGroups DescribeScalingActivities DescribeLaunchConfigurations"),
        _t("SetDesiredCapacity UpdateAutoScalingGroup TerminateInstanceInAutoScalingGroup PutScalingPolicy"),
        _t("AutoScalingGroup LaunchConfiguration ScalingPolicy ScheduledAction"),
        ("arn:aws:autoscaling:{region}:{account}:autoScalingGroup:*:autoScalingGroupName/{name}",),
    ),
    _Service(
        "cloudtrail",
        _t("DescribeTrails GetTrailStatus LookupEvents GetEventSelectors"),
        _t("StartLogging StopLogging PutEventSelectors CreateTrail"),
        _t("Trail EventDataStore Channel"),
        ("arn:aws:cloudtrail:{region}:{account}:trail/{name}",),
    ),
    _Service(
        "xray",
        _t("GetTraceSummaries BatchGetTraces GetServiceGraph GetSamplingRules"),
        _t("PutTraceSegments PutTelemetryRecords"),
        _t("Group SamplingRule TraceSegment"),
        ("*",),
    ),
)
# Weights: how often a service is the theme of a policy (S3, EC2, IAM and logs dominate real accounts).
_SERVICE_WEIGHTS = tuple(
    {"s3": 14, "ec2": 9, "iam": 6, "logs": 6, "dynamodb": 6, "kms": 5, "lambda": 5, "sqs": 4, "sns": 3}.get(s.prefix, 2)
    for s in _SERVICES
)
_READ_VERBS = _t("Describe Get List BatchGet Search")
_WRITE_VERBS = _t("Create Delete Update Put Modify Tag Untag Attach Detach Start Stop Enable Disable Associate")

_REGIONS = _t("us-east-1 us-east-2 us-west-2 eu-west-1 eu-central-1 eu-north-1 ap-southeast-2 ap-northeast-1")
_NAME_WORDS = _t(
    "orders billing cidb reports analytics payments audit ingest etl platform search inventory identity "
    "checkout notifications ledger media backup exports"
)
_ENVS = _t("prod dev staging qa sandbox")
_ACCESS_SLUGS = {"read": "readonly", "write": "readwrite", "admin": "fullaccess", "guardrail": "guardrail"}
_SID_VERBS = {"Allow": _t("Allow Grant Permit Enable"), "Deny": _t("Deny Block Restrict Prevent")}
_TAG_VALUES = _t("platform data security finops sre analytics payments")
# Values that make a CSV writer earn its keep: commas, double quotes, a newline, non-ASCII.
_AWKWARD_VALUES = (
    "R&D, Platform",
    'team "blue", eu',
    'Mozilla/5.0 (X11; Linux x86_64) "internal-scanner", v2',
    "exports/2024,Q1/",
    "Équipe Données",
    "Zürich-Ops",
    "開発チーム",
    'say "hello"',
    "ops\nteam",
)


@dataclass
class _Ctx:
    """Per-policy choices shared by its statements (the account, region and names it talks about)."""

    rng: random.Random
    account: str
    region: str
    names: tuple[str, ...]
    awkward: bool


def _name(rng: random.Random) -> str:
    return f"{rng.choice(_NAME_WORDS)}-{rng.choice(_NAME_WORDS)}-{rng.choice(_ENVS)}"


def _arn(ctx: _Ctx, service: _Service) -> str:
    rng = ctx.rng
    template = rng.choice(service.arns)
    name = rng.choice(ctx.names)
    key = rng.choice(("incoming", "processed", "logs/app", "tmp", "reports/daily"))
    if ctx.awkward and rng.random() < 0.3:
        key = rng.choice(("exports/2024,Q1", 'quoted "dir"', "données/été"))
    return template.format(
        region=rng.choice((ctx.region, ctx.region, ctx.region, "*")),
        account=ctx.account,
        name=name,
        bucket=f"{name}-{ctx.account[-4:]}",
        key=key,
        hex="".join(rng.choices("0123456789abcdef", k=17)),
        uuid="-".join("".join(rng.choices("0123456789abcdef", k=n)) for n in (8, 4, 4, 4, 12)),
    )


def _condition_clause(ctx: _Ctx, effect: str) -> tuple[str, str, Any]:
    rng = ctx.rng
    kind = rng.randrange(14)
    tag_value = rng.choice(_AWKWARD_VALUES) if ctx.awkward and rng.random() < 0.5 else rng.choice(_TAG_VALUES)
    if kind == 0:
        return "StringEquals", "aws:RequestedRegion", sorted(set(rng.sample(_REGIONS, rng.randint(1, 3))))
    if kind == 1:
        return "Bool", "aws:SecureTransport", "false" if effect == "Deny" else "true"
    if kind == 2:
        prefixes = ["home/${aws:username}/", "", rng.choice(("reports/", "incoming/", "exports/2024,Q1/"))]
        return "StringLike", "s3:prefix", prefixes[: rng.randint(1, 3)]
    if kind == 3:
        op = "NotIpAddress" if effect == "Deny" else "IpAddress"
        cidrs = ["203.0.113.0/24", "198.51.100.0/24", "192.0.2.10/32", "10.0.0.0/8"]
        return op, "aws:SourceIp", cidrs[: rng.randint(1, 4)]
    if kind == 4:
        name = rng.choice(ctx.names)
        target = rng.choice(
            (
                f"arn:aws:sns:{ctx.region}:{ctx.account}:{name}",
                f"arn:aws:s3:::{name}-{ctx.account[-4:]}",
                f"arn:aws:events:{ctx.region}:{ctx.account}:rule/{name}",
            )
        )
        return "ArnLike", "aws:SourceArn", target
    if kind == 5:
        return "StringEquals", f"aws:PrincipalTag/{rng.choice(('Team', 'CostCenter', 'Project'))}", tag_value
    if kind == 6:
        return "NumericLessThan", "aws:MultiFactorAuthAge", str(rng.choice((900, 3600, 43200)))
    if kind == 7:
        return "DateGreaterThan", "aws:CurrentTime", f"20{rng.randint(19, 25)}-0{rng.randint(1, 9)}-01T00:00:00Z"
    if kind == 8:
        return "StringEquals", "aws:ResourceTag/Environment", rng.choice(_ENVS)
    if kind == 9:
        return "StringEquals", "kms:ViaService", f"{rng.choice(('s3', 'sqs', 'dynamodb'))}.{ctx.region}.amazonaws.com"
    if kind == 10:
        return "StringEquals", "aws:SourceAccount", ctx.account
    if kind == 11:
        return "BoolIfExists", "aws:MultiFactorAuthPresent", "false" if effect == "Deny" else "true"
    if kind == 12:
        return "ForAllValues:StringEquals", "aws:TagKeys", ["Environment", "Team", "CostCenter"][: rng.randint(1, 3)]
    agent = rng.choice(_AWKWARD_VALUES) if ctx.awkward else "*aws-sdk-*"
    return "StringLike", "aws:userAgent", agent


def _condition(ctx: _Ctx, effect: str) -> dict[str, dict[str, Any]]:
    condition: dict[str, dict[str, Any]] = {}
    clauses = 1 + (ctx.rng.random() < 0.35) + (ctx.rng.random() < 0.1)
    for _ in range(clauses):
        op, key, value = _condition_clause(ctx, effect)
        condition.setdefault(op, {})[key] = value
    return condition


def _lognormal_count(rng: random.Random, median: float, sigma: float, high: int) -> int:
    return max(1, min(high, round(rng.lognormvariate(math.log(median), sigma))))


def _pick_actions(rng: random.Random, first: _Service, access: str, count: int) -> list[str]:
    """``count`` distinct action names, from ``first`` and then (for long lists) other services."""
    actions: list[str] = []
    seen: set[str] = set()
    order = [first, *(s for s in rng.sample(_SERVICES, len(_SERVICES)) if s is not first)]
    for service in order:
        if len(actions) >= count:
            break
        curated = list(service.read if access == "read" else service.read + service.write)
        rng.shuffle(curated)
        verbs = _READ_VERBS if access == "read" else _READ_VERBS + _WRITE_VERBS
        extended = [f"{verb}{noun}" for verb in verbs for noun in service.nouns]
        rng.shuffle(extended)
        for action in curated + extended:
            full = f"{service.prefix}:{action}"
            if full not in seen:
                seen.add(full)
                actions.append(full)
                if len(actions) >= count:
                    break
    if len(actions) > 3 and rng.random() < 0.6:
        actions.sort()
    return actions


def _statement(ctx: _Ctx, service: _Service, access: str, n_actions: int, used_sids: set[str]) -> dict[str, Any]:
    rng = ctx.rng
    deny_share = 0.7 if access == "guardrail" else 0.06
    effect = "Deny" if rng.random() < deny_share else "Allow"
    statement: dict[str, Any] = {}
    if rng.random() < 0.55:
        statement["Sid"] = _sid(rng, effect, service, used_sids)
    statement["Effect"] = effect

    if rng.random() < _NOT_ACTION_SHARE:
        # Guardrail / PowerUser shapes: everything except a few services.
        excluded = rng.sample(
            ("iam:*", "organizations:*", "account:*", "sts:*", "support:*", "kms:*"), rng.randint(1, 4)
        )
        statement["NotAction"] = sorted(excluded)
        statement["Resource"] = "*"
        if effect == "Deny" or rng.random() < 0.5:
            statement["Condition"] = {"StringNotEquals": {"aws:RequestedRegion": sorted(rng.sample(_REGIONS, 2))}}
        return statement

    if access == "admin" and rng.random() < 0.5:
        actions = [f"{service.prefix}:*"]
        if n_actions > 1:
            actions += _pick_actions(rng, rng.choice(_SERVICES), "read", n_actions - 1)
    elif rng.random() < 0.08:
        wildcards = [f"{service.prefix}:{verb}*" for verb in ("Get", "List", "Describe")]
        actions = wildcards[: min(3, n_actions)]
        if n_actions > len(actions):
            actions += _pick_actions(rng, service, access, n_actions - len(actions))
    else:
        actions = _pick_actions(rng, service, "read" if access == "read" else "write", n_actions)
    statement["Action"] = actions[0] if len(actions) == 1 and rng.random() < 0.6 else actions

    if rng.random() < 0.5 or service.arns == ("*",):
        statement["Resource"] = "*"
    else:
        n_resources = min(16, 1 + int(rng.expovariate(0.3)))
        resources = list(dict.fromkeys(_arn(ctx, service) for _ in range(n_resources)))
        statement["Resource"] = resources[0] if len(resources) == 1 and rng.random() < 0.6 else resources

    if rng.random() < _CONDITION_SHARE:
        statement["Condition"] = _condition(ctx, effect)
    return statement


def _sid(rng: random.Random, effect: str, service: _Service, used: set[str]) -> str:
    if rng.random() < 0.2:
        sid = f"Stmt{rng.randrange(1_400_000_000_000, 1_760_000_000_000)}"
    else:
        noun = "".join(part.capitalize() for part in re.split(r"[^a-z0-9]+", service.prefix))
        sid = f"{rng.choice(_SID_VERBS[effect])}{noun}{rng.choice(('Read', 'Write', 'Access', 'Ops', ''))}"
    base, n = sid, 2
    while sid in used:
        sid, n = f"{base}{n}", n + 1
    used.add(sid)
    return sid


def _minified_len(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")))


def _document(ctx: _Ctx, theme: _Service, access: str, giant: bool) -> dict[str, Any]:
    rng = ctx.rng
    used_sids: set[str] = set()
    statements: list[dict[str, Any]] = []

    def service_for_statement() -> _Service:
        # The first statement is always about the policy's theme (it names the policy).
        if not statements or rng.random() < 0.65:
            return theme
        return rng.choices(_SERVICES, weights=_SERVICE_WEIGHTS)[0]

    if not giant:
        n_statements = _lognormal_count(rng, _STATEMENTS_MEDIAN, _STATEMENTS_SIGMA, _MAX_STATEMENTS)
        for _ in range(n_statements):
            n_actions = _lognormal_count(rng, _ACTIONS_MEDIAN, _ACTIONS_SIGMA, 400)
            statements.append(_statement(ctx, service_for_statement(), access, n_actions, used_sids))
    else:
        # Giant: either a few statements with thousands of actions (ReadOnlyAccess-like)
        # or up to 162 ordinary-looking statements, grown until a drawn target size.
        target = math.exp(rng.uniform(math.log(_GIANT_MIN_BYTES), math.log(_GIANT_MAX_BYTES)))
        wide = rng.random() < 0.5
        size = 40
        while size < target and len(statements) < _MAX_STATEMENTS:
            n_actions = rng.randint(300, 1500) if wide else _lognormal_count(rng, 12, 0.8, 200)
            n_actions = max(1, min(n_actions, int((target - size) / 28)))
            statement = _statement(ctx, service_for_statement(), "read" if wide else access, n_actions, used_sids)
            statements.append(statement)
            size += _minified_len(statement) + 1
    return {"Version": POLICY_VERSION, "Statement": statements}


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _policy(seed: int, index: int) -> SyntheticPolicy:
    rng = random.Random(f"{seed}:{index}")
    theme = rng.choices(_SERVICES, weights=_SERVICE_WEIGHTS)[0]
    access = rng.choices(("read", "write", "admin", "guardrail"), weights=(45, 40, 10, 5))[0]
    giant = rng.random() < _GIANT_SHARE
    ctx = _Ctx(
        rng=rng,
        account="".join(rng.choices(string.digits, k=12)) if rng.random() < 0.3 else "123456789012",
        region=rng.choice(_REGIONS),
        names=tuple(_name(rng) for _ in range(rng.randint(1, 3))),
        awkward=rng.random() < 0.04,
    )
    document = _document(ctx, theme, access, giant)

    version = rng.choices((1, 2, 3, 4, 5), weights=(50, 20, 15, 10, 5))[0]
    created = _EPOCH_START + timedelta(seconds=rng.randrange(_EPOCH_SPAN_S))
    room_s = min(3 * 365 * 86400, int((_LATEST - created).total_seconds()))
    updated = created if version == 1 else created + timedelta(seconds=rng.randrange(1, room_s))
    attachments = rng.choices((0, 1, 2, 3, 5, 12, 40), weights=(30, 40, 12, 8, 5, 4, 1))[0]
    slug = f"{theme.prefix}-{_ACCESS_SLUGS[access]}"
    return SyntheticPolicy(
        name=f"{NAME_PREFIX}-{index:06d}-{slug}",
        path=SYNTHETIC_PATH,
        policy_id="ANPA" + "".join(rng.choices(_ID_ALPHABET, k=17)),
        version_id=f"v{version}",
        create_date=_iso(created),
        update_date=_iso(updated),
        attachment_count=attachments,
        document=document,
    )
