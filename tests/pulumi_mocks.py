"""Pulumi mocks for the stack tests: realistic outputs per AWS type, no CLI, no cloud.

Importing this module installs the mocks, so import it before any ``stack`` module.
:func:`deploy` runs the real program (config reader + CidbPipeline) against them and
returns every registered resource with its inputs and outputs.

Example::

    deployment = deploy({"batchSize": "10"})
    [esm] = deployment.of_type("aws:lambda/eventSourceMapping:EventSourceMapping")
    assert esm.state["batchSize"] == 10, esm.urn
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs

# pulumi_aws warns when its (lazily loaded) modules load, about deprecated classes we do not use.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import pulumi_aws

    _LOADED = (pulumi_aws.s3.Bucket, pulumi_aws.lambda_.Function)

ACCOUNT = "123456789012"
REGION = "eu-west-1"
PARTITION = "aws"
PROJECT = "cidb"
STACK = "dev"


def _suffix(name: str, length: int = 8) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:length]


def mocked_outputs(
    typ: str, name: str, inputs: dict[str, Any], partition: str = PARTITION
) -> tuple[str, dict[str, Any]]:
    """(id, computed outputs) the way the AWS provider fills them in after create."""
    physical = inputs.get("name") or f"{name}-{_suffix(name)}"

    def _arn(service: str, resource: str) -> str:
        return f"arn:{partition}:{service}:{REGION}:{ACCOUNT}:{resource}"

    match typ:
        case "aws:sns/topic:Topic":
            arn = _arn("sns", physical)
            return arn, {"arn": arn, "name": physical}
        case "aws:sqs/queue:Queue":
            url = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{physical}"
            return url, {"arn": _arn("sqs", physical), "url": url, "name": physical}
        case "aws:s3/bucket:Bucket":
            bucket = inputs.get("bucket") or inputs.get("bucketPrefix", f"{name}-") + _suffix(name, 26)
            return bucket, {"bucket": bucket, "arn": f"arn:{partition}:s3:::{bucket}", "region": REGION}
        case "aws:dynamodb/table:Table":
            return physical, {"arn": _arn("dynamodb", f"table/{physical}"), "name": physical}
        case "aws:iam/role:Role":
            return physical, {"arn": f"arn:{partition}:iam::{ACCOUNT}:role/{physical}", "name": physical}
        case "aws:kms/key:Key":
            key_id = f"{_suffix(name)}-0000-4000-8000-{_suffix(name, 12)}"
            return key_id, {"arn": _arn("kms", f"key/{key_id}"), "keyId": key_id}
        case "aws:lambda/function:Function":
            arn = _arn("lambda", f"function:{physical}")
            return physical, {"arn": arn, "name": physical, "qualifiedArn": f"{arn}:$LATEST"}
        case "aws:lambda/layerVersion:LayerVersion":
            layer_arn = _arn("lambda", f"layer:{inputs['layerName']}")
            return f"{layer_arn}:1", {"arn": f"{layer_arn}:1", "layerArn": layer_arn, "version": "1"}
        case "aws:cloudwatch/logGroup:LogGroup":
            return physical, {"arn": _arn("logs", f"log-group:{physical}"), "name": physical}
        case "aws:cloudwatch/eventRule:EventRule":
            return physical, {"arn": _arn("events", f"rule/{physical}"), "name": physical}
        case "aws:cloudwatch/metricAlarm:MetricAlarm" | "aws:cloudwatch/compositeAlarm:CompositeAlarm":
            alarm = inputs.get("alarmName") or name
            return alarm, {"arn": _arn("cloudwatch", f"alarm:{alarm}")}
        case "aws:ssm/parameter:Parameter":
            return physical, {"arn": _arn("ssm", f"parameter{physical}"), "name": physical}
        case _:
            return f"{name}-id", {}


class CidbMocks(pulumi.runtime.Mocks):
    """Realistic outputs per AWS type in one partition; keeps every registration for the asserts."""

    def __init__(self, partition: str = PARTITION) -> None:
        self.partition = partition
        self.resources: list[MockResourceArgs] = []

    def new_resource(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append(args)
        resource_id, outputs = mocked_outputs(args.typ, args.name, args.inputs, self.partition)
        return resource_id, {**args.inputs, **outputs}

    def call(self, args: MockCallArgs) -> dict[str, Any]:
        arn = f"arn:{self.partition}:iam::{ACCOUNT}:user/test"
        match args.token:
            case "aws:index/getRegion:getRegion":
                return {"region": REGION, "name": REGION, "id": REGION}
            case "aws:index/getCallerIdentity:getCallerIdentity":
                return {"accountId": ACCOUNT, "arn": arn, "userId": "AIDTEST", "id": ACCOUNT}
            case "aws:index/getPartition:getPartition":
                return {"partition": self.partition, "dnsSuffix": "amazonaws.com", "id": self.partition}
        raise NotImplementedError(f"no mock for invoke {args.token}")


MONITOR = MockMonitor(CidbMocks())


def install() -> None:
    """(Re)install these mocks; other test modules may have installed their own in between."""
    pulumi.runtime.set_mocks(MONITOR.mocks, project=PROJECT, stack=STACK, preview=False, monitor=MONITOR)


install()


@dataclass(frozen=True)
class Resource:
    urn: str
    id: str
    state: dict[str, Any]  # inputs (camelCase, as the engine sees them) plus mocked outputs

    @property
    def type(self) -> str:
        return self.urn.split("::")[2].split("$")[-1]

    @property
    def name(self) -> str:
        return self.urn.split("::")[-1]


@dataclass
class Deployment:
    settings: Any
    pipeline: Any
    outputs: dict[str, Any]
    resources: list[Resource] = field(default_factory=list)

    def of_type(self, typ: str) -> list[Resource]:
        return [r for r in self.resources if r.type == typ]

    def one(self, typ: str, name_contains: str = "") -> Resource:
        found = [r for r in self.of_type(typ) if name_contains in r.name]
        assert len(found) == 1, f"expected one {typ} named *{name_contains}*, found {[r.urn for r in found]}"
        return found[0]

    def function(self, key: str) -> Resource:
        return self.one("aws:lambda/function:Function", f"-{key}")

    def policy_documents(self) -> Iterator[tuple[Resource, str, dict[str, Any]]]:
        """Every IAM-style document in the stack: (resource, property, parsed document)."""
        for resource in self.resources:
            for prop, value in resource.state.items():
                if isinstance(value, str) and '"Statement"' in value:
                    yield resource, prop, json.loads(value)

    def document(self, resource: Resource) -> dict[str, Any]:
        """The one policy document ``resource`` carries."""
        [document] = [d for r, _, d in self.policy_documents() if r.urn == resource.urn]
        return document


def deploy(config: dict[str, str] | None = None, partition: str = PARTITION) -> Deployment:
    """Run the stack program with ``cidb:*`` config in ``partition`` and return everything it registered."""
    from stack import CidbPipeline, read_settings

    MONITOR.mocks.partition = partition
    install()
    pulumi.runtime.set_all_config({f"{PROJECT}:{key}": value for key, value in (config or {}).items()})
    MONITOR.resources.clear()
    built: dict[str, Any] = {}

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        built["settings"] = read_settings()
        built["pipeline"] = CidbPipeline(
            "cidb", built["settings"].spec, load_test_principal_arns=built["settings"].load_test_principal_arns
        )
        return pulumi.Output.all(**built["pipeline"].outputs).apply(lambda values: built.update(outputs=values))

    program()
    resources = [Resource(r.urn, r.id, dict(r.state)) for r in MONITOR.resources.values()]
    return Deployment(built["settings"], built["pipeline"], built["outputs"], resources)
