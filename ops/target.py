"""One way to point every verb at a deployment: stack outputs for the names, an optional endpoint.

``--stack``/``--outputs`` name the resources (the Pulumi program's outputs). ``--endpoint-url``
sends the calls to an emulator; on its own it finds the one deployment the emulator holds (by
its run table, ``<base>-runs``) and takes the names from the spec, as the load test provisioned
them. A load test also writes ``stack-outputs.json`` into its report directory.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from ops.errors import OpsError, aws_errors
from ops.outputs import OutputsError, StackOutputs, load_outputs
from pipeline.spec import SpecError, build_spec

EMULATOR_REGION = "us-east-1"
RUN_TABLE_SUFFIX = "-runs"
EMULATOR_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": EMULATOR_REGION,
}
# On-call wants an answer or an error within seconds, not adaptive back-off for minutes.
OPS_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3, read_timeout=30)


@dataclass(frozen=True)
class Target:
    outputs: StackOutputs
    endpoint_url: str | None = None

    @property
    def where(self) -> str:
        return self.endpoint_url or f"AWS {self.outputs.region}"

    @functools.cached_property
    def _session(self) -> boto3.Session:
        if self.endpoint_url:
            return boto3.Session(
                aws_access_key_id=EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=EMULATOR_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                aws_session_token=EMULATOR_CREDENTIALS["AWS_SESSION_TOKEN"],
                region_name=self.outputs.region,
            )
        return boto3.Session(region_name=self.outputs.region)

    @functools.cache  # noqa: B019 - one client per service for the target's lifetime
    def client(self, service: str) -> Any:
        return self._session.client(service, endpoint_url=self.endpoint_url, config=OPS_CONFIG)


def resolve_target(
    *,
    stack: str | None = None,
    outputs_file: Path | None = None,
    endpoint_url: str | None = None,
    profile: str = "tuned",
) -> Target:
    """The deployment the options name; with none, the selected Pulumi stack."""
    if stack and outputs_file:
        raise OpsError("pass --stack or --outputs, not both")
    try:
        if outputs_file or stack or not endpoint_url:
            return Target(load_outputs(outputs_file=outputs_file, stack=stack), endpoint_url)
        prefix, _, environment = _only_deployment(endpoint_url).partition("-")
        spec = build_spec(profile, prefix=prefix, environment=environment)
    except (OutputsError, SpecError) as exc:
        raise OpsError(str(exc)) from None
    return Target(_discover(spec, endpoint_url), endpoint_url)


def _only_deployment(endpoint_url: str) -> str:
    probe = Target(spec_outputs(build_spec("tuned")), endpoint_url)
    with aws_errors(endpoint_url):
        tables = probe.client("dynamodb").list_tables()["TableNames"]
    bases = sorted(t.removesuffix(RUN_TABLE_SUFFIX) for t in tables if t.endswith(RUN_TABLE_SUFFIX))
    if len(bases) != 1:
        found = f"deployments {bases}" if bases else "no deployment"
        raise OpsError(f"{endpoint_url} holds {found}; pass --outputs with the load test's <report>/stack-outputs.json")
    return bases[0]


def _discover(spec: Any, endpoint_url: str) -> StackOutputs:
    """The names of a deployment built from ``spec`` on an emulator, checked against what it holds."""
    probe = Target(spec_outputs(spec), endpoint_url)
    sqs = probe.client("sqs")
    with aws_errors(endpoint_url):
        account = probe.client("sts").get_caller_identity()["Account"]
        urls = {}
        for name in (spec.queue_name, spec.dlq_name):
            try:
                urls[name] = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            except sqs.exceptions.QueueDoesNotExist:
                raise OpsError(
                    f"{endpoint_url} has no queue {name!r}: provision it with `cidb loadtest --endpoint-url "
                    f"{endpoint_url}`, or pass --outputs with the load test's stack-outputs.json"
                ) from None
    arn = f"arn:aws:sqs:{EMULATOR_REGION}:{account}"
    return replace(
        spec_outputs(spec),
        topic_arn=f"arn:aws:sns:{EMULATOR_REGION}:{account}:{spec.topic_name}",
        queue_url=urls[spec.queue_name],
        queue_arn=f"{arn}:{spec.queue_name}",
        dlq_url=urls[spec.dlq_name],
        dlq_arn=f"{arn}:{spec.dlq_name}",
    )


def spec_outputs(spec: Any, region: str = EMULATOR_REGION) -> StackOutputs:
    """The names a deployment built from ``spec`` has; the URLs and ARNs that AWS assigns are left empty."""
    return StackOutputs(
        topic_arn="",
        queue_url="",
        queue_arn="",
        queue_name=spec.queue_name,
        dlq_url="",
        dlq_arn="",
        dlq_name=spec.dlq_name,
        bucket_name=spec.bucket_name,
        run_table_name=spec.run_table_name,
        collector_function_name=spec.collector.name,
        reporter_function_name=spec.reporter.name,
        verifier_function_name=spec.verifier.name,
        collector_log_group_name=spec.collector.log_group,
        reporter_log_group_name=spec.reporter.log_group,
        verifier_log_group_name=spec.verifier.log_group,
        profile=spec.profile,
        region=region,
        base_name=spec.base_name,
    )
